import CVectorOps
import Collectives

/// An optimizer over a flat parameter vector and the matching gradient vector.
///
/// Distributed optimizers are collective: every rank calls ``step(parameters:gradients:learningRate:)``
/// with the same learning rate and vector length, and all ranks end the step with the same
/// parameters. Non-finite gradients are handled identically everywhere: when any rank's
/// gradient holds a NaN or an Inf, every rank skips the step (no parameter or state changes)
/// and `step` returns `false`.
public protocol Optimizer: AnyObject {
    /// A short name for logs, for example `"dlion-mavo"`.
    var name: String { get }
    /// The communicator whose ``Communicator/traffic`` counts this optimizer's bytes, if it
    /// communicates.
    var communicator: Communicator? { get }
    /// Extra per-parameter float buffers the optimizer keeps (momentum and the like).
    var stateCopies: Int { get }
    /// Applies one step at `learningRate`; returns whether it was applied (not skipped for
    /// non-finite gradients). `gradients` may be overwritten.
    func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
              learningRate: Float) throws -> Bool
    /// Applies one step to a model's parameters from its gradients, as
    /// ``step(parameters:gradients:learningRate:)`` does. An optimizer may also take the
    /// arena's gradient storage, whose values are dead after the step, for state of its own
    /// (``ParameterArena/exchangeGradientStorage(_:)``); Distributed Lion does, which saves it
    /// a pass over memory.
    func step(_ arena: ParameterArena, learningRate: Float) throws -> Bool
}

extension Optimizer {
    /// Steps on the arena's parameters and gradients.
    public func step(_ arena: ParameterArena, learningRate: Float) throws -> Bool {
        try step(parameters: arena.parameters, gradients: arena.gradients, learningRate: learningRate)
    }
}

/// Lion's hyperparameters (Chen et al. 2023; the defaults are the paper's).
public struct LionHyperparameters: Sendable, Equatable {
    /// Interpolation between momentum and gradient for the update direction.
    public var beta1: Float = 0.9
    /// Momentum decay.
    public var beta2: Float = 0.99
    /// Decoupled weight decay λ: x ← x − η·(sign(·) + λ·x).
    public var weightDecay: Float = 0

    /// Hyperparameters with the given values.
    public init(beta1: Float = 0.9, beta2: Float = 0.99, weightDecay: Float = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.weightDecay = weightDecay
    }
}

/// AdamW's hyperparameters (Loshchilov & Hutter; PyTorch's defaults).
public struct AdamWHyperparameters: Sendable, Equatable {
    /// First-moment decay.
    public var beta1: Float = 0.9
    /// Second-moment decay.
    public var beta2: Float = 0.999
    /// Added to √v̂.
    public var epsilon: Float = 1e-8
    /// Decoupled weight decay λ.
    public var weightDecay: Float = 0.01

    /// Hyperparameters with the given values.
    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

/// Whether every value is finite: one pass split over ``Parallel/threads``, no branch per
/// element (a ``FiniteProbe`` per piece).
public func allFinite(_ values: UnsafeBufferPointer<Float>) -> Bool {
    guard let base = values.baseAddress else { return true }
    return Parallel.mapPieces(count: values.count) { piece -> Bool in
        var probe = FiniteProbe()
        for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
            if start % 64 == 0 { dlion_prefetch_ahead(base + start) }
            probe.add(Lanes.load(base + start, min(16, piece.upperBound - start)))
        }
        return probe.allFinite
    }.allSatisfy { $0 }
}

/// Whether the gradients are finite on every rank of `communicator`: each rank's
/// ``allFinite(_:)``, then one 4-byte `MPI_Allreduce`, so that every rank takes the same
/// decision.
func allFiniteOnEveryRank(_ gradients: UnsafeMutableBufferPointer<Float>, communicator: Communicator) throws -> Bool {
    try communicator.holdsOnEveryRank(allFinite(UnsafeBufferPointer(gradients)))
}
