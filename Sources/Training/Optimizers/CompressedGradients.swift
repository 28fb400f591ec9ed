#if canImport(Glibc)
import Glibc
#endif
import Collectives

/// Replaces each rank's gradient by the mean over ranks of everyone's compressed gradient:
/// compress, exchange (``TernGrad``'s reduce-scatter of code sums or allgather of codes,
/// ``DGC``'s sparse allgather), decode and average.
public protocol GradientCompressor: AnyObject {
    /// A short name for logs.
    var name: String { get }
    /// What the compressor keeps on this rank between exchanges (residuals, accumulators).
    var state: OptimizerState { get }
    /// Sets the scalars of ``state`` to saved values.
    func restore(scalars: [String: Int]) throws
    /// Overwrites `gradient` (this rank's) with the mean of all ranks' decoded gradients.
    /// Collective.
    func exchange(_ gradient: UnsafeMutableBufferPointer<Float>, step: Int, communicator: Communicator) throws
}

/// AdamW fed with a compressed, exchanged gradient: the TernGrad and DGC baselines of the
/// Distributed Lion paper. Non-finite gradients on any rank make every rank skip the step.
public final class CompressedGradientAdamW: DistributedOptimizer {
    public var name: String { compressor.name }
    public let communicator: Communicator
    public var communicationRounds: Int { steps }
    /// The compression.
    public let compressor: GradientCompressor
    private let local: AdamW
    private var steps = 0

    /// AdamW for `count` parameters on gradients exchanged through `compressor`.
    public init(count: Int, communicator: Communicator, compressor: GradientCompressor,
                hyperparameters: AdamWHyperparameters = AdamWHyperparameters()) throws {
        self.communicator = communicator
        self.compressor = compressor
        self.local = try AdamW(count: count, hyperparameters: hyperparameters)
    }

    public var state: OptimizerState {
        OptimizerState(scalars: ["exchanges": steps]).merging(local.state, prefix: "adamw").merging(compressor.state, prefix: compressor.name)
    }

    public func restore(scalars: [String: Int]) throws {
        steps = try OptimizerState.scalar("exchanges", in: scalars)
        try local.restore(scalars: OptimizerState.scalars(scalars, under: "adamw"))
        try compressor.restore(scalars: OptimizerState.scalars(scalars, under: compressor.name))
    }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        guard try allFiniteOnEveryRank(gradients, communicator: communicator) else { return false }
        try compressor.exchange(gradients, step: steps, communicator: communicator)
        steps += 1
        return try local.step(parameters: parameters, gradients: gradients, learningRate: learningRate)
    }
}

/// Deep Gradient Compression (Lin et al. 2018): momentum correction u ← μ·u + g, accumulation
/// v ← v + u; the top k = ratio·d coordinates of |v| are sent as (index, value) pairs by a
/// sparse allgather and cleared from u and v (momentum factor masking); the rest stays local.
/// The ratio warms up exponentially from 25 % to `ratio` over `warmupSteps`. Choices: the
/// threshold is the k-th largest |v| of a strided sample of about 10 000 coordinates (as DGC
/// samples), no local gradient clipping, and the mean of the exchanged values feeds AdamW
/// (the paper's DGC feeds momentum SGD, whose momentum the correction replaces).
public final class DGC: GradientCompressor {
    public let name = "dgc"
    /// The fraction of coordinates sent once warmed up, in (0, 1].
    public let ratio: Float
    /// Steps over which the sent fraction falls from 25 % to `ratio`.
    public let warmupSteps: Int
    /// μ of the momentum correction.
    public let momentum: Float
    /// The momentum-corrected gradient u.
    public let corrected: StateBuffer
    /// The accumulated velocity v, whose unsent part stays local.
    public let accumulated: StateBuffer

    /// DGC for `count` coordinates. Throws when `ratio` is outside (0, 1].
    public init(count: Int, ratio: Float, warmupSteps: Int, momentum: Float = 0.9) throws {
        guard ratio > 0 && ratio <= 1 else {
            throw TrainingError.invalidConfiguration("the top-k ratio must be in (0, 1] (got \(ratio))")
        }
        self.ratio = ratio
        self.warmupSteps = warmupSteps
        self.momentum = momentum
        let buffers = try StateBuffer.allocate(["corrected", "accumulated"], count: count)
        (corrected, accumulated) = (buffers[0], buffers[1])
    }

    public var state: OptimizerState { OptimizerState(buffers: [corrected, accumulated]) }

    /// DGC keeps no scalars.
    public func restore(scalars: [String: Int]) throws {}

    /// The fraction sent at `step`.
    public func fraction(at step: Int) -> Float {
        guard step < warmupSteps, ratio < 0.25 else { return ratio }
        return 0.25 * powf(ratio / 0.25, Float(step) / Float(max(1, warmupSteps)))
    }

    public func exchange(_ gradient: UnsafeMutableBufferPointer<Float>, step: Int, communicator: Communicator) throws {
        let count = gradient.count
        guard let g = gradient.baseAddress else { return }
        guard let u = corrected.storage.baseAddress, let v = accumulated.storage.baseAddress else { return }
        let mu = momentum
        Parallel.forEachPiece(count: count) { piece in
            for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
                let valid = min(16, piece.upperBound - start)
                let next = mu * FloatLanes.load(u + start, valid) + FloatLanes.load(g + start, valid)
                FloatLanes.store(next, u + start, valid)
                FloatLanes.store(FloatLanes.load(v + start, valid) + next, v + start, valid)
            }
        }
        let threshold = self.threshold(keeping: fraction(at: step))
        var indices: [UInt32] = []
        var values: [Float] = []
        indices.reserveCapacity(Int(fraction(at: step) * Float(count) * 1.5) + 16)
        values.reserveCapacity(indices.capacity)
        for index in 0..<count where abs(v[index]) >= threshold && v[index] != 0 {
            indices.append(UInt32(index))
            values.append(v[index])
            v[index] = 0
            u[index] = 0
        }
        let everyone = try communicator.allgather(SparseVector(length: count, indices: indices, values: values))
        gradient.update(repeating: 0)
        for sparse in everyone { sparse.accumulate(into: gradient, scale: 1 / Float(communicator.size)) }
    }

    /// The magnitude above which about `fraction` of the accumulated coordinates lie.
    private func threshold(keeping fraction: Float) -> Float {
        let count = accumulated.count
        let stride = max(1, count / 10_000)
        var sample = Swift.stride(from: 0, to: count, by: stride).map { abs(accumulated.storage[$0]) }
        sample.sort(by: >)
        let position = min(sample.count - 1, max(0, Int(fraction * Float(sample.count)) - 1))
        return sample[position]
    }
}
