#if canImport(Glibc)
import Glibc
#endif

/// SplitMix64: a small, fast, seedable generator for initialization, shuffles and synthetic
/// data. Every rank that uses the same seed draws the same numbers.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's position: the next draw depends only on it.
    public internal(set) var state: UInt64

    /// A generator seeded with `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A float uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * Float(next() >> 40) / Float(1 << 24)
    }

    /// A standard normal float (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(Float(next() >> 40) / Float(1 << 24), .leastNormalMagnitude)
        let u2 = Float(next() >> 40) / Float(1 << 24)
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }
}
