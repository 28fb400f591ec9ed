import Collectives

/// Lion on one process (Chen et al. 2023), with the update order of google/automl,
/// lion-pytorch and optax:
///
///     c = β1·m + (1−β1)·g        (the old momentum)
///     x = x − η·(sign(c) + λ·x)   sign(0) = 0
///     m = β2·m + (1−β2)·g
public final class Lion: Optimizer {
    public let name = "lion"
    /// The hyperparameters.
    public let hyperparameters: LionHyperparameters
    /// The momentum, one float per parameter.
    public let momentum: StateBuffer

    /// Lion for `count` parameters, momentum zero. Throws when the momentum would not fit in
    /// memory.
    public init(count: Int, hyperparameters: LionHyperparameters = LionHyperparameters()) throws {
        self.hyperparameters = hyperparameters
        momentum = try StateBuffer.allocate(["momentum"], count: count)[0]
    }

    public var state: OptimizerState { OptimizerState(buffers: [momentum]) }

    /// Lion has no scalars.
    public func restore(scalars: [String: Int]) throws {}

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        guard allFinite(UnsafeBufferPointer(gradients)) else { return false }
        guard let x = parameters.baseAddress, let gradient = gradients.baseAddress, let m = momentum.storage.baseAddress else {
            return true
        }
        let h = hyperparameters
        let shrink = learningRate * h.weightDecay
        Parallel.forEachPiece(count: parameters.count) { piece in
            for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
                let valid = min(16, piece.upperBound - start)
                let g = FloatLanes.load(gradient + start, valid), old = FloatLanes.load(m + start, valid)
                let direction = FloatLanes.sign(h.beta1 * old + (1 - h.beta1) * g)
                FloatLanes.store(decoupledStep(FloatLanes.load(x + start, valid), update: direction, learningRate: learningRate, shrink: shrink),
                                 x + start, valid)
                FloatLanes.store(h.beta2 * old + (1 - h.beta2) * g, m + start, valid)
            }
        }
        return true
    }
}
