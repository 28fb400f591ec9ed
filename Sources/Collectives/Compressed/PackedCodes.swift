/// A vector of `count` unsigned codes of `bitsPerCode` bits each, stored as bit planes:
/// plane p holds bit p of every code, 64 codes a word, so a k-bit vector travels in
/// k·⌈count/64⌉ words. One plane holds signs, two a ternary value (sign and non-zero), k a
/// count of votes.
public struct PackedCodes: Equatable, Sendable {
    /// The number of codes.
    public let count: Int
    /// Bits per code, 1…32.
    public let bitsPerCode: Int
    /// `bitsPerCode` planes of ``wordsPerPlane`` words, plane p first at `p * wordsPerPlane`.
    public var words: [UInt64]

    /// Words in each plane: ⌈count / 64⌉.
    public var wordsPerPlane: Int { (count + 63) / 64 }

    /// All codes zero.
    public init(count: Int, bitsPerCode: Int) {
        precondition((1...32).contains(bitsPerCode), "PackedCodes: bitsPerCode \(bitsPerCode) is outside 1...32")
        precondition(count >= 0, "PackedCodes: count \(count) is negative")
        self.count = count
        self.bitsPerCode = bitsPerCode
        self.words = [UInt64](repeating: 0, count: bitsPerCode * ((count + 63) / 64))
    }

    /// Packs `codes`, each of which must fit in `bitsPerCode` bits.
    public init(_ codes: [UInt32], bitsPerCode: Int) {
        self.init(count: codes.count, bitsPerCode: bitsPerCode)
        for (index, code) in codes.enumerated() { self[index] = code }
    }

    /// Rebuilds a vector from its planes, as received from another rank.
    init(count: Int, bitsPerCode: Int, words: ArraySlice<UInt64>) {
        self.count = count
        self.bitsPerCode = bitsPerCode
        self.words = Array(words)
    }

    /// The code at `index`.
    public subscript(index: Int) -> UInt32 {
        get {
            let word = index >> 6, shift = UInt64(index & 63)
            var code: UInt32 = 0
            for plane in 0..<bitsPerCode {
                code |= UInt32(truncatingIfNeeded: words[plane * wordsPerPlane + word] >> shift & 1) << UInt32(plane)
            }
            return code
        }
        set {
            precondition(bitsPerCode == 32 || newValue >> UInt32(bitsPerCode) == 0,
                         "PackedCodes: code \(newValue) does not fit in \(bitsPerCode) bits")
            let word = index >> 6, bit = UInt64(1) << UInt64(index & 63)
            for plane in 0..<bitsPerCode {
                if newValue >> UInt32(plane) & 1 == 1 {
                    words[plane * wordsPerPlane + word] |= bit
                } else {
                    words[plane * wordsPerPlane + word] &= ~bit
                }
            }
        }
    }

    /// The codes, unpacked.
    public var codes: [UInt32] { (0..<count).map { self[$0] } }
}

/// A sparse vector: the coordinates of a `length`-long vector that are sent, as
/// (index, value) pairs; every other coordinate is zero.
public struct SparseVector: Equatable, Sendable {
    /// The length of the dense vector.
    public let length: Int
    /// The indices of the coordinates present, each below `length`.
    public var indices: [UInt32]
    /// The values at `indices`.
    public var values: [Float]

    /// A sparse vector of `length` holding `values` at `indices` (the same count).
    public init(length: Int, indices: [UInt32], values: [Float]) {
        precondition(indices.count == values.count, "SparseVector: \(indices.count) indices but \(values.count) values")
        self.length = length
        self.indices = indices
        self.values = values
    }

    /// Adds `scale` × this vector into `dense`, which must hold `length` floats.
    public func accumulate(into dense: UnsafeMutableBufferPointer<Float>, scale: Float = 1) {
        precondition(dense.count == length, "SparseVector.accumulate: dense holds \(dense.count), need \(length)")
        for (index, value) in zip(indices, values) { dense[Int(index)] += scale * value }
    }
}
