#if canImport(Glibc)
import Glibc
#endif
import Collectives

/// AdamW on one process (Loshchilov & Hutter), bias-corrected, with decoupled weight decay:
///
///     m = β1·m + (1−β1)·g,  v = β2·v + (1−β2)·g²
///     x = x − η·(m̂ / (√v̂ + ε) + λ·x),  m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)
public final class AdamW: Optimizer {
    public let name = "adamw"
    /// The hyperparameters.
    public let hyperparameters: AdamWHyperparameters
    /// First moments m.
    public let firstMoment: StateBuffer
    /// Second moments v.
    public let secondMoment: StateBuffer
    /// Steps applied so far (t).
    public private(set) var steps = 0

    /// AdamW for `count` parameters, moments zero. Throws when the moments would not fit in
    /// memory.
    public init(count: Int, hyperparameters: AdamWHyperparameters = AdamWHyperparameters()) throws {
        self.hyperparameters = hyperparameters
        let buffers = try StateBuffer.allocate(["first_moment", "second_moment"], count: count)
        (firstMoment, secondMoment) = (buffers[0], buffers[1])
    }

    public var state: OptimizerState { OptimizerState(buffers: [firstMoment, secondMoment], scalars: ["steps": steps]) }

    public func restore(scalars: [String: Int]) throws { steps = try OptimizerState.scalar("steps", in: scalars) }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        guard allFinite(UnsafeBufferPointer(gradients)) else { return false }
        steps += 1
        let h = hyperparameters
        let inverseCorrection1 = 1 / (1 - powf(h.beta1, Float(steps)))
        let inverseCorrection2 = 1 / (1 - powf(h.beta2, Float(steps)))
        let shrink = learningRate * h.weightDecay
        guard let x = parameters.baseAddress, let gradient = gradients.baseAddress,
              let m = firstMoment.storage.baseAddress, let v = secondMoment.storage.baseAddress else { return true }
        Parallel.forEachPiece(count: parameters.count) { piece in
            for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
                let valid = min(16, piece.upperBound - start)
                let g = FloatLanes.load(gradient + start, valid)
                let first = h.beta1 * FloatLanes.load(m + start, valid) + (1 - h.beta1) * g
                let second = h.beta2 * FloatLanes.load(v + start, valid) + (1 - h.beta2) * g * g
                FloatLanes.store(first, m + start, valid)
                FloatLanes.store(second, v + start, valid)
                let update = first * inverseCorrection1 / ((second * inverseCorrection2).squareRoot() + h.epsilon)
                FloatLanes.store(decoupledStep(FloatLanes.load(x + start, valid), update: update, learningRate: learningRate, shrink: shrink),
                                 x + start, valid)
            }
        }
        return true
    }
}
