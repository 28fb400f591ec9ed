import Collectives

/// An optimizer over a flat parameter vector and the matching gradient vector.
///
/// Non-finite gradients skip the step: no parameter or state changes, and `step` returns
/// `false`. For a ``DistributedOptimizer`` that decision is the same on every rank; Local
/// AdamW's ranks skip alone and its ``Synchronization``s report it.
public protocol Optimizer: AnyObject {
    /// A short name for logs, for example `"dlion-mavo"`.
    var name: String { get }
    /// What the optimizer keeps on this rank between steps, named for checkpoints.
    var state: OptimizerState { get }
    /// Sets the scalars of ``state`` to saved values (the buffers restore themselves through
    /// ``StateBuffer/restore(from:)``); throws when one is missing.
    func restore(scalars: [String: Int]) throws
    /// Applies one step at `learningRate`; returns whether it was applied (not skipped for
    /// non-finite gradients). `gradients` may be overwritten.
    func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
              learningRate: Float) throws -> Bool
    /// Applies one step to a model's parameters from its gradients, as
    /// ``step(parameters:gradients:learningRate:)`` does. Distributed Lion also takes over
    /// the arena's gradient storage, whose values are dead after the step, for its new
    /// momentum, which saves it a pass over memory.
    func step(_ arena: ParameterArena, learningRate: Float) throws -> Bool
}

extension Optimizer {
    /// Steps on the arena's parameters and gradients.
    public func step(_ arena: ParameterArena, learningRate: Float) throws -> Bool {
        try arena.withGradients { try step(parameters: arena.parameters, gradients: $0, learningRate: learningRate) }
    }

    /// Applies one step to arrays of parameters and gradients (of the same count);
    /// `gradients` may be overwritten.
    public func step(parameters: inout [Float], gradients: inout [Float], learningRate: Float) throws -> Bool {
        try parameters.withUnsafeMutableBufferPointer { x in
            try gradients.withUnsafeMutableBufferPointer { g in try step(parameters: x, gradients: g, learningRate: learningRate) }
        }
    }
}

/// An optimizer that communicates: collective, so every rank calls each step with the same
/// learning rate and vector length, and all ranks end a step, or the round of steps
/// ``communicationRounds`` counts, with the same parameters.
public protocol DistributedOptimizer: Optimizer {
    /// The communicator the optimizer's messages travel on; its ``Communicator/traffic``
    /// counts the optimizer's bytes.
    var communicator: Communicator { get }
    /// Exchanges of gradients, votes or parameters so far: one per step for the optimizers
    /// that exchange every step, one per synchronization for Local AdamW.
    var communicationRounds: Int { get }
    /// The synchronizations so far, for optimizers that train locally between them (Local
    /// AdamW); empty for those that exchange every step.
    var synchronizations: [Synchronization] { get }
    /// Whether every rank's parameters are the same now: always for the optimizers that
    /// exchange every step, only right after a synchronization for Local AdamW. A checkpoint
    /// saves each rank's own parameters when they are not.
    var replicasAgree: Bool { get }
}

extension DistributedOptimizer {
    /// Always: the ranks apply the same update every step.
    public var replicasAgree: Bool { true }

    /// None: this optimizer exchanges every step.
    public var synchronizations: [Synchronization] { [] }
}

/// A distributed optimizer that can start communicating while the gradients are still being
/// computed: its step runs the backward pass itself, and sends each part of the gradient as
/// soon as backward says it is final (``Model/backward(_:gradientsReady:)``).
///
/// ```swift
/// let applied = try optimizer.step(model.arena, learningRate: rate) { ready in
///     model.backward(batch, gradientsReady: ready)
/// }
/// ```
///
/// The step applied is the one ``Optimizer/step(_:learningRate:)`` applies after a full
/// backward pass, bit for bit.
public protocol OverlappingOptimizer: DistributedOptimizer {
    /// One step on `arena`: runs `computingGradients`, which writes the arena's gradients and
    /// calls its `ready` argument with descending offsets from which they are final, and
    /// exchanges each final part while the rest is computed; returns whether the step was
    /// applied, as ``Optimizer/step(_:learningRate:)`` does.
    func step(_ arena: ParameterArena, learningRate: Float,
              computingGradients: (_ ready: (_ firstFinalGradient: Int) throws -> Void) throws -> Void) throws -> Bool
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
