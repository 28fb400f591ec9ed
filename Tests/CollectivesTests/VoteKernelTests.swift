import PropertyBased
import Testing
@testable import Collectives

@Suite struct VoteKernelTests {
    /// Rows of random words for `ranks` ranks and `chunkWords` words (crossing the 128-word block).
    static let cases = zip(Gen.int(in: 1...20), Gen.int(in: 1...300), Gen.uint64(in: 0...UInt64.max))

    static func rows(ranks: Int, chunkWords: Int, seed: UInt64) -> [UInt64] {
        (0..<ranks * chunkWords).map { SignBits.random(key: seed, index: $0) }
    }

    static func vote(_ rows: [UInt64], ranks: Int, chunkWords: Int, _ reduction: SignReduction) -> [UInt64] {
        var result = [UInt64](repeating: 0, count: reduction.resultPlanes(ranks: ranks) * chunkWords)
        rows.withUnsafeBufferPointer { rows in
            result.withUnsafeMutableBufferPointer { out in
                VoteKernel.vote(rows: rows.baseAddress!, ranks: ranks, chunkWords: chunkWords, reduction: reduction,
                                tieKey: 5, firstWord: 0, into: out.baseAddress!)
            }
        }
        return result
    }

    @Test func majorityWithZeroTiesMatchesScalarCounts() async {
        await propertyCheck(input: Self.cases) { (ranks: Int, chunkWords: Int, seed: UInt64) in
            let rows = Self.rows(ranks: ranks, chunkWords: chunkWords, seed: seed)
            let counts = ScalarReference.counts(rows: rows, ranks: ranks, chunkWords: chunkWords)
            let result = Self.vote(rows, ranks: ranks, chunkWords: chunkWords, .majorityVote(.zero))
            let signs = ScalarReference.bits(result, count: chunkWords * 64)
            #expect(signs == counts.map { 2 * $0 > ranks })
            if ranks % 2 == 0 {
                let nonzero = ScalarReference.bits(Array(result[chunkWords...]), count: chunkWords * 64)
                #expect(nonzero == counts.map { 2 * $0 != ranks })
            } else {
                #expect(result.count == chunkWords)
            }
        }
    }

    @Test func randomTieBreakOnlyDecidesTies() async {
        await propertyCheck(input: Self.cases) { (ranks: Int, chunkWords: Int, seed: UInt64) in
            let rows = Self.rows(ranks: ranks, chunkWords: chunkWords, seed: seed)
            let counts = ScalarReference.counts(rows: rows, ranks: ranks, chunkWords: chunkWords)
            let signs = ScalarReference.bits(Self.vote(rows, ranks: ranks, chunkWords: chunkWords, .majorityVote), count: chunkWords * 64)
            for (count, sign) in zip(counts, signs) where 2 * count != ranks {
                #expect(sign == (2 * count > ranks))
            }
        }
    }

    @Test func tieBreakIsAFairCoin() {
        // Two ranks voting opposite ways tie everywhere.
        let chunkWords = 1024
        let rows = [UInt64](repeating: 0, count: chunkWords) + [UInt64](repeating: ~0, count: chunkWords)
        let plus = Self.vote(rows, ranks: 2, chunkWords: chunkWords, .majorityVote).reduce(0) { $0 + $1.nonzeroBitCount }
        #expect(abs(plus - chunkWords * 32) < 5 * 128)
    }

    @Test func averageReturnsTheCounts() async {
        await propertyCheck(input: Self.cases) { (ranks: Int, chunkWords: Int, seed: UInt64) in
            let rows = Self.rows(ranks: ranks, chunkWords: chunkWords, seed: seed)
            let counts = ScalarReference.counts(rows: rows, ranks: ranks, chunkWords: chunkWords)
            let planes = Self.vote(rows, ranks: ranks, chunkWords: chunkWords, .average)
            let planeCount = SignReduction.average.countPlanes(ranks: ranks)
            let decoded = (0..<chunkWords * 64).map { coordinate in
                (0..<planeCount).reduce(0) { total, plane in
                    total | Int(planes[plane * chunkWords + coordinate / 64] >> UInt64(coordinate % 64) & 1) << plane
                }
            }
            #expect(decoded == counts)
        }
    }

    /// The node-aware exchange's two levels: each node of `perNode` ranks counts its rows,
    /// then the vote from those counts equals the vote of all the rows at once, for every
    /// reduction, tie-breaks included.
    @Test func votingFromNodeCountsEqualsVotingAllRows() async {
        let shapes = zip(Gen.int(in: 1...4), Gen.int(in: 1...5), Gen.int(in: 1...200), Gen.uint64(in: 0...UInt64.max))
        await propertyCheck(input: shapes) { (perNode: Int, nodes: Int, chunkWords: Int, seed: UInt64) in
            let ranks = perNode * nodes
            for reduction in [SignReduction.majorityVote(.randomTieBreak), .majorityVote(.zero), .average, .ternaryAverage] {
                let rowsPerRank = reduction.inputPlanes
                let rows = Self.rows(ranks: ranks * rowsPerRank, chunkWords: chunkWords, seed: seed)
                let direct = Self.vote(rows, ranks: ranks, chunkWords: chunkWords, reduction)
                // Node h's rows are h·perNode ..< (h+1)·perNode, its count in `localPlanes` planes.
                let localPlanes = reduction.countPlanes(ranks: perNode * rowsPerRank)
                let counting: SignReduction = rowsPerRank == 2 ? .ternaryAverage : .average
                var counts = [UInt64](repeating: 0, count: nodes * localPlanes * chunkWords)
                var result = [UInt64](repeating: 0, count: direct.count)
                rows.withUnsafeBufferPointer { rows in
                    counts.withUnsafeMutableBufferPointer { counts in
                        for node in 0..<nodes {
                            VoteKernel.vote(counts: rows.baseAddress! + node * perNode * rowsPerRank * chunkWords,
                                            sources: perNode * rowsPerRank, planesPerSource: 1, ranks: perNode,
                                            chunkWords: chunkWords, reduction: counting, tieKey: 0, firstWord: 0,
                                            into: counts.baseAddress! + node * localPlanes * chunkWords)
                        }
                    }
                }
                counts.withUnsafeBufferPointer { counts in
                    result.withUnsafeMutableBufferPointer { out in
                        VoteKernel.vote(counts: counts.baseAddress!, sources: nodes, planesPerSource: localPlanes, ranks: ranks,
                                        chunkWords: chunkWords, reduction: reduction, tieKey: 5, firstWord: 0,
                                        into: out.baseAddress!)
                    }
                }
                #expect(result == direct, "\(reduction), \(nodes) nodes of \(perNode)")
            }
        }
    }

    @Test func majorityOfPackedVectors() {
        let votes = [[Float(1), -1, 1], [1, 1, -1], [-1, -1, 1]].map { PackedSigns(signsOf: $0) }
        #expect(PackedSigns.majority(of: votes).unpacked() == [1, -1, 1])
    }
}
