/// Counts the +1 votes of N rows of sign bits with bit-sliced counters and turns the counts
/// into result bit planes.
///
/// Bit j of plane p of the counter holds bit p of coordinate j's count, so adding a row of
/// 64 votes is a ripple-carry over ⌈log2(N+1)⌉ planes of whole words: three word operations
/// a plane, never a loop over bits.
enum VoteKernel {
    /// Votes `chunkWords` words. Row r (rank r's bits for this chunk) starts at
    /// `rows + r * chunkWords`. Writes `reduction.resultPlanes(ranks:)` planes of
    /// `chunkWords` words each to `result`, plane p at `result + p * chunkWords`.
    /// `tieKey` and `firstWord` (the chunk's first word in the whole vector) seed tie-breaks.
    static func vote(rows: UnsafePointer<UInt64>, ranks: Int, chunkWords: Int, reduction: SignReduction,
                     tieKey: UInt64, firstWord: Int, into result: UnsafeMutablePointer<UInt64>) {
        let planes = reduction.countPlanes(ranks: ranks)
        let majority = ranks / 2 + 1
        let half = ranks / 2
        let tiesPossible = ranks % 2 == 0
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: planes) { counter in
            for word in 0..<chunkWords {
                counter.initialize(repeating: 0)
                for row in 0..<ranks {
                    var carry = rows[row * chunkWords + word]
                    for plane in 0..<planes {
                        let next = counter[plane] & carry
                        counter[plane] ^= carry
                        carry = next
                    }
                }
                switch reduction {
                case .majorityVote(let ties):
                    let (above, atMajority) = compare(counter, with: majority)
                    let winners = above | atMajority
                    if !tiesPossible {
                        result[word] = winners
                    } else if ties == .randomTieBreak {
                        let tied = compare(counter, with: half).equal
                        result[word] = winners | (tied & SignBits.random(key: tieKey, index: firstWord + word))
                    } else {
                        result[word] = winners
                        result[chunkWords + word] = ~compare(counter, with: half).equal
                    }
                case .average:
                    for plane in 0..<planes { result[plane * chunkWords + word] = counter[plane] }
                }
            }
        }
    }

    /// For each of 64 bit-sliced counts, whether it is greater than, and whether it equals,
    /// the constant `value`: a most-significant-plane-first comparison.
    @inline(__always)
    private static func compare(_ counter: UnsafeMutableBufferPointer<UInt64>, with value: Int) -> (greater: UInt64, equal: UInt64) {
        var greater: UInt64 = 0
        var equal: UInt64 = ~0
        for plane in stride(from: counter.count - 1, through: 0, by: -1) {
            if (value >> plane) & 1 == 1 {
                equal &= counter[plane]
            } else {
                greater |= equal & counter[plane]
                equal &= ~counter[plane]
            }
        }
        // A value too wide for the planes is greater than every count.
        if value >> counter.count != 0 { return (0, 0) }
        return (greater, equal)
    }
}
