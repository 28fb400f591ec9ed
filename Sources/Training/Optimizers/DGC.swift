import Collectives

/// Deep Gradient Compression (Lin et al. 2018) as the paper runs it: momentum SGD whose
/// momentum lives in the sparsification. Each step, on each rank:
///
/// 1. local gradient clipping: when ``clipNorm`` is set, g is scaled down to an L2 norm of at
///    most clipNorm/√N (the global threshold shared out so the N gradients' sum stays within it);
/// 2. momentum correction and accumulation: u ← μ·u + g, v ← v + u;
/// 3. sparsification: the coordinates of v whose magnitude is among the largest
///    ``SparsityWarmUp/fraction(at:)`` (a threshold from a sample of about 10 000 coordinates)
///    are sent as (index, value) pairs by a sparse allgather, and cleared from v and from u
///    (momentum factor masking);
/// 4. the update, the same on every rank: x ← x − η·(G + λ·x), G the mean of the N sparse
///    vectors. The weight decay λ is applied here, to every coordinate every step, rather
///    than sent through the sparsification (which would delay it by the accumulation).
///
/// The warm-up is the paper's (``SparsityWarmUp``). The bytes of the warm-up and of the steady
/// state are counted apart, since the steady state's bits per parameter are the figure the
/// paper quotes.
///
/// Non-finite gradients on any rank make every rank skip the step.
public final class DGC: DistributedOptimizer {
    public let name = "dgc"
    public let communicator: Communicator
    public var communicationRounds: Int { exchanges }
    /// The fraction of coordinates sent at each step.
    public let sparsity: SparsityWarmUp
    /// μ of the momentum correction.
    public let momentum: Float
    /// λ, applied as η·λ·x every step.
    public let weightDecay: Float
    /// The global L2 threshold of the local gradient clipping, or `nil` for none.
    public let clipNorm: Float?
    /// The momentum-corrected gradient u.
    public let corrected: StateBuffer
    /// The accumulated velocity v, whose unsent part stays local.
    public let accumulated: StateBuffer
    /// Bytes this rank sent in the warm-up's steps, and after it.
    public private(set) var warmUpBytesSent = 0, steadyBytesSent = 0
    /// Steps whose gradient the local clipping scaled down.
    public private(set) var clippedSteps = 0
    /// Steps applied (each one exchange).
    private var exchanges = 0
    /// Steps applied after the warm-up, the steps of ``steadyBytesSent``.
    public var steadySteps: Int { max(0, exchanges - sparsity.steps) }

    /// DGC over `count` parameters on `communicator`. Throws when `ratio` is outside (0, 1],
    /// `warmUpSteps` is negative, or `momentum`, `weightDecay` or `clipNorm` is out of range.
    public init(count: Int, communicator: Communicator, ratio: Float = 0.001, warmUpSteps: Int, momentum: Float = 0.9,
                weightDecay: Float = 1e-4, clipNorm: Float? = nil) throws {
        sparsity = try SparsityWarmUp(ratio: ratio, steps: warmUpSteps)
        guard momentum >= 0 && momentum < 1 else { throw TrainingError.invalidConfiguration("DGC's momentum must be in [0, 1) (got \(momentum))") }
        guard weightDecay >= 0 && weightDecay.isFinite else {
            throw TrainingError.invalidConfiguration("DGC's weight decay must be ≥ 0 (got \(weightDecay))")
        }
        if let clipNorm, !(clipNorm > 0 && clipNorm.isFinite) {
            throw TrainingError.invalidConfiguration("DGC's clipping norm must be a positive number (got \(clipNorm))")
        }
        self.communicator = communicator
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        let buffers = try StateBuffer.allocate(["corrected", "accumulated"], count: count)
        (corrected, accumulated) = (buffers[0], buffers[1])
    }

    public var state: OptimizerState {
        OptimizerState(buffers: [corrected, accumulated],
                       scalars: ["exchanges": exchanges, "warmup_bytes_sent": warmUpBytesSent, "steady_bytes_sent": steadyBytesSent,
                                 "clipped_steps": clippedSteps])
    }

    public func restore(scalars: [String: Int]) throws {
        exchanges = try OptimizerState.scalar("exchanges", in: scalars)
        warmUpBytesSent = try OptimizerState.scalar("warmup_bytes_sent", in: scalars)
        steadyBytesSent = try OptimizerState.scalar("steady_bytes_sent", in: scalars)
        clippedSteps = try OptimizerState.scalar("clipped_steps", in: scalars)
    }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        let sentBefore = communicator.traffic.bytesSent
        guard try allFiniteOnEveryRank(gradients, communicator: communicator) else { return false }
        clipLocally(gradients)
        accumulate(gradients)
        let fraction = sparsity.fraction(at: exchanges)
        let sparse = TopK.take(accumulated.storage, atLeast: TopK.threshold(UnsafeBufferPointer(accumulated.storage), keeping: fraction),
                               expecting: Int(fraction * Float(gradients.count)), alsoClearing: corrected.storage)
        try TopK.mean(of: sparse, into: gradients, communicator: communicator)
        apply(gradients, to: parameters, learningRate: learningRate)
        let sent = communicator.traffic.bytesSent - sentBefore
        if exchanges < sparsity.steps { warmUpBytesSent += sent } else { steadyBytesSent += sent }
        exchanges += 1
        return true
    }

    /// Scales `g` to an L2 norm of at most clipNorm/√N, when clipping is on.
    private func clipLocally(_ g: UnsafeMutableBufferPointer<Float>) {
        guard let clipNorm else { return }
        let bound = Double(clipNorm) / Double(communicator.size).squareRoot()
        let norm = Parallel.mapPieces(count: g.count) { piece in
            piece.reduce(0.0) { $0 + Double(g[$1]) * Double(g[$1]) }
        }.reduce(0, +).squareRoot()
        guard norm > bound else { return }
        scale(g, by: Float(bound / norm))
        clippedSteps += 1
    }

    /// u ← μ·u + g, v ← v + u.
    private func accumulate(_ gradients: UnsafeMutableBufferPointer<Float>) {
        guard let g = gradients.baseAddress, let u = corrected.storage.baseAddress, let v = accumulated.storage.baseAddress else { return }
        let mu = momentum
        Parallel.forEachPiece(count: gradients.count) { piece in
            for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
                let valid = min(16, piece.upperBound - start)
                let next = mu * FloatLanes.load(u + start, valid) + FloatLanes.load(g + start, valid)
                FloatLanes.store(next, u + start, valid)
                FloatLanes.store(FloatLanes.load(v + start, valid) + next, v + start, valid)
            }
        }
    }

    /// x ← x − η·(G + λ·x).
    private func apply(_ update: UnsafeMutableBufferPointer<Float>, to parameters: UnsafeMutableBufferPointer<Float>, learningRate: Float) {
        guard let x = parameters.baseAddress, let G = update.baseAddress else { return }
        let shrink = learningRate * weightDecay
        Parallel.forEachPiece(count: parameters.count) { piece in
            for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
                let valid = min(16, piece.upperBound - start)
                let next = decoupledStep(FloatLanes.load(x + start, valid), update: FloatLanes.load(G + start, valid),
                                         learningRate: learningRate, shrink: shrink)
                FloatLanes.store(next, x + start, valid)
            }
        }
    }
}

/// DGC's warm-up of the sent fraction (the paper's "exponentially increasing sparsity" over
/// its first four epochs): four equal stages of ``steps`` sending 25 %, 6.25 %, 1.5625 % and
/// 0.39 % of the coordinates (never fewer than ``ratio``), then ``ratio``.
public struct SparsityWarmUp: Sendable, Equatable {
    /// The fraction sent once warmed up, in (0, 1].
    public let ratio: Float
    /// The steps of the four stages together.
    public let steps: Int

    /// Throws when `ratio` is outside (0, 1] or `steps` is negative.
    public init(ratio: Float, steps: Int) throws {
        guard ratio > 0 && ratio <= 1 else { throw TrainingError.invalidConfiguration("the top-k ratio must be in (0, 1] (got \(ratio))") }
        guard steps >= 0 else { throw TrainingError.invalidConfiguration("DGC's warm-up must be ≥ 0 steps (got \(steps))") }
        self.ratio = ratio
        self.steps = steps
    }

    /// The fraction of coordinates sent at `step` (from 0).
    public func fraction(at step: Int) -> Float {
        guard step < steps else { return ratio }
        let stage = Int((Double(step) * 4 / Double(steps)).rounded(.down))
        return max(ratio, 0.25 / Float(1 << (2 * stage)))
    }
}
