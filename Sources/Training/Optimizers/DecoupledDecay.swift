/// x − (ηλ·x + η·u) on 16 lanes: a step of update `u` at learning rate η with decoupled
/// weight decay, `shrink` = ηλ. The decay enters as the product ηλ·x, not as the factor
/// (1 − ηλ): rounded to float32, that factor is off by up to 2⁻²⁵ (up to 3 % of the decay at
/// ηλ = 10⁻⁶, twice the decay at ηλ = 3·10⁻⁸) and is exactly 1 below ηλ = 2⁻²⁵, and x·(1 − ηλ)
/// is rounded once more before the step meets it. Here the small terms are summed first, so
/// x is rounded once: the result is that of a float64 step rounded to float32, within one
/// unit in the last place. (A decay below half a unit of x still moves nothing, in float32
/// storage, whichever way it is computed.)
@inlinable @inline(__always)
func decoupledStep(_ x: SIMD16<Float>, update: SIMD16<Float>, learningRate: Float, shrink: Float) -> SIMD16<Float> {
    x - (shrink * x + learningRate * update)
}
