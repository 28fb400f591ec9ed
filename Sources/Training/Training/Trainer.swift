import Collectives

/// How long a ``Trainer`` trains, how fast, and how often it reports.
public struct TrainingPlan: Sendable {
    /// Steps to run; epochs follow from the data's steps per epoch.
    public var steps: Int
    /// The learning rate of each step.
    public var schedule: LearningRateSchedule
    /// Evaluate every this many steps; 0 evaluates at the end of each epoch.
    public var evaluationInterval: Int
    /// Report the training loss every this many steps (a small allreduce each time).
    public var logInterval: Int
    /// Stop with ``TrainingError/diverged(step:skippedInARow:)`` after this many steps in a
    /// row are skipped for non-finite gradients.
    public var maxSkippedInARow: Int
    /// When a rank gives up on a job that stopped making progress.
    public var stallTimeout: StallTimeout
    /// Save a checkpoint every this many steps (and after the last), when the trainer has a
    /// ``Trainer/checkpointer``; 0 saves only after the last step.
    public var checkpointInterval: Int
    /// Also save a checkpoint once this many seconds have passed since the last one (the
    /// ranks agree on the step); 0: by steps only.
    public var checkpointSeconds: Double
    /// Whether SIGTERM, SIGINT and SIGUSR1 stop the run cleanly (``StopSignals``): every rank
    /// finishes the same step, a checkpoint is saved there, and ``Trainer/run(from:)`` throws
    /// ``TrainingError/stopped(step:totalSteps:signal:checkpoint:)``. The handlers are
    /// installed for the run only.
    public var stopOnSignals: Bool

    /// A plan of `steps` steps on `schedule`.
    public init(steps: Int, schedule: LearningRateSchedule, evaluationInterval: Int = 0, logInterval: Int = 50,
                maxSkippedInARow: Int = 20, stallTimeout: StallTimeout = .adaptive, checkpointInterval: Int = 0,
                checkpointSeconds: Double = 0, stopOnSignals: Bool = false) {
        self.steps = steps
        self.schedule = schedule
        self.evaluationInterval = evaluationInterval
        self.logInterval = logInterval
        self.maxSkippedInARow = maxSkippedInARow
        self.stallTimeout = stallTimeout
        self.checkpointInterval = checkpointInterval
        self.checkpointSeconds = checkpointSeconds
        self.stopOnSignals = stopOnSignals
    }
}

/// How long a rank waits for a step to complete before it ends the job with `MPI_Abort`,
/// reporting the step it is waiting in: the way out when another rank is stopped or its host
/// is lost, which would otherwise leave every rank blocked in a collective forever.
public enum StallTimeout: Sendable, Equatable {
    /// max(10 minutes, 20 × the median step so far): generous for real runs.
    case adaptive
    /// A fixed number of seconds.
    case seconds(Double)
    /// Never: wait as long as MPI does.
    case off

    /// The floor of the adaptive timeout, in seconds.
    public static let adaptiveMinimum = 600.0
}

/// The training loop: batch → forward → backward → optimizer step, the same on every rank,
/// with evaluations and reports.
///
/// ```swift
/// let trainer = Trainer(model: model, optimizer: optimizer, data: batches, evaluationData: test,
///                       communicator: world, plan: TrainingPlan(steps: 1000, schedule: .constant(3e-4)))
/// trainer.observers.append(myObserver)
/// let summary = try trainer.run()
/// ```
///
/// Collective: every rank runs it with the same plan. A step whose gradients are not finite
/// on some rank is skipped by every rank (the optimizer decides it, the same everywhere);
/// ``TrainingPlan/maxSkippedInARow`` in a row stop the run with an error on every rank.
/// Under Local AdamW a rank skips its own step alone, and the rule applies at the next
/// synchronization, to the longest run one rank skipped.
/// Evaluations score the evaluation data split across ranks and reduced, so every rank gets
/// the same figures; mid-round under Local AdamW they score the mean of the replicas (the
/// replicas themselves train on). Observers hear every ``TrainingEvent`` on every rank.
public final class Trainer<M: Model> {
    /// The model trained.
    public let model: M
    /// The optimizer stepping it.
    public let optimizer: any Optimizer
    /// Each step's batches.
    public let data: any TrainingData<M.Batch>
    /// What evaluations score, if anything.
    public let evaluationData: (any EvaluationData<M.Batch>)?
    /// The ranks training together: loss reports and evaluations are reduced over it.
    public let communicator: Communicator
    /// Steps, schedule and reporting.
    public let plan: TrainingPlan
    /// Who hears the events.
    public var observers: [any TrainingObserver] = []
    /// Where checkpoints go, if anywhere (``TrainingPlan/checkpointInterval``).
    public var checkpointer: Checkpointer?
    /// Where each step's data, forward, backward and optimizer step, the evaluations and the
    /// checkpoints are recorded, if anywhere; its clock restarts at the run's start barrier.
    /// Give the communicators the same timeline to see their calls inside the steps.
    public var timeline: Timeline?

    /// Whether an ``OverlappingOptimizer`` starts sending gradients while backward is still
    /// computing them (on by default; the parameters are the same either way, bit for bit).
    public var overlapsCommunication = true

    /// The optimizer as one that communicates, if it does.
    private let distributed: (any DistributedOptimizer)?
    private var times = StepTimes()
    /// Where the run is: what a checkpoint saves, and what it restores.
    private var position = TrainerPosition()
    private var reportedSynchronizations = 0
    /// The first error an observer threw on this rank, not yet agreed on.
    private var observerFailure: Error?
    /// Ends the job if steps stop completing; nil with ``StallTimeout/off``.
    private var watchdog: StallWatchdog?
    /// The latest step durations, for the adaptive stall timeout.
    private var stepSeconds: [Double] = []

    /// A trainer of `model` by `optimizer` on `data`, evaluating on `evaluationData`.
    public init(model: M, optimizer: any Optimizer, data: any TrainingData<M.Batch>,
                evaluationData: (any EvaluationData<M.Batch>)?, communicator: Communicator, plan: TrainingPlan) {
        self.model = model
        self.optimizer = optimizer
        self.distributed = optimizer as? any DistributedOptimizer
        self.data = data
        self.evaluationData = evaluationData
        self.communicator = communicator
        self.plan = plan
    }

    /// Trains for the plan's steps, or the steps left after `restored` (a run restored from a
    /// checkpoint: ``Checkpointer/restoreLatest(arena:optimizer:)``), and returns the summary
    /// (also sent to observers as ``TrainingEvent/finished(_:)``). Throws on every rank alike
    /// when training diverges or a collective fails. A resumed run ends with the parameters,
    /// optimizer state and evaluations of the run that was never stopped.
    @discardableResult
    public func run(from restored: TrainerPosition = TrainerPosition()) throws -> TrainingSummary {
        guard plan.steps > 0, plan.logInterval > 0, plan.evaluationInterval >= 0, data.stepsPerEpoch > 0,
              plan.checkpointSeconds >= 0, plan.checkpointSeconds.isFinite else {
            throw TrainingError.invalidConfiguration("a training plan needs at least one step, a log interval of at least 1, data of at least one step per epoch and checkpoint seconds ≥ 0 (got \(plan.steps) steps, log interval \(plan.logInterval), \(data.stepsPerEpoch) steps per epoch, \(plan.checkpointSeconds) s)")
        }
        distributed?.communicator.resetTraffic()
        try communicator.barrier()
        timeline?.restartClock()
        startWatchdog()
        defer { watchdog?.stop() }
        let start = monotonicSeconds()
        var interruptions = Interruptions(signals: plan.stopOnSignals, checkpointSeconds: checkpointer == nil ? 0 : plan.checkpointSeconds, now: start)
        if plan.stopOnSignals { StopSignals.install() }
        defer { if plan.stopOnSignals { StopSignals.uninstall() } }
        /// Step time since the last logged step, for the agreement interval.
        var timed = (seconds: 0.0, steps: 0)
        position = restored
        var epoch = position.step / data.stepsPerEpoch
        var lastEvaluation: Evaluation?
        // Stopped right at the end of an epoch: its evaluation comes first, as it did then.
        if position.step > 0 && position.step % data.stepsPerEpoch == 0 && plan.evaluationInterval == 0 && position.step < plan.steps {
            lastEvaluation = try evaluate(step: position.step, epoch: epoch, elapsed: monotonicSeconds() - start)
        }
        var firstStepInEpoch = position.step % data.stepsPerEpoch
        while position.step < plan.steps {
            for stepInEpoch in firstStepInEpoch..<data.stepsPerEpoch where position.step < plan.steps {
                let stepStart = monotonicSeconds()
                let loss = try trainStep(epoch: epoch, stepInEpoch: stepInEpoch)
                let step = position.step
                let stepSeconds = monotonicSeconds() - stepStart
                progressed(step: step, seconds: stepSeconds)
                timed = (timed.seconds + stepSeconds, timed.steps + 1)
                if loss.isFinite { position.lossSinceLog += loss; position.stepsSinceLog += 1 }
                if step % plan.logInterval == 0 || step == plan.steps {
                    // One allreduce carries the loss, whether any rank's observers failed, and the step time.
                    let meanLoss = position.lossSinceLog / Double(max(1, position.stepsSinceLog))
                    let sums = try communicator.allreduce([meanLoss, observerFailure == nil ? 0 : 1, timed.seconds / Double(timed.steps)],
                                                          operation: .sum)
                    if sums[1] > 0 { try stopForObservers(failedOnRanks: Int(sums[1])) }
                    report(step: step, epoch: epoch, loss: sums[0] / Double(communicator.size), elapsed: monotonicSeconds() - start)
                    interruptions.follow(stepSeconds: sums[2] / Double(communicator.size), atMost: plan.logInterval)
                    (position.lossSinceLog, position.stepsSinceLog) = (0, 0)
                    timed = (0, 0)
                }
                if plan.evaluationInterval > 0 && step % plan.evaluationInterval == 0 {
                    lastEvaluation = try evaluate(step: step, epoch: epoch, elapsed: monotonicSeconds() - start)
                }
                var decision = Interruptions.Decision(stopSignal: nil, checkpointDue: false)
                if step < plan.steps && interruptions.agreesAfter(step: step) {
                    decision = try interruptions.agree(on: communicator, now: monotonicSeconds())
                }
                let byInterval = step == plan.steps || (plan.checkpointInterval > 0 && step % plan.checkpointInterval == 0)
                if let checkpointer, byInterval || decision.checkpointDue || decision.stopSignal != nil {
                    try timeline.span("checkpoint", .checkpoint) {
                        try checkpointer.save(arena: model.arena, optimizer: optimizer, position: position)
                    }
                    interruptions.saved(now: monotonicSeconds())
                    watchdog?.completed(step: step)
                }
                if let signal = decision.stopSignal {
                    let saved = checkpointer?.path(step: step)
                    emit(.stopped(step: step, signal: signal, checkpoint: saved))
                    throw TrainingError.stopped(step: step, totalSteps: plan.steps, signal: signal, checkpoint: saved)
                }
            }
            firstStepInEpoch = 0
            epoch += 1
            if plan.evaluationInterval == 0 && position.step < plan.steps {
                lastEvaluation = try evaluate(step: position.step, epoch: epoch, elapsed: monotonicSeconds() - start)
            }
        }
        let wall = monotonicSeconds() - start
        let step = position.step
        if lastEvaluation == nil || plan.evaluationInterval == 0 || step % plan.evaluationInterval != 0 {
            lastEvaluation = try evaluate(step: step, epoch: epoch, elapsed: monotonicSeconds() - start)
        }
        let summary = summarize(steps: step, epochs: epoch, wall: wall, evaluation: lastEvaluation)
        emit(.finished(summary))
        try communicator.agreeOnSuccess("reporting") { if let observerFailure { throw observerFailure } }
        return summary
    }

    /// Throws, on every rank, once observers failed on `ranks` ranks: the failed ones their
    /// own error, the others ``TrainingError/failedElsewhere(ranks:what:)``.
    private func stopForObservers(failedOnRanks ranks: Int) throws {
        if let observerFailure { throw observerFailure }
        throw TrainingError.failedElsewhere(ranks: ranks, what: "reporting")
    }

    private func startWatchdog() {
        switch plan.stallTimeout {
        case .off: watchdog = nil
        case .adaptive: watchdog = StallWatchdog(rank: communicator.rank, timeout: StallTimeout.adaptiveMinimum)
        case .seconds(let seconds): watchdog = StallWatchdog(rank: communicator.rank, timeout: seconds)
        }
    }

    /// Tells the watchdog; every 50 steps the adaptive timeout follows the median step.
    private func progressed(step: Int, seconds: Double) {
        guard let watchdog else { return }
        watchdog.completed(step: step)
        guard plan.stallTimeout == .adaptive else { return }
        stepSeconds.append(seconds)
        if stepSeconds.count > 200 { stepSeconds.removeFirst(stepSeconds.count - 200) }
        if step % 50 == 0 {
            let median = stepSeconds.sorted()[stepSeconds.count / 2]
            watchdog.setTimeout(max(StallTimeout.adaptiveMinimum, 20 * median))
        }
    }

    /// One step: batch, forward, backward, optimizer, and the step counted; returns this
    /// rank's mean loss.
    private func trainStep(epoch: Int, stepInEpoch: Int) throws -> Double {
        let step = position.step
        var mark = monotonicSeconds()
        let batch = timeline.span("data", .data) { data.batch(epoch: epoch, step: stepInEpoch) }
        times.data += monotonicSeconds() - mark
        let result: BatchResult
        let gemmBefore = BLAS.gemmSeconds
        let applied: Bool
        if overlapsCommunication, let overlapping = optimizer as? any OverlappingOptimizer {
            (result, applied) = try overlappedStep(batch, overlapping, learningRate: plan.schedule.rate(at: step))
        } else {
            mark = monotonicSeconds()
            result = timeline.span("forward", .compute) { model.forward(batch) }
            timeline.span("backward", .compute) { model.backward(batch) }
            times.forwardBackward += monotonicSeconds() - mark
            mark = monotonicSeconds()
            applied = try timeline.span("optimizer step", .optimizer) {
                try optimizer.step(model.arena, learningRate: plan.schedule.rate(at: step))
            }
            times.optimizer += monotonicSeconds() - mark
        }
        times.gemm += BLAS.gemmSeconds - gemmBefore  // not the evaluations' GEMMs
        try account(applied: applied, step: step)
        position.step += 1
        try reportSynchronizations()
        return result.lossSum / Double(max(1, result.count))
    }

    /// Forward, then backward inside the optimizer step, which starts sending each bucket of
    /// gradients as backward finishes it. The time spent in the optimizer's callbacks counts
    /// as optimizer time, the rest of backward as backward.
    private func overlappedStep(_ batch: M.Batch, _ optimizer: any OverlappingOptimizer,
                                learningRate: Float) throws -> (BatchResult, Bool) {
        var mark = monotonicSeconds()
        let result = timeline.span("forward", .compute) { model.forward(batch) }
        times.forwardBackward += monotonicSeconds() - mark
        mark = monotonicSeconds()
        var backward = 0.0, inCallbacks = 0.0
        let applied = try timeline.span("optimizer step (overlapped with backward)", .optimizer) {
            try optimizer.step(model.arena, learningRate: learningRate) { ready in
                let started = monotonicSeconds()
                defer { backward += monotonicSeconds() - started }
                try timeline.span("backward", .compute) {
                    try model.backward(batch) { firstFinal in
                        let called = monotonicSeconds()
                        defer { inCallbacks += monotonicSeconds() - called }
                        try ready(firstFinal)
                    }
                }
            }
        }
        times.forwardBackward += backward - inCallbacks
        times.optimizer += monotonicSeconds() - mark - (backward - inCallbacks)
        return (result, applied)
    }

    /// Counts a skipped step; stops the run on every rank after too many in a row.
    private func account(applied: Bool, step: Int) throws {
        if applied {
            position.skippedInARow = 0
            return
        }
        position.skippedSteps += 1
        position.skippedInARow += 1
        emit(.skipped(step: step + 1))
        if position.skippedInARow >= plan.maxSkippedInARow {
            throw TrainingError.diverged(step: step + 1, skippedInARow: position.skippedInARow)
        }
    }

    /// Tells observers of new synchronizations, and counts the local steps they report
    /// skipped: a run of ``TrainingPlan/maxSkippedInARow`` on one rank stops the run there, on
    /// every rank (they all hear the same synchronization).
    private func reportSynchronizations() throws {
        guard let synchronizations = distributed?.synchronizations, synchronizations.count > reportedSynchronizations else { return }
        let new = synchronizations[reportedSynchronizations...]
        reportedSynchronizations = synchronizations.count
        for synchronization in new {
            emit(.synchronization(synchronization))
            position.skippedSteps += synchronization.skippedSteps
            if synchronization.longestSkipRun >= plan.maxSkippedInARow {
                throw TrainingError.diverged(step: synchronization.step, skippedInARow: synchronization.longestSkipRun)
            }
        }
    }

    private func report(step: Int, epoch: Int, loss: Double, elapsed: Double) {
        let samples = Double(step * data.batchSize * communicator.size)
        emit(.step(StepReport(step: step, totalSteps: plan.steps, epoch: epoch + 1, loss: loss,
                              learningRate: plan.schedule.rate(at: step - 1), elapsedSeconds: elapsed,
                              samplesPerSecond: samples / max(elapsed, 1e-9),
                              bytesSentPerRank: distributed?.communicator.traffic.bytesSent ?? 0)))
    }

    private func evaluate(step: Int, epoch: Int, elapsed: Double) throws -> Evaluation? {
        guard let evaluationData else { return nil }
        let result = try timeline.span("evaluation", .evaluation) {
            try onAveragedReplicas { try Evaluation.run(model: model, data: evaluationData, communicator: communicator) }
        }
        watchdog?.completed(step: step)
        emit(.evaluation(EvaluationReport(step: step, epoch: epoch, evaluation: result, elapsedSeconds: elapsed,
                                          bytesSentPerRank: distributed?.communicator.traffic.bytesSent ?? 0)))
        return result
    }

    /// Runs `body` with the model holding the mean of the ranks' replicas when they differ
    /// (Local AdamW mid-round): the model a user would get by synchronizing now. Each rank's
    /// own replica is back in place afterwards, and training goes on from it. One fp32
    /// `MPI_Allreduce` of the parameters, on the trainer's communicator, so the optimizer's
    /// byte counts stay its own.
    private func onAveragedReplicas<T>(_ body: () throws -> T) throws -> T {
        guard let distributed, !distributed.replicasAgree else { return try body() }
        let parameters = model.arena.parameters
        let replica = Array(parameters)
        defer { _ = parameters.update(fromContentsOf: replica) }
        try averageAcrossRanks(parameters, communicator: communicator)
        return try body()
    }

    private func summarize(steps: Int, epochs: Int, wall: Double, evaluation: Evaluation?) -> TrainingSummary {
        let n = communicator.size
        let traffic = distributed?.communicator.traffic ?? TrafficCounters()
        var times = self.times
        times.communication = traffic.seconds
        return TrainingSummary(optimizer: optimizer.name, ranks: n, parameters: model.arena.count, steps: steps,
                               skippedSteps: position.skippedSteps, epochs: epochs, communicationRounds: distributed?.communicationRounds ?? 0,
                               wallSeconds: wall, samplesPerSecond: Double(steps * data.batchSize * n) / wall, traffic: traffic,
                               fp32AllreduceBytesPerRank: 2 * (n - 1) * model.arena.count * 4 / n * steps,
                               evaluation: evaluation ?? Evaluation(loss: .nan, accuracy: .nan, count: 0), times: times)
    }

    /// Tells every observer; the first error is kept until the ranks next agree on failures.
    private func emit(_ event: TrainingEvent) {
        for observer in observers {
            do { try observer.observe(event) } catch { observerFailure = observerFailure ?? error }
        }
    }
}
