import PropertyBased
import Testing
@testable import Collectives

@Suite struct SegmentPlanTests {
    @Test func segmentsCoverEveryWordOnceWithBalancedChunks() async {
        await propertyCheck(input: Gen.int(in: 0...200_000), Gen.int(in: 1...17), Gen.int(in: 64...100_000)) { count, ranks, segmentLength in
            let plan = SegmentPlan(count: count, ranks: ranks, segmentLength: segmentLength, resultPlanes: 1)
            var next = 0
            for segment in plan.segments {
                #expect(segment.firstWord == next)
                #expect(segment.chunkWords * ranks >= segment.wordCount)
                #expect((segment.chunkWords - 1) * ranks < segment.wordCount)
                next += segment.wordCount
            }
            #expect(next == (count + 63) / 64)
        }
    }

    @Test func majorityVoteSendsAboutOneSixteenthOfABytePerCoordinate() {
        // 2·(N−1)/N·d/8 bytes up to padding, against 2·(N−1)/N·4d for fp32: 32× less.
        for ranks in [2, 3, 4, 16] {
            let count = 1 << 24
            let plan = SegmentPlan(count: count, ranks: ranks, segmentLength: 1 << 22, resultPlanes: 1)
            let ideal = 2 * (ranks - 1) * count / 8 / ranks
            #expect(abs(plan.bytesPerRank - ideal) <= 2 * (ranks - 1) * 8 * plan.segments.count)
            let fp32 = 2 * (ranks - 1) * count * 4 / ranks
            #expect(plan.bytesPerRank * 28 <= fp32)
        }
    }

    @Test func resultPlanes() {
        #expect(SignReduction.majorityVote.resultPlanes(ranks: 16) == 1)
        #expect(SignReduction.majorityVote(.zero).resultPlanes(ranks: 16) == 2)
        #expect(SignReduction.majorityVote(.zero).resultPlanes(ranks: 15) == 1)
        #expect(SignReduction.average.resultPlanes(ranks: 16) == 5)
        #expect(SignReduction.average.resultPlanes(ranks: 15) == 4)
        #expect(SignReduction.average.resultPlanes(ranks: 1) == 1)
        #expect(SignReduction.ternaryAverage.resultPlanes(ranks: 16) == 6)
        #expect(SignReduction.ternaryAverage.resultPlanes(ranks: 15) == 5)
        #expect(SignReduction.ternaryAverage.resultPlanes(ranks: 1) == 2)
        #expect(SignReduction.ternaryAverage.inputPlanes == 2 && SignReduction.average.inputPlanes == 1)
    }
}

@Suite struct PayloadTests {
    @Test func packedCodesRoundTrip() async {
        await propertyCheck(input: Gen.int(in: 1...32), Gen.uint32(in: 0...UInt32.max).array(of: 0...150)) { bits, raw in
            let codes = raw.map { bits == 32 ? $0 : $0 & ((1 << UInt32(bits)) - 1) }
            let packed = PackedCodes(codes, bitsPerCode: bits)
            #expect(packed.codes == codes)
            #expect(packed.words.count == bits * ((codes.count + 63) / 64))
        }
    }

    @Test func sparseVectorAccumulates() {
        let sparse = SparseVector(length: 5, indices: [0, 3, 3], values: [1, 2, 0.5])
        var dense = [Float](repeating: 1, count: 5)
        dense.withUnsafeMutableBufferPointer { sparse.accumulate(into: $0, scale: 2) }
        #expect(dense == [3, 1, 1, 6, 1])
    }
}

@Suite struct MPILayerUnitTests {
    @Test func callsBeforeStartThrowNotStarted() {
        #expect(throws: CollectiveError.notStarted(call: "MPI.world")) { try MPI.world() }
        #expect(throws: CollectiveError.notStarted(call: "MPI.wallTime")) { try MPI.wallTime() }
    }

    @Test func errorsSayWhatWentWrong() {
        let mismatch = CollectiveError.mismatchAcrossRanks(call: "allreduce", reason: "the element count ranges from 10 to 11 across ranks")
        #expect(mismatch.description.contains("10 to 11"))
        #expect(CollectiveError.rejectedOnOtherRank(call: "allgather", rank: 3).description.contains("rank 3"))
        #expect(CollectiveError.notStarted(call: "barrier").description.contains("MPI.start()"))
    }

    @Test func bitwiseReductionsNeedIntegers() {
        #expect(!ReductionOperation.bitwiseOr.isDefined(for: Float.self))
        #expect(ReductionOperation.bitwiseAnd.isDefined(for: UInt64.self))
        #expect(ReductionOperation.sum.isDefined(for: Double.self))
    }

    @Test func trafficCountersAddAndReset() {
        var counters = TrafficCounters()
        counters.record(sent: 10, received: 4)
        counters.record(sent: 1, received: 2)
        #expect(counters == TrafficCounters(bytesSent: 11, bytesReceived: 6, calls: 2))
    }

    @Test func messageBufferHoldsItsElements() {
        let buffer = MessageBuffer<Int32>([1, 2, 3])
        buffer[1] = 7
        #expect(buffer.elements == [1, 7, 3])
        #expect(MessageBuffer<Float>(repeating: 2, count: 4).elements == [2, 2, 2, 2])
    }
}
