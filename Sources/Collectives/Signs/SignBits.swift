/// Bit-level building blocks shared by the sign kernels: 16 float lanes to 16 bits and back,
/// and the counter-based random bits used for unbiased zero signs and tie-breaks.
///
/// The layout everywhere: coordinate `i` is bit `i % 64` of word `i / 64`; a set bit means +1.
enum SignBits {
    /// Bit i (i < 16) set where lane i of `lanes` is all ones; lanes must be 0 or −1.
    ///
    /// Baseline x86-64 and generic AArch64 have no Swift spelling for a move-mask, so the
    /// lanes are narrowed to bytes and each 8-byte half is gathered into one byte by a
    /// scalar multiply (the magic constant places byte k's low bit at bit 56 + k).
    @inline(__always)
    static func moveMask(_ lanes: SIMD16<Int32>) -> UInt64 {
        let bytes = unsafeBitCast(SIMD16<Int8>(truncatingIfNeeded: lanes), to: SIMD2<UInt64>.self)
            & SIMD2<UInt64>(repeating: 0x0101_0101_0101_0101)
        let low = (bytes[0] &* 0x0102_0408_1020_4080) >> 56
        let high = (bytes[1] &* 0x0102_0408_1020_4080) >> 56
        return low | (high << 8)
    }

    /// Lanes whose bit 31 is set where a float has no sign (±0 or NaN); other lanes have it
    /// clear. With a = |bits|: a − 1 wraps for a = 0, and a + 0x7FFFFF carries into bit 31 for
    /// a > 0x7F800000 (a NaN). Integer arithmetic, because Swift's `SIMDMask` selects lower to
    /// a lane-by-lane loop on baseline x86-64.
    @inline(__always)
    static func noSignLanes(_ bits: SIMD16<Int32>) -> SIMD16<Int32> {
        let magnitude = bits & 0x7FFF_FFFF
        return (magnitude &- 1) | (magnitude &+ 0x007F_FFFF)
    }

    /// Whether any lane has bit 31 set.
    @inline(__always)
    static func anySignBit(_ lanes: SIMD16<Int32>) -> Bool {
        let folded = unsafeBitCast(lanes, to: SIMD8<UInt64>.self)
        let any = (folded[0] | folded[1] | folded[2] | folded[3]) | (folded[4] | folded[5] | folded[6] | folded[7])
        return any & 0x8000_0000_8000_0000 != 0
    }

    /// Entry b holds ±1 for each of the 8 bits of b, lowest bit first.
    static let signTable: [SIMD8<Float>] = (0..<256).map { byte in
        var lanes = SIMD8<Float>(repeating: -1)
        for bit in 0..<8 where byte >> bit & 1 == 1 { lanes[bit] = 1 }
        return lanes
    }

    /// Lane weights 1, 2, 4, … 32768 for expanding 16 bits into 16 lanes.
    @inline(__always)
    static var laneWeights: SIMD16<Int32> { SIMD16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768) }

    /// Lane i is all ones where bit i of `bits` is set, else zero (16 lanes from the low 16 bits).
    @inline(__always)
    static func lanesSet(_ bits: UInt64) -> SIMD16<Int32> {
        let spread = SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: bits)) & laneWeights
        return (0 &- spread) &>> 31
    }

    /// 64 random bits that depend only on `key` and `index` (SplitMix64's finalizer):
    /// reproducible, independent across indices, and free of shared state.
    @inline(__always)
    static func random(key: UInt64, index: Int) -> UInt64 {
        var z = key &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A key for `random(key:index:)` mixing a seed with a stream number (rank, call, …).
    static func key(seed: UInt64, stream: UInt64) -> UInt64 {
        random(key: seed, index: Int(truncatingIfNeeded: stream &* 0xD1B5_4A32_D192_ED03 &+ 1))
    }
}
