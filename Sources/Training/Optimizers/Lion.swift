#if canImport(Glibc)
import Glibc
#endif
import Collectives

/// Lion on one process (Chen et al. 2023), with the update order of google/automl,
/// lion-pytorch and optax:
///
///     c = β1·m + (1−β1)·g        (the old momentum)
///     x = x − η·(sign(c) + λ·x)   sign(0) = 0
///     m = β2·m + (1−β2)·g
public final class Lion: Optimizer {
    public let name = "lion"
    public let communicator: Communicator? = nil
    public let stateCopies = 1
    /// The hyperparameters.
    public let hyperparameters: LionHyperparameters
    /// The momentum, one float per parameter.
    public let momentum: UnsafeMutableBufferPointer<Float>

    /// Lion for `count` parameters, momentum zero.
    public init(count: Int, hyperparameters: LionHyperparameters = LionHyperparameters()) {
        self.hyperparameters = hyperparameters
        momentum = zeroedBuffer(count)
    }

    deinit { momentum.deallocate() }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        guard allFinite(UnsafeBufferPointer(gradients)) else { return false }
        Lion.update(parameters: parameters, gradients: UnsafeBufferPointer(gradients), momentum: momentum,
                    learningRate: learningRate, hyperparameters)
        return true
    }

    /// The update itself, on any buffers of the same count.
    static func update(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>,
                       momentum: UnsafeMutableBufferPointer<Float>, learningRate: Float, _ h: LionHyperparameters) {
        guard let x = parameters.baseAddress, let gradient = gradients.baseAddress, let m = momentum.baseAddress else { return }
        let decay = 1 - learningRate * h.weightDecay
        Parallel.forEachPiece(count: parameters.count) { piece in
            for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
                let valid = min(16, piece.upperBound - start)
                let g = Lanes.load(gradient + start, valid), old = Lanes.load(m + start, valid)
                let direction = Lanes.sign(h.beta1 * old + (1 - h.beta1) * g)
                Lanes.store(Lanes.load(x + start, valid) * decay - learningRate * direction, x + start, valid)
                Lanes.store(h.beta2 * old + (1 - h.beta2) * g, m + start, valid)
            }
        }
    }
}

/// AdamW on one process (Loshchilov & Hutter), bias-corrected, with decoupled weight decay:
///
///     m = β1·m + (1−β1)·g,  v = β2·v + (1−β2)·g²
///     x = x − η·(m̂ / (√v̂ + ε) + λ·x),  m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)
public final class AdamW: Optimizer {
    public let name = "adamw"
    public let communicator: Communicator? = nil
    public let stateCopies = 2
    /// The hyperparameters.
    public let hyperparameters: AdamWHyperparameters
    /// First moments.
    public let firstMoment: UnsafeMutableBufferPointer<Float>
    /// Second moments.
    public let secondMoment: UnsafeMutableBufferPointer<Float>
    /// Steps applied so far (t).
    public private(set) var steps = 0

    /// AdamW for `count` parameters, moments zero.
    public init(count: Int, hyperparameters: AdamWHyperparameters = AdamWHyperparameters()) {
        self.hyperparameters = hyperparameters
        firstMoment = zeroedBuffer(count)
        secondMoment = zeroedBuffer(count)
    }

    deinit {
        firstMoment.deallocate()
        secondMoment.deallocate()
    }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        guard allFinite(UnsafeBufferPointer(gradients)) else { return false }
        steps += 1
        let h = hyperparameters
        let inverseCorrection1 = 1 / (1 - powf(h.beta1, Float(steps)))
        let inverseCorrection2 = 1 / (1 - powf(h.beta2, Float(steps)))
        let decay = 1 - learningRate * h.weightDecay
        guard let x = parameters.baseAddress, let gradient = gradients.baseAddress else { return true }
        let m = firstMoment.baseAddress!, v = secondMoment.baseAddress!
        Parallel.forEachPiece(count: parameters.count) { piece in
            for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
                let valid = min(16, piece.upperBound - start)
                let g = Lanes.load(gradient + start, valid)
                let first = h.beta1 * Lanes.load(m + start, valid) + (1 - h.beta1) * g
                let second = h.beta2 * Lanes.load(v + start, valid) + (1 - h.beta2) * g * g
                Lanes.store(first, m + start, valid)
                Lanes.store(second, v + start, valid)
                let update = first * inverseCorrection1 / ((second * inverseCorrection2).squareRoot() + h.epsilon)
                Lanes.store(Lanes.load(x + start, valid) * decay - learningRate * update, x + start, valid)
            }
        }
        return true
    }
}
