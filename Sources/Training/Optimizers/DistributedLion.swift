import Collectives

/// Distributed Lion (Liu et al. 2024): each rank keeps its own momentum, sends one bit per
/// parameter — the sign of β1·m + (1−β1)·g — and applies the combined vote:
///
///     δᵢ = sign(β1·mᵢ + (1−β1)·gᵢ)
///     Δ = sign(Σδᵢ)  (majority vote)   or   Δ = (1/N)·Σδᵢ  (average)
///     x = x − η·(Δ + λ·x),   mᵢ = β2·mᵢ + (1−β2)·gᵢ
///
/// One ``SignAllreduce`` call is the whole step: it packs the votes straight from momentum
/// and gradient (``LionDirection``, which writes the new momentum in the same pass) and
/// unpacks the vote straight into the update (``LionUpdate``). Every rank starts from the
/// same parameters and applies the same Δ, so parameters stay identical without ever being
/// sent.
///
/// Stepping on a ``ParameterArena`` (``step(_:learningRate:)``) moves 20 bytes per parameter
/// instead of 24: the finite check rides in the pack, the new momentum is written over the
/// dead gradients, and on success that storage becomes the momentum while the old momentum's
/// storage becomes the arena's gradient storage.
public final class DistributedLion: OverlappingOptimizer {
    public let name: String
    public var communicator: Communicator { signs.communicator }
    public private(set) var communicationRounds = 0
    /// The hyperparameters.
    public let hyperparameters: LionHyperparameters
    /// This rank's momentum, never communicated.
    public let momentum: StateBuffer
    /// The collective that carries the votes.
    public let signs: SignAllreduce

    /// Distributed Lion for `count` parameters over `communicator`, combining votes with
    /// `reduction` (majority vote with a random tie-break by default); a coordinate whose
    /// update direction is exactly zero votes as `zeroPolicy` says. `seed` makes coin flips
    /// for exact zeros and ties reproducible. An overlapped step
    /// (``step(_:learningRate:computingGradients:)``) sends votes in buckets of `bucketLength`
    /// parameters (``SignAllreduce/bucketLength``). `exchangeShape` lays the exchange over the
    /// nodes (``ExchangeShape``; the same parameters either way). Throws when the momentum
    /// would not fit in memory.
    public init(count: Int, communicator: Communicator, reduction: SignReduction = .majorityVote,
                zeroPolicy: ZeroSignPolicy = .random, hyperparameters: LionHyperparameters = LionHyperparameters(),
                seed: UInt64 = 0, bucketLength: Int = 1 << 18, exchangeShape: ExchangeShape = .flat) throws {
        self.hyperparameters = hyperparameters
        self.momentum = try StateBuffer.allocate(["momentum"], count: count)[0]
        self.signs = SignAllreduce(communicator: communicator, reduction: reduction, zeroPolicy: zeroPolicy, seed: seed,
                                   bucketLength: bucketLength, shape: exchangeShape)
        switch reduction {
        case .average: name = "dlion-avg"
        case .ternaryAverage: name = "dlion-avg-ternary"
        case .majorityVote: name = "dlion-mavo"
        }
    }

    public var state: OptimizerState {
        OptimizerState(buffers: [momentum], scalars: ["sign_allreduce_calls": Int(truncatingIfNeeded: signs.calls),
                                                      "communication_rounds": communicationRounds])
    }

    public func restore(scalars: [String: Int]) throws {
        signs.calls = UInt64(truncatingIfNeeded: try OptimizerState.scalar("sign_allreduce_calls", in: scalars))
        communicationRounds = try OptimizerState.scalar("communication_rounds", in: scalars)
    }

    /// One step on flat buffers: a finite check on every rank first, then the momentum is
    /// updated in place by the pack.
    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        guard try allFiniteOnEveryRank(gradients, communicator: communicator) else { return false }
        return try step(parameters: parameters, gradients: UnsafeBufferPointer(gradients), nextMomentum: momentum.storage,
                        learningRate: learningRate, nonFinite: .vote)
    }

    /// One step on `arena`, a pass over memory cheaper than the flat step: the pack writes the
    /// new momentum over the arena's gradients and checks it is finite, and only if it is on
    /// every rank do the parameters move and that storage become the momentum.
    public func step(_ arena: ParameterArena, learningRate: Float) throws -> Bool {
        try step(arena, learningRate: learningRate, overlappingWith: nil)
    }

    /// ``step(_:learningRate:)`` with the votes of each bucket of layers sent as soon as
    /// `computingGradients` says their gradients are final
    /// (``SignAllreduce/allreduce(_:into:nonFinite:whileFilling:)``); the same step bit for bit.
    public func step(_ arena: ParameterArena, learningRate: Float,
                     computingGradients: (_ ready: (_ firstFinalGradient: Int) throws -> Void) throws -> Void) throws -> Bool {
        try withoutActuallyEscaping(computingGradients) { try step(arena, learningRate: learningRate, overlappingWith: $0) }
    }

    private func step(_ arena: ParameterArena, learningRate: Float, overlappingWith fill: Fill?) throws -> Bool {
        let gradients = arena.withGradients { $0 }
        let applied = try step(parameters: arena.parameters, gradients: UnsafeBufferPointer(gradients), nextMomentum: gradients,
                               learningRate: learningRate, nonFinite: .skip, overlappingWith: fill)
        if applied { momentum.storage = arena.exchangeGradientStorage(momentum.storage) }
        return applied
    }

    /// What computes the gradients while the votes travel.
    private typealias Fill = ((Int) throws -> Void) throws -> Void

    /// The whole update: one sign allreduce from Lion's direction into Lion's update, overlapped
    /// with `fill` when there is one.
    private func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>,
                      nextMomentum: UnsafeMutableBufferPointer<Float>, learningRate: Float,
                      nonFinite: NonFiniteInput, overlappingWith fill: Fill? = nil) throws -> Bool {
        let h = hyperparameters
        let direction = LionDirection(momentum: UnsafeBufferPointer(momentum.storage), gradient: gradients,
                                      nextMomentum: nextMomentum, beta1: h.beta1, beta2: h.beta2)
        let update = LionUpdate(parameters: parameters, learningRate: learningRate, weightDecay: h.weightDecay)
        let applied = if let fill {
            try signs.allreduce(direction, into: update, nonFinite: nonFinite, whileFilling: fill)
        } else {
            try signs.allreduce(direction, into: update, nonFinite: nonFinite)
        }
        if applied { communicationRounds += 1 }
        return applied
    }
}
