import CZlib
import Testing
@testable import Training

@Suite struct DataTests {
    /// Writes `bytes` gzip-compressed to a fresh temporary path.
    static func writeGzip(_ bytes: [UInt8], name: String) -> String {
        let path = "/tmp/dlion-test-\(name)-\(UInt64.random(in: 0...UInt64.max))"
        let file = gzopen(path, "wb")!
        _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        gzclose(file)
        return path
    }

    static func idx(dimensions: [Int], payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 8, UInt8(dimensions.count)]
        for d in dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return bytes + payload
    }

    @Test func readsAnIDXFile() throws {
        let path = Self.writeGzip(Self.idx(dimensions: [2, 3], payload: [1, 2, 3, 4, 5, 6]), name: "ok")
        let file = try IDXFile(path: path)
        #expect(file.dimensions == [2, 3])
        #expect(file.bytes == [1, 2, 3, 4, 5, 6])
    }

    @Test func truncatedFileIsReportedNotCrashed() {
        let path = Self.writeGzip(Self.idx(dimensions: [2, 3], payload: [1, 2, 3]), name: "short")
        #expect(throws: TrainingError.datasetCorrupt(path: path, reason: "the header promises 6 elements but the file holds 3")) {
            try IDXFile(path: path)
        }
    }

    @Test func missingDirectorySaysHowToInstall() {
        do {
            _ = try FashionMNIST.load(.train, directory: "/nonexistent")
            Issue.record("loading from a missing directory did not throw")
        } catch let error as TrainingError {
            #expect(error.description.contains("apt-get install dataset-fashion-mnist"))
            #expect(error.description.contains("/nonexistent/train-images-idx3-ubyte.gz"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func samplerShardsArePartOfOnePermutation() throws {
        let ranks = 3
        let samplers = try (0..<ranks).map { try ShardedSampler(count: 100, ranks: ranks, rank: $0, batchSize: 8, seed: 5) }
        #expect(samplers[0].stepsPerEpoch == 4)
        let permutation = samplers[0].permutation(epoch: 2)
        #expect(permutation.sorted() == Array(0..<100))
        #expect(permutation != samplers[0].permutation(epoch: 3))
        var seen = Set<Int>()
        for sampler in samplers {
            #expect(sampler.permutation(epoch: 2) == permutation)
            for step in 0..<sampler.stepsPerEpoch { seen.formUnion(sampler.rows(step: step, permutation: permutation)) }
        }
        #expect(seen.count == ranks * 4 * 8)
    }

    @Test func samplerRejectsABatchLargerThanTheData() {
        #expect(throws: TrainingError.self) { try ShardedSampler(count: 10, ranks: 4, rank: 0, batchSize: 3, seed: 0) }
    }

    @Test func modelTooLargeForMemoryIsRefused() {
        #expect(throws: TrainingError.self) { try MLP(widths: [1 << 20, 1 << 20, 10], maxBatch: 1, seed: 0) }
    }

    @Test func syntheticDataIsDeterministicAndLearnable() throws {
        let a = Dataset.synthetic(count: 50, featureCount: 8, classes: 3, seed: 1)
        let b = Dataset.synthetic(count: 50, featureCount: 8, classes: 3, seed: 1)
        #expect(a.features == b.features && a.labels == b.labels)
        #expect(Set(a.labels).count == 3)
    }
}
