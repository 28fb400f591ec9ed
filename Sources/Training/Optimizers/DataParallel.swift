import Collectives

/// Data-parallel training with fp32 gradients: the gradients are summed across ranks with
/// `MPI_Allreduce`, divided by N, and a local optimizer applies the mean on every rank
/// (Global Lion and Global AdamW in the Distributed Lion paper: 32 bits up and 32 down per
/// parameter). The mean gradient is the same everywhere, so a NaN on any rank is seen by all.
public final class DataParallel: DistributedOptimizer {
    public let name: String
    public let communicator: Communicator
    public private(set) var communicationRounds = 0
    /// The optimizer applied to the mean gradient.
    public let base: Optimizer

    /// Wraps `base`, averaging gradients over `communicator`.
    public init(_ base: Optimizer, communicator: Communicator) {
        self.base = base
        self.communicator = communicator
        self.name = "global-\(base.name)"
    }

    public var state: OptimizerState {
        OptimizerState(scalars: ["communication_rounds": communicationRounds]).merging(base.state, prefix: base.name)
    }

    public func restore(scalars: [String: Int]) throws {
        communicationRounds = try OptimizerState.scalar("communication_rounds", in: scalars)
        try base.restore(scalars: OptimizerState.scalars(scalars, under: base.name))
    }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        try averageAcrossRanks(gradients, communicator: communicator)
        communicationRounds += 1
        return try communicator.timeline.span("update", .optimizer) {
            try base.step(parameters: parameters, gradients: gradients, learningRate: learningRate)
        }
    }
}
