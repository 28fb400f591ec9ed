import Collectives
import Training

/// The steps of a run, its evaluations, and what it reports.
final class TrainingLoop {
    let model: MLP
    let optimizer: Optimizer
    let communicator: Communicator
    let sampler: ShardedSampler
    let train: Dataset
    let test: Dataset
    let schedule: LearningRateSchedule
    let totalSteps: Int
    let options: TrainCommand
    let reporter: Reporter?
    let world: Communicator

    /// Time spent in each part of the steps, for `--profile`.
    private var dataSeconds = 0.0, forwardBackwardSeconds = 0.0, optimizerSeconds = 0.0
    private var skippedSteps = 0, skippedInARow = 0, appliedSteps = 0, loggedSynchronizations = 0

    init(model: MLP, optimizer: Optimizer, communicator: Communicator, sampler: ShardedSampler, train: Dataset, test: Dataset,
         schedule: LearningRateSchedule, totalSteps: Int, options: TrainCommand, reporter: Reporter?, world: Communicator) {
        self.model = model
        self.optimizer = optimizer
        self.communicator = communicator
        self.sampler = sampler
        self.train = train
        self.test = test
        self.schedule = schedule
        self.totalSteps = totalSteps
        self.options = options
        self.reporter = reporter
        self.world = world
    }

    func run() throws {
        let batch = options.batchSize
        let features = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * train.featureCount)
        let labels = UnsafeMutableBufferPointer<Int32>.allocate(capacity: batch)
        defer { features.deallocate(); labels.deallocate() }
        BLAS.timing = options.profile
        BLAS.resetTimer()
        communicator.resetTraffic()

        try world.barrier()
        let start = monotonicSeconds()
        var step = 0, epoch = 0
        var lossSinceLog = 0.0, stepsSinceLog = 0
        var lastEvaluation: Evaluation?
        while step < totalSteps {
            let permutation = sampler.permutation(epoch: epoch)
            for stepInEpoch in 0..<sampler.stepsPerEpoch where step < totalSteps {
                var mark = monotonicSeconds()
                train.gather(rows: sampler.rows(epoch: epoch, step: stepInEpoch, permutation: permutation),
                             features: features.baseAddress!, labels: labels.baseAddress!)
                dataSeconds += monotonicSeconds() - mark
                mark = monotonicSeconds()
                let loss = model.forward(inputs: features.baseAddress!, labels: labels.baseAddress!, batch: batch).lossSum / Double(batch)
                model.backward(batch: batch)
                forwardBackwardSeconds += monotonicSeconds() - mark
                mark = monotonicSeconds()
                let applied = try optimizer.step(model.arena, learningRate: schedule.rate(at: step))
                optimizerSeconds += monotonicSeconds() - mark
                try account(applied: applied, step: step)
                logSynchronizations()
                step += 1
                if loss.isFinite { lossSinceLog += loss; stepsSinceLog += 1 }

                if step % options.logInterval == 0 || step == totalSteps {
                    let meanLoss = try world.allreduce([lossSinceLog / Double(max(1, stepsSinceLog))], operation: .sum)[0] / Double(world.size)
                    logStep(step: step, epoch: epoch, loss: meanLoss, elapsed: monotonicSeconds() - start)
                    lossSinceLog = 0
                    stepsSinceLog = 0
                }
                if options.evalInterval > 0 && step % options.evalInterval == 0 {
                    lastEvaluation = try evaluate(step: step, epoch: epoch)
                }
            }
            epoch += 1
            if options.evalInterval == 0 && step < totalSteps { lastEvaluation = try evaluate(step: step, epoch: epoch) }
        }
        let wall = monotonicSeconds() - start
        if lastEvaluation == nil || options.evalInterval == 0 || step % options.evalInterval != 0 {
            lastEvaluation = try evaluate(step: step, epoch: epoch)
        }
        try summarize(steps: step, epochs: epoch, wall: wall, evaluation: lastEvaluation!)
    }

    /// Counts a skipped step; stops the run on every rank after 20 in a row.
    private func account(applied: Bool, step: Int) throws {
        if applied {
            skippedInARow = 0
            appliedSteps += 1
            return
        }
        skippedSteps += 1
        skippedInARow += 1
        reporter?.say("step \(step + 1): NaN or Inf in the gradients on some rank; every rank skipped this step")
        if skippedInARow >= 20 { throw TrainingError.diverged(step: step + 1, skippedInARow: skippedInARow) }
    }

    /// Logs Local AdamW's synchronizations as they happen.
    private func logSynchronizations() {
        guard let local = optimizer as? LocalAdamW, local.synchronizations.count > loggedSynchronizations else { return }
        for sync in local.synchronizations[loggedSynchronizations...] {
            reporter?.record([("event", .string("sync")), ("step", .int(sync.step)), ("H", .int(sync.period)),
                              ("capped", .int(sync.capped ? 1 : 0)), ("bytes_sent", .int(sync.bytesSent))])
            if sync.capped {
                reporter?.say("step \(sync.step): \(local.rule) wanted a longer round than the steps left (η ≈ 0 near the end of the schedule); H capped at \(sync.period)")
            }
        }
        loggedSynchronizations = local.synchronizations.count
    }

    /// Communication rounds: Local AdamW's synchronizations, or one per applied step.
    private var synchronizationCount: Int {
        (optimizer as? LocalAdamW)?.synchronizations.count ?? (optimizer.communicator == nil ? 0 : appliedSteps)
    }

    private func logStep(step: Int, epoch: Int, loss: Double, elapsed: Double) {
        guard let reporter else { return }
        let samplesPerSecond = Double(step * options.batchSize * world.size) / max(elapsed, 1e-9)
        let eta = elapsed / Double(step) * Double(totalSteps - step)
        reporter.progress("step \(step)/\(totalSteps)  epoch \(epoch + 1)  loss \(fixed(loss, 4))  lr \(scientific(schedule.rate(at: step - 1)))  "
                          + "\(Int(samplesPerSecond)) samples/s  ETA \(durationText(eta))")
        reporter.record([("event", .string("step")), ("step", .int(step)), ("epoch", .int(epoch + 1)), ("loss", .double(loss)),
                         ("learning_rate", .double(Double(schedule.rate(at: step - 1)))), ("samples_per_second", .double(samplesPerSecond)),
                         ("bytes_sent_per_rank", .int(communicator.traffic.bytesSent))])
    }

    private func evaluate(step: Int, epoch: Int) throws -> Evaluation {
        let result = try Evaluation.run(model: model, dataset: test, communicator: world)
        reporter?.say("step \(step): test accuracy \(fixed(100 * result.accuracy, 2)) %, test loss \(fixed(result.loss, 4))")
        reporter?.record([("event", .string("eval")), ("step", .int(step)), ("epoch", .int(epoch)),
                          ("test_accuracy", .double(result.accuracy)), ("test_loss", .double(result.loss))])
        return result
    }

    private func summarize(steps: Int, epochs: Int, wall: Double, evaluation: Evaluation) throws {
        let parameters = model.arena.count
        let n = world.size
        let fp32BytesPerStep = 2 * (n - 1) * parameters * 4 / n
        let sent = communicator.traffic.bytesSent
        let samples = Double(steps * options.batchSize * n)
        guard let reporter else { return }
        let ratio = sent > 0 ? Double(fp32BytesPerStep * steps) / Double(sent) : 0
        reporter.say("""
            ── summary ─────────────────────────────────────────────
              optimizer        \(optimizer.name) on \(n) rank(s)
              test accuracy    \(fixed(100 * evaluation.accuracy, 2)) %   (test loss \(fixed(evaluation.loss, 4)))
              steps            \(steps) (\(skippedSteps) skipped for non-finite gradients), \(synchronizationCount) synchronizations
              wall time        \(durationText(wall))   (\(Int(samples / wall)) samples/s)
              sent per rank    \(bytesText(sent))   (fp32 gradient allreduce: \(bytesText(fp32BytesPerStep * steps))\(sent > 0 ? ", \(fixed(ratio, 1))× more" : ""))
            """)
        if options.profile { reporter.say(profileText(wall: wall)) }
        reporter.record([("event", .string("summary")), ("optimizer", .string(optimizer.name)), ("ranks", .int(n)),
                         ("test_accuracy", .double(evaluation.accuracy)), ("test_loss", .double(evaluation.loss)),
                         ("steps", .int(steps)), ("skipped_steps", .int(skippedSteps)), ("epochs", .int(epochs)),
                         ("synchronizations", .int(synchronizationCount)),
                         ("wall_seconds", .double(wall)), ("samples_per_second", .double(samples / wall)),
                         ("parameters", .int(parameters)),
                         ("bytes_sent_per_rank", .int(sent)), ("bytes_received_per_rank", .int(communicator.traffic.bytesReceived)),
                         ("fp32_allreduce_bytes_per_rank", .int(fp32BytesPerStep * steps)),
                         ("gemm_seconds", .double(BLAS.gemmSeconds)), ("forward_backward_seconds", .double(forwardBackwardSeconds)),
                         ("optimizer_seconds", .double(optimizerSeconds)), ("communication_seconds", .double(communicator.traffic.seconds)),
                         ("data_seconds", .double(dataSeconds))])
    }

    /// Shares of the run's time, rank 0's view.
    private func profileText(wall: Double) -> String {
        let communication = communicator.traffic.seconds
        let parts: [(String, Double)] = [
            ("GEMM (cblas_sgemm)", BLAS.gemmSeconds),
            ("other forward/backward", forwardBackwardSeconds - BLAS.gemmSeconds),
            ("optimizer compute", optimizerSeconds - communication),
            ("communication", communication),
            ("data", dataSeconds),
            ("evaluation, logging", wall - forwardBackwardSeconds - optimizerSeconds - dataSeconds),
        ]
        return "  profile (rank 0)\n" + parts.map { name, seconds in
            "    " + name.padding(24) + fixed(seconds, 2).padding(9) + "s  " + fixed(100 * seconds / wall, 1) + " %"
        }.joined(separator: "\n")
    }
}

/// A number like 3.0e-04.
func scientific(_ value: Float) -> String {
    guard value != 0, value.isFinite else { return "\(value)" }
    var exponent = 0
    var mantissa = Double(abs(value))
    while mantissa >= 10 { mantissa /= 10; exponent += 1 }
    while mantissa < 1 { mantissa *= 10; exponent -= 1 }
    let exponentText = exponent < 0 ? "-" + (abs(exponent) < 10 ? "0" : "") + "\(abs(exponent))" : "+" + (exponent < 10 ? "0" : "") + "\(exponent)"
    return (value < 0 ? "-" : "") + fixed(mantissa, 1) + "e" + exponentText
}

extension String {
    /// The string padded with spaces to `width`.
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
