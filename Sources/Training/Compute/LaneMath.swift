import Collectives

/// Lane helpers for the transformer's layers (its exponentials, softmax and GELU are C
/// kernels, `transformer_kernels.h`, compiled for AVX2 where the CPU has it).
enum LaneMath {
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
