import Collectives

/// Data-parallel training with fp32 gradients: the gradients are summed across ranks with
/// `MPI_Allreduce`, divided by N, and a local optimizer applies the mean on every rank
/// (Global Lion and Global AdamW in the Distributed Lion paper: 32 bits up and 32 down per
/// parameter). The mean gradient is the same everywhere, so a NaN on any rank is seen by all.
public final class DataParallel: Optimizer {
    public let name: String
    public let communicator: Communicator?
    public var stateCopies: Int { base.stateCopies }
    /// The optimizer applied to the mean gradient.
    public let base: Optimizer

    /// Wraps `base`, averaging gradients over `communicator`.
    public init(_ base: Optimizer, communicator: Communicator) {
        self.base = base
        self.communicator = communicator
        self.name = "global-\(base.name)"
    }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        let communicator = self.communicator!
        try communicator.allreduce(inPlace: gradients, operation: .sum)
        scale(gradients, by: 1 / Float(communicator.size))
        return try base.step(parameters: parameters, gradients: gradients, learningRate: learningRate)
    }
}

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
public final class DistributedLion: Optimizer {
    public let name: String
    public let communicator: Communicator?
    public let stateCopies = 1
    /// The hyperparameters.
    public let hyperparameters: LionHyperparameters
    /// This rank's momentum, never communicated.
    public let momentum: UnsafeMutableBufferPointer<Float>
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

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        let communicator = self.communicator!
        guard try allFiniteOnEveryRank(gradients, communicator: communicator) else { return false }
        let h = hyperparameters
        try signs.allreduce(.lionMomentum(momentum: momentum, gradient: UnsafeBufferPointer(gradients), beta1: h.beta1, beta2: h.beta2),
                            into: .lionUpdate(parameters: parameters, learningRate: learningRate, weightDecay: h.weightDecay))
        return true
    }
}
