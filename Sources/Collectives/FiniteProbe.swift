/// Whether every value seen is finite, 16 lanes at a time with no branch per value: a NaN or
/// ±Inf anywhere makes the running sum of value·0 a NaN. The sign pack's non-finite check and
/// the training layer's `allFinite` both use it; it inlines into their loops.
@frozen
public struct FiniteProbe {
    @usableFromInline
    var sum = SIMD16<Float>(repeating: 0)

    /// A probe that has seen nothing.
    @inlinable
    public init() {}

    /// Looks at 16 more values.
    @inlinable @inline(__always)
    public mutating func add(_ values: SIMD16<Float>) { sum += values * 0 }

    /// Whether every value added was finite.
    @inlinable
    public var allFinite: Bool { sum.sum() == 0 }
}
