import Collectives

/// Element-wise math on 16 float lanes, so that the transformer's layers run their
/// exponentials and tanh as vector code instead of one libm call per element (which cost a
/// third of a ViT step). Accurate to a few ulp for finite inputs; NaN or ±∞ in gives NaN out,
/// which the trainer's finite check then reports. Only adds, multiplies and bit operations:
/// comparisons and selects lower to lane-by-lane loops on baseline x86-64.
enum LaneMath {
    static let log2e = SIMD16<Float>(repeating: 1.442_695_04)
    /// ln 2 split in two, so that n·ln 2 is exact to float precision.
    static let ln2High = SIMD16<Float>(repeating: 0.693_359_375), ln2Low = SIMD16<Float>(repeating: -2.121_944_40e-4)
    /// 1.5·2²³: adding it rounds a float below 2²² to an integer held in the low mantissa bits.
    static let roundingMagic = SIMD16<Float>(repeating: 12_582_912)

    /// max(x, 0) lane by lane from the sign bit; NaN stays NaN.
    @inline(__always)
    static func relu(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let bits = unsafeBitCast(x, to: SIMD16<Int32>.self)
        return unsafeBitCast(bits & ~(bits &>> 31), to: SIMD16<Float>.self)
    }

    /// eˣ lane by lane (Cephes' `expf`: x = n·ln 2 + r, a degree-6 polynomial in r, 2ⁿ built
    /// in the exponent bits). Finite inputs are clamped to [−87.3, 88.3], where eˣ is a normal
    /// float, so a very negative x gives about 1e-38 rather than 0.
    @inline(__always)
    static func exp(_ input: SIMD16<Float>) -> SIMD16<Float> {
        let low = SIMD16<Float>(repeating: -87.3), high = SIMD16<Float>(repeating: 88.3)
        let raised = input + relu(low - input)
        let x = raised - relu(raised - high)
        let shifted = x * log2e + roundingMagic
        let n = shifted - roundingMagic
        let r = x - n * ln2High - n * ln2Low
        var p = SIMD16<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_91e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        p = p * (r * r) + r + 1
        let exponent = (unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(roundingMagic, to: SIMD16<Int32>.self) &+ 127) &<< 23
        return p * unsafeBitCast(exponent, to: SIMD16<Float>.self)
    }

    /// tanh lane by lane, as 1 − 2/(e²ˣ + 1): limits ±1, absolute error about 1e-7 near 0.
    @inline(__always)
    static func tanh(_ x: SIMD16<Float>) -> SIMD16<Float> {
        1 - 2 / (exp(x + x) + 1)
    }

    /// Writes out[i] = e^(x[i] − shift) for `count` values and returns their sum.
    @inline(__always)
    static func exponentiate(_ x: UnsafePointer<Float>, shift: Float, into out: UnsafeMutablePointer<Float>, count: Int) -> Float {
        var total = SIMD16<Float>(repeating: 0)
        forEachLaneGroup(count) { start, valid in
            var e = exp(FloatLanes.load(x + start, valid) - shift)
            if valid < 16 { e *= lanes(below: valid) }
            FloatLanes.store(e, out + start, valid)
            total += e
        }
        return total.sum()
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
