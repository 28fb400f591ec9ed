/// A vector of signs, one bit per coordinate: coordinate i is bit i % 64 of word i / 64, and a
/// set bit means +1. Bits past `count` in the last word are padding.
public struct PackedSigns: Equatable, Sendable {
    /// The number of coordinates.
    public let count: Int
    /// ⌈count / 64⌉ words.
    public var words: [UInt64]

    /// All signs −1 (no bit set).
    public init(count: Int) {
        self.count = count
        self.words = [UInt64](repeating: 0, count: (count + 63) / 64)
    }

    /// Packs the signs of `source`. Exact zeros and NaNs vote as `zeroPolicy` says; the coin
    /// flips of `.random` are reproducible for `seed`.
    @inlinable
    public init<Source: SignSource>(_ source: Source, zeroPolicy: ZeroSignPolicy = .random, seed: UInt64 = 0) {
        self.init(count: source.count)
        pack(source, zeroPolicy: zeroPolicy, seed: seed)
    }

    /// Packs the signs of `source`, which must have `count` coordinates, into this vector's
    /// existing storage (see ``init(_:zeroPolicy:seed:)``).
    @inlinable
    public mutating func pack<Source: SignSource>(_ source: Source, zeroPolicy: ZeroSignPolicy = .random, seed: UInt64 = 0) {
        precondition(source.count == count, "PackedSigns.pack: the source has \(source.count) coordinates, need \(count)")
        let count = self.count
        words.withUnsafeMutableBufferPointer { words in
            guard let base = words.baseAddress else { return }
            _ = SignKernels.pack(source, coordinates: 0..<count, into: base, policy: zeroPolicy,
                             randomKey: SignBits.key(seed: seed, stream: 0))
        }
    }

    /// Packs the signs of `values` (see ``init(_:zeroPolicy:seed:)``).
    public init(signsOf values: [Float], zeroPolicy: ZeroSignPolicy = .random, seed: UInt64 = 0) {
        self = values.withUnsafeBufferPointer { PackedSigns(FloatSource($0), zeroPolicy: zeroPolicy, seed: seed) }
    }

    /// Whether coordinate `index` is +1.
    public subscript(index: Int) -> Bool {
        get { words[index >> 6] >> UInt64(index & 63) & 1 == 1 }
        set {
            let bit = UInt64(1) << UInt64(index & 63)
            if newValue { words[index >> 6] |= bit } else { words[index >> 6] &= ~bit }
        }
    }

    /// Writes ±1 for each coordinate into `output`, which must hold `count` floats.
    public func unpack(into output: UnsafeMutableBufferPointer<Float>) {
        precondition(output.count == count, "PackedSigns.unpack: output holds \(output.count) floats, need \(count)")
        words.withUnsafeBufferPointer { words in
            guard let base = words.baseAddress else { return }
            SignKernels.unpack(wordCount: words.count, firstCoordinate: 0, decoding: .sign, into: FloatSink(output),
                               ContiguousPlanes(base: base, stride: words.count))
        }
    }

    /// Writes −1, 0 or +1 for each coordinate into `output`: 0 where `nonzero` is clear,
    /// otherwise this vector's sign (the two planes of a ternary vector).
    public func unpack(into output: UnsafeMutableBufferPointer<Float>, nonzero: PackedSigns) {
        precondition(output.count == count && nonzero.count == count,
                     "PackedSigns.unpack: output (\(output.count)) and nonzero (\(nonzero.count)) must hold \(count)")
        let planes = words + nonzero.words
        planes.withUnsafeBufferPointer { planes in
            guard let base = planes.baseAddress else { return }
            SignKernels.unpack(wordCount: words.count, firstCoordinate: 0, decoding: .ternary, into: FloatSink(output),
                               ContiguousPlanes(base: base, stride: words.count))
        }
    }

    /// The signs as ±1 floats.
    public func unpacked() -> [Float] {
        var output = [Float](repeating: 0, count: count)
        output.withUnsafeMutableBufferPointer { unpack(into: $0) }
        return output
    }
}

extension PackedSigns {
    /// The majority vote of `votes`, computed locally with the same bit-sliced counters the
    /// sign allreduce's owners use; ties (an even number of votes) are broken by a fair coin
    /// seeded with `seed`. All votes must have the same count.
    ///
    /// This is what each rank does in the naive allgather-then-vote pattern.
    public static func majority(of votes: [PackedSigns], seed: UInt64 = 0) -> PackedSigns {
        guard let first = votes.first else { preconditionFailure("PackedSigns.majority: no votes") }
        precondition(votes.allSatisfy { $0.count == first.count }, "PackedSigns.majority: votes of different counts")
        var result = PackedSigns(count: first.count)
        let rows = votes.flatMap(\.words)
        rows.withUnsafeBufferPointer { rows in
            result.words.withUnsafeMutableBufferPointer { output in
                guard let rowBase = rows.baseAddress, let outputBase = output.baseAddress else { return }
                VoteKernel.vote(rows: rowBase, ranks: votes.count, chunkWords: output.count,
                                reduction: .majorityVote(.randomTieBreak), tieKey: SignBits.key(seed: seed, stream: 0),
                                firstWord: 0, into: outputBase)
            }
        }
        return result
    }
}
