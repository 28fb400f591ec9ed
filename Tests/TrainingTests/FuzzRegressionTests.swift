import Foundation
import Testing
import Training

/// Replays the fuzzers' seeds and every input they ever found (`fuzz/corpus`, `fuzz/crashers`)
/// through the readers they fuzz: each must decode or throw, never trap.
@Suite struct FuzzRegressionTests {
    /// The files of `fuzz/<kind>/<target>`, by name.
    static func inputs(_ target: String) -> [(name: String, bytes: [UInt8])] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return ["corpus", "crashers"].flatMap { kind -> [(name: String, bytes: [UInt8])] in
            let directory = root.appendingPathComponent("fuzz/\(kind)/\(target)")
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.sorted().compactMap { name in
                (try? Data(contentsOf: directory.appendingPathComponent(name))).map { ("\(kind)/\(target)/\(name)", [UInt8]($0)) }
            }
        }
    }

    @Test func idxInputs() throws {
        let inputs = Self.inputs("idx")
        #expect(inputs.count >= 2)
        for input in inputs { _ = try? IDXFile(decoding: input.bytes, path: input.name) }
        // The seeds are valid files, so the fuzzer starts from inputs that get past the header.
        let images = try IDXFile(decoding: try #require(inputs.first { $0.name.hasSuffix("images-2x3x3") }).bytes, path: "seed")
        #expect(images.dimensions == [2, 3, 3] && images.bytes == Array(0..<18))
    }

    @Test func textInputs() throws {
        let inputs = Self.inputs("text")
        #expect(inputs.count >= 2)
        for input in inputs {
            let files = input.bytes.split(separator: 0, omittingEmptySubsequences: false).enumerated().map { ("file\($0)", Array($1)) }
            _ = try? TextCorpus(files: files, maxVocabulary: 64)
        }
    }

    @Test func checkpointInputs() throws {
        let inputs = Self.inputs("checkpoint")
        #expect(inputs.count >= 1)
        for input in inputs { _ = try? SafeTensors(decoding: input.bytes, path: input.name) }
        let seed = try SafeTensors(decoding: try #require(inputs.first { $0.name.hasSuffix("two-tensors.safetensors") }).bytes, path: "seed")
        #expect(seed["w"]?.shape == [2, 2] && seed["b"]?.values == [5, 6] && seed.metadata["step"] == "3")
    }
}
