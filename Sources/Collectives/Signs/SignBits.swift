/// Bit-level building blocks shared by the sign kernels: 16 bits to 16 float lanes (the other
/// way, a move-mask, is `CVectorOps`'s signmask.h), and the counter-based random bits used
/// for unbiased zero signs and tie-breaks.
///
/// The layout everywhere: coordinate `i` is bit `i % 64` of word `i / 64`; a set bit means +1.
@usableFromInline
enum SignBits {
    /// Entry b holds ±1 for each of the 8 bits of b, lowest bit first.
    @usableFromInline
    static let signTable: [SIMD8<Float>] = (0..<256).map { byte in
        var lanes = SIMD8<Float>(repeating: -1)
        for bit in 0..<8 where byte >> bit & 1 == 1 { lanes[bit] = 1 }
        return lanes
    }

    /// Lane weights 1, 2, 4, … 32768 for expanding 16 bits into 16 lanes.
    @inlinable @inline(__always)
    static var laneWeights: SIMD16<Int32> { SIMD16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768) }

    /// Lane i is all ones where bit i of `bits` is set, else zero (16 lanes from the low 16 bits).
    @inlinable @inline(__always)
    static func lanesSet(_ bits: UInt64) -> SIMD16<Int32> {
        let spread = SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: bits)) & laneWeights
        return (0 &- spread) &>> 31
    }

    /// 64 random bits that depend only on `key` and `index` (SplitMix64's finalizer):
    /// reproducible, independent across indices, and free of shared state.
    @inlinable @inline(__always)
    static func random(key: UInt64, index: Int) -> UInt64 {
        var z = key &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A key for `random(key:index:)` mixing a seed with a stream number (rank, call, …).
    @inlinable
    static func key(seed: UInt64, stream: UInt64) -> UInt64 {
        random(key: seed, index: Int(truncatingIfNeeded: stream &* 0xD1B5_4A32_D192_ED03 &+ 1))
    }
}
