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
        let decay = 1 - learningRate * h.weightDecay
        for index in 0..<parameters.count {
            let g = gradients[index], m = momentum[index]
            let c = h.beta1 * m + (1 - h.beta1) * g
            let sign: Float = c > 0 ? 1 : (c < 0 ? -1 : 0)
            parameters[index] = parameters[index] * decay - learningRate * sign
            momentum[index] = h.beta2 * m + (1 - h.beta2) * g
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
        let correction1 = 1 - powf(h.beta1, Float(steps))
        let correction2 = 1 - powf(h.beta2, Float(steps))
        let decay = 1 - learningRate * h.weightDecay
        for index in 0..<parameters.count {
            let g = gradients[index]
            let m = h.beta1 * firstMoment[index] + (1 - h.beta1) * g
            let v = h.beta2 * secondMoment[index] + (1 - h.beta2) * g * g
            firstMoment[index] = m
            secondMoment[index] = v
            let update = (m / correction1) / ((v / correction2).squareRoot() + h.epsilon)
            parameters[index] = parameters[index] * decay - learningRate * update
        }
        return true
    }
}
