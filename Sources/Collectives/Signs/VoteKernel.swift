/// Counts the +1 votes of N rows of sign bits with bit-sliced counters and turns the counts
/// into result bit planes.
///
/// Bit j of plane p of the counter holds bit p of coordinate j's count, so adding a row of
/// 64 votes is a ripple-carry over ⌈log2(N+1)⌉ planes of whole words: three word operations
/// a plane, never a loop over bits. Words are processed in blocks with the plane loop
/// outside the word loop, so each inner loop is a straight run over a block that the
/// compiler vectorizes.
enum VoteKernel {
    /// Words per block: the counter planes and carries of a block stay in L1.
    static let blockWords = 128

    /// Votes `chunkWords` words. Row r (rank r's bits for this chunk; with a ternary input,
    /// rank r/2's plane r%2) starts at `rows + r * chunkWords`. Writes
    /// `reduction.resultPlanes(ranks:)` planes of `chunkWords` words each to `result`, plane p
    /// at `result + p * chunkWords`. `tieKey` and `firstWord` (the chunk's first word in the
    /// whole vector) seed tie-breaks.
    static func vote(rows: UnsafePointer<UInt64>, ranks: Int, chunkWords: Int, reduction: SignReduction,
                     tieKey: UInt64, firstWord: Int, into result: UnsafeMutablePointer<UInt64>) {
        // A ternary input's two rows per rank, positive and not negative, count to Σ sign + N.
        vote(counts: rows, sources: ranks * reduction.inputPlanes, planesPerSource: 1, ranks: ranks, chunkWords: chunkWords,
             reduction: reduction, tieKey: tieKey, firstWord: firstWord, into: result)
    }

    /// Votes `chunkWords` words from partial counts: `sources` counts of `planesPerSource`
    /// bit planes each (plane p of source s, worth 2^p votes, starts at
    /// `rows + (s * planesPerSource + p) * chunkWords`), which add up to the votes of `ranks`
    /// ranks. With one plane per source this is ``vote(rows:ranks:chunkWords:reduction:tieKey:firstWord:into:)``;
    /// the node-aware exchange passes each node's count of its ranks' votes. The same counts
    /// give the same result planes, tie-breaks included, however they were split.
    static func vote(counts rows: UnsafePointer<UInt64>, sources: Int, planesPerSource: Int, ranks: Int, chunkWords: Int,
                     reduction: SignReduction, tieKey: UInt64, firstWord: Int, into result: UnsafeMutablePointer<UInt64>) {
        let planes = reduction.countPlanes(ranks: ranks * reduction.inputPlanes)
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: (planes + 3) * blockWords) { scratch in
            let counter = scratch.baseAddress!
            let carry = counter + planes * blockWords
            let above = carry + blockWords
            let equal = above + blockWords
            for blockStart in stride(from: 0, to: chunkWords, by: blockWords) {
                let width = min(blockWords, chunkWords - blockStart)
                count(rows: rows + blockStart, rowCount: sources * planesPerSource, rowPlanes: planesPerSource,
                      rowStride: chunkWords, width: width, planes: planes, counter: counter, carry: carry)
                let output = result + blockStart
                switch reduction {
                case .majorityVote(let ties):
                    compare(counter, planes: planes, width: width, with: ranks / 2 + 1, greater: above, equal: equal)
                    for word in 0..<width { output[word] = above[word] | equal[word] }
                    guard ranks % 2 == 0 else { continue }
                    compare(counter, planes: planes, width: width, with: ranks / 2, greater: above, equal: equal)
                    if ties == .randomTieBreak {
                        for word in 0..<width {
                            output[word] |= equal[word] & SignBits.random(key: tieKey, index: firstWord + blockStart + word)
                        }
                    } else {
                        for word in 0..<width { output[chunkWords + word] = ~equal[word] }
                    }
                case .average, .ternaryAverage:
                    for plane in 0..<planes {
                        (result + plane * chunkWords + blockStart).update(from: counter + plane * blockWords, count: width)
                    }
                }
            }
        }
    }

    /// Adds the rows' bits for `width` words into `planes` zeroed counter planes; row r is
    /// worth 2^(r mod `rowPlanes`) (plane r mod `rowPlanes` of a multi-plane count).
    @inline(__always)
    private static func count(rows: UnsafePointer<UInt64>, rowCount: Int, rowPlanes: Int, rowStride: Int, width: Int,
                              planes: Int, counter: UnsafeMutablePointer<UInt64>, carry: UnsafeMutablePointer<UInt64>) {
        counter.update(repeating: 0, count: planes * blockWords)
        for row in 0..<rowCount {
            carry.update(from: rows + row * rowStride, count: width)
            for plane in row % rowPlanes..<planes {
                let bits = counter + plane * blockWords
                for word in 0..<width {
                    let next = bits[word] & carry[word]
                    bits[word] ^= carry[word]
                    carry[word] = next
                }
            }
        }
    }

    /// For each of the 64 counts in each of `width` words, whether it is greater than, and
    /// whether it equals, the constant `value`: a most-significant-plane-first comparison.
    @inline(__always)
    private static func compare(_ counter: UnsafeMutablePointer<UInt64>, planes: Int, width: Int, with value: Int,
                                greater: UnsafeMutablePointer<UInt64>, equal: UnsafeMutablePointer<UInt64>) {
        greater.update(repeating: 0, count: width)
        // A value too wide for the planes is greater than every count.
        equal.update(repeating: value >> planes == 0 ? ~0 : 0, count: width)
        for plane in stride(from: planes - 1, through: 0, by: -1) {
            let bits = counter + plane * blockWords
            if (value >> plane) & 1 == 1 {
                for word in 0..<width { equal[word] &= bits[word] }
            } else {
                for word in 0..<width {
                    greater[word] |= equal[word] & bits[word]
                    equal[word] &= ~bits[word]
                }
            }
        }
    }
}
