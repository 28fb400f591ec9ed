import Collectives

/// What a ``Trainer`` tells its observers, on every rank, as the run goes.
public enum TrainingEvent {
    /// Every `logInterval` steps and at the last one: the mean training loss since the last
    /// report, over all ranks.
    case step(StepReport)
    /// Some rank's gradients held a NaN or an infinity; every rank skipped step `step` (1-based).
    case skipped(step: Int)
    /// A synchronization of an optimizer that trains locally between them (Local AdamW).
    case synchronization(Synchronization)
    /// An evaluation on the evaluation data.
    case evaluation(EvaluationReport)
    /// The ranks stopped after `step` for `signal` (``TrainingPlan/stopOnSignals``), the run
    /// saved at `checkpoint` when it has a checkpointer.
    case stopped(step: Int, signal: Int32, checkpoint: String?)
    /// The end of the run.
    case finished(TrainingSummary)
}

/// Receives a trainer's events.
public protocol TrainingObserver: AnyObject {
    /// Called on the training thread after each event; keep it short. An error (a metrics
    /// file that cannot be written, say) stops the run on every rank at the trainer's next
    /// agreement: the next logged step, or the end of the run.
    func observe(_ event: TrainingEvent) throws
}

/// Progress at a logged step.
public struct StepReport: Sendable {
    /// Steps done (1-based).
    public let step: Int
    /// The run's steps.
    public let totalSteps: Int
    /// The epoch the step was in (1-based).
    public let epoch: Int
    /// Mean training loss since the last report, averaged over ranks.
    public let loss: Double
    /// The learning rate of this step.
    public let learningRate: Float
    /// Seconds since training started.
    public let elapsedSeconds: Double
    /// Examples per second over all ranks so far.
    public let samplesPerSecond: Double
    /// Bytes this rank's optimizer has sent so far.
    public let bytesSentPerRank: Int
}

/// An evaluation during or after the run.
public struct EvaluationReport: Sendable {
    /// Steps done when it ran.
    public let step: Int
    /// Epochs done when it ran (the epoch in progress, for a mid-epoch evaluation).
    public let epoch: Int
    /// The result.
    public let evaluation: Evaluation
    /// Seconds since training started (in a resumed run, since it resumed) when the
    /// evaluation began: with ``bytesSentPerRank``, what time-to-accuracy is measured in.
    public let elapsedSeconds: Double
    /// Bytes this rank's optimizer has sent so far.
    public let bytesSentPerRank: Int
}

/// A whole run, as the trainer saw it on this rank.
public struct TrainingSummary: Sendable {
    /// The optimizer's name.
    public let optimizer: String
    /// Ranks that trained.
    public let ranks: Int
    /// Parameters in the model.
    public let parameters: Int
    /// Steps run, and of them the ones skipped for non-finite gradients (under Local AdamW,
    /// local steps skipped, summed over ranks).
    public let steps: Int, skippedSteps: Int
    /// Epochs started.
    public let epochs: Int
    /// The optimizer's communication rounds (``DistributedOptimizer/communicationRounds``).
    public let communicationRounds: Int
    /// Training time, from the start barrier to the last step (evaluations during the run
    /// included, the final one not).
    public let wallSeconds: Double
    /// Examples per second over all ranks.
    public let samplesPerSecond: Double
    /// What this rank's optimizer sent and received, as its communicator counted.
    public let traffic: TrafficCounters
    /// What an fp32 ring allreduce of the gradients would have sent per rank for the same steps.
    public let fp32AllreduceBytesPerRank: Int
    /// The final evaluation.
    public let evaluation: Evaluation
    /// Where this rank's time went.
    public let times: StepTimes
}

/// Seconds this rank spent in each part of the steps.
public struct StepTimes: Sendable {
    /// Gathering batches.
    public var data = 0.0
    /// Forward and backward passes.
    public var forwardBackward = 0.0
    /// Inside `cblas_sgemm` during training steps' forward and backward, when ``BLAS/timing``
    /// is on (part of ``forwardBackward``; evaluations' GEMMs are not counted).
    public var gemm = 0.0
    /// Optimizer steps, communication included.
    public var optimizer = 0.0
    /// Communication (part of the optimizer steps).
    public var communication = 0.0
}
