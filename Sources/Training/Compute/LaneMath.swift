import Collectives

/// Reductions on 16 float lanes for the transformer's layers (its exponentials and GELU are
/// C kernels, `transformer_kernels.h`, compiled for AVX2 where the CPU has it). Only adds,
/// multiplies and bit operations: comparisons and selects lower to lane-by-lane loops on
/// baseline x86-64.
enum LaneMath {
    /// max(x, 0) lane by lane from the sign bit; NaN stays NaN.
    @inline(__always)
    static func relu(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let bits = unsafeBitCast(x, to: SIMD16<Int32>.self)
        return unsafeBitCast(bits & ~(bits &>> 31), to: SIMD16<Float>.self)
    }

    /// The largest of `count` (≥ 1) finite values.
    @inline(__always)
    static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var largest = SIMD16<Float>(repeating: x[0])
        forEachLaneGroup(count) { start, valid in
            // Lanes past `valid` repeat x[0], which cannot raise the maximum.
            var values = FloatLanes.load(x + start, valid)
            if valid < 16 { values += (1 - lanes(below: valid)) * x[0] }
            largest += relu(values - largest)
        }
        return largest.max()
    }

    /// 1 in the first `valid` lanes, 0 after them.
    @inline(__always)
    static func lanes(below valid: Int) -> SIMD16<Float> {
        var mask = SIMD16<Float>(repeating: 0)
        for lane in 0..<valid { mask[lane] = 1 }
        return mask
    }
}

/// Calls `body(start, valid)` for each group of 16 of `count` elements: `valid` is 16 (a
/// constant, once inlined) but in a shorter last group.
@inline(__always)
func forEachLaneGroup(_ count: Int, _ body: (_ start: Int, _ valid: Int) -> Void) {
    var start = 0
    while start + 16 <= count {
        body(start, 16)
        start += 16
    }
    if start < count { body(start, count - start) }
}
