import Collectives

/// Distributed Lion (Liu et al. 2024): each rank keeps its own momentum, sends one bit per
/// parameter — the sign of β1·m + (1−β1)·g — and applies the combined vote:
///
///     δᵢ = sign(β1·mᵢ + (1−β1)·gᵢ)
///     Δ = sign(Σδᵢ)  (majority vote)   or   Δ = (1/N)·Σδᵢ  (average)
///     x = x − η·(Δ + λ·x),   mᵢ = β2·mᵢ + (1−β2)·gᵢ
///
/// The signs are packed straight from momentum and gradient, and the vote is unpacked straight
/// into the update, by ``SignAllreduce``. Every rank starts from the same parameters and
/// applies the same Δ, so parameters stay identical without ever being sent.
///
/// Stepping on a ``ParameterArena`` (``step(_:learningRate:)``) moves 20 bytes per parameter
/// instead of 24: the finite check rides in the pack, the new momentum is written over the
/// dead gradients, and on success that storage becomes the momentum while the old momentum's
/// storage becomes the arena's gradient storage.
public final class DistributedLion: Optimizer {
    public let name: String
    public let communicator: Communicator?
    public let stateCopies = 1
    /// The hyperparameters.
    public let hyperparameters: LionHyperparameters
    /// This rank's momentum, never communicated. Its storage changes with each step on an arena.
    public private(set) var momentum: UnsafeMutableBufferPointer<Float>
    /// The collective that carries the votes.
    public let signs: SignAllreduce

    /// Distributed Lion for `count` parameters over `communicator`, combining votes with
    /// `reduction` (majority vote by default). `seed` makes coin flips for exact zeros and
    /// ties reproducible.
    public init(count: Int, communicator: Communicator, reduction: SignReduction = .majorityVote,
                hyperparameters: LionHyperparameters = LionHyperparameters(), seed: UInt64 = 0) {
        self.communicator = communicator
        self.hyperparameters = hyperparameters
        self.momentum = zeroedBuffer(count)
        self.signs = SignAllreduce(communicator: communicator, reduction: reduction, seed: seed)
        switch reduction {
        case .average: name = "dlion-avg"
        case .majorityVote: name = "dlion-mavo"
        }
    }

    deinit { momentum.deallocate() }

    /// One step on flat buffers: a finite check on every rank first, then the momentum is
    /// updated in place by the pack.
    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        guard try allFiniteOnEveryRank(gradients, communicator: communicator!) else { return false }
        return try step(parameters: parameters, gradients: UnsafeBufferPointer(gradients), nextMomentum: momentum,
                        learningRate: learningRate)
    }

    /// One step on `arena`, a pass over memory cheaper than the flat step: the pack writes the
    /// new momentum over the arena's gradients and checks it is finite, and only if it is on
    /// every rank do the parameters move and that storage become the momentum.
    public func step(_ arena: ParameterArena, learningRate: Float) throws -> Bool {
        let applied = try step(parameters: arena.parameters, gradients: UnsafeBufferPointer(arena.gradients),
                               nextMomentum: arena.gradients, learningRate: learningRate, nonFinite: .skip)
        if applied { momentum = arena.exchangeGradientStorage(momentum) }
        return applied
    }

    private func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>,
                      nextMomentum: UnsafeMutableBufferPointer<Float>, learningRate: Float,
                      nonFinite: NonFiniteInput = .vote) throws -> Bool {
        let h = hyperparameters
        return try signs.allreduce(
            .lionMomentum(momentum: UnsafeBufferPointer(momentum), gradient: gradients, nextMomentum: nextMomentum,
                          beta1: h.beta1, beta2: h.beta2),
            into: .lionUpdate(parameters: parameters, learningRate: learningRate, weightDecay: h.weightDecay),
            nonFinite: nonFinite)
    }
}
