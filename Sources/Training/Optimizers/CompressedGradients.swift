import Collectives

/// Replaces each rank's gradient by the mean over ranks of everyone's compressed gradient:
/// compress, exchange (``TernGrad``'s reduce-scatter of code sums or allgather of codes,
/// ``GradDrop``'s sparse allgather), decode and average.
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

/// AdamW fed with a compressed, exchanged gradient: the TernGrad and GradDrop baselines of
/// the Distributed Lion paper. Non-finite gradients on any rank make every rank skip the step.
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
        return try communicator.timeline.span("update", .optimizer) {
            try local.step(parameters: parameters, gradients: gradients, learningRate: learningRate)
        }
    }
}
