import Training

/// Turns the trainer's events into rank 0's progress lines, metrics records and summary.
final class RunObserver: TrainingObserver {
    let reporter: Reporter
    /// Whether to print where the time went (`--profile`).
    let profile: Bool
    /// Local AdamW's rule, to explain a capped round.
    let synchronizationRule: SynchronizationRule?

    /// For a language model, the tokens in each example (window): it is scored by validation
    /// loss in nats and bits per character, and its speed given in tokens per second. Nil for
    /// a classifier (test accuracy, examples per second).
    let tokensPerExample: Int?
    /// DGC, to give its warm-up's traffic apart from the steady state's; nil for the others.
    let dgc: DGC?

    init(reporter: Reporter, profile: Bool, tokensPerExample: Int?, synchronizationRule: SynchronizationRule?, dgc: DGC?) {
        self.reporter = reporter
        self.profile = profile
        self.tokensPerExample = tokensPerExample
        self.synchronizationRule = synchronizationRule
        self.dgc = dgc
    }

    func observe(_ event: TrainingEvent) throws {
        switch event {
        case .step(let report): try step(report)
        case .skipped(let step):
            reporter.say("step \(step): NaN or Inf in the gradients on some rank; every rank skipped this step")
        case .synchronization(let sync): try synchronization(sync)
        case .evaluation(let report): try evaluation(report)
        case .stopped(let step, let signal, let checkpoint): try stopped(step: step, signal: signal, checkpoint: checkpoint)
        case .finished(let summary): try finished(summary)
        }
    }

    private func step(_ report: StepReport) throws {
        let eta = report.elapsedSeconds / Double(report.step) * Double(report.totalSteps - report.step)
        reporter.progress("step \(report.step)/\(report.totalSteps)  epoch \(report.epoch)  loss \(fixed(report.loss, 4))  "
                          + "lr \(scientific(report.learningRate))  \(speedText(report.samplesPerSecond))  ETA \(durationText(eta))")
        try reporter.record([("event", .string("step")), ("step", .int(report.step)), ("epoch", .int(report.epoch)), ("loss", .double(report.loss)),
                         ("learning_rate", .double(Double(report.learningRate))), ("samples_per_second", .double(report.samplesPerSecond)),
                         ("bytes_sent_per_rank", .int(report.bytesSentPerRank))])
    }

    private func synchronization(_ sync: Synchronization) throws {
        try reporter.record([("event", .string("sync")), ("step", .int(sync.step)), ("H", .int(sync.period)),
                         ("capped", .int(sync.capped ? 1 : 0)), ("bytes_sent", .int(sync.bytesSent)),
                         ("skipped_steps", .int(sync.skippedSteps))])
        if sync.skippedSteps > 0 {
            reporter.say("step \(sync.step): NaN or Inf in the gradients; \(sync.skippedSteps) local steps skipped in this round (over all ranks), the longest run on one rank \(sync.longestSkipRun)")
        }
        if sync.capped, let rule = synchronizationRule {
            reporter.say("step \(sync.step): \(rule) wanted a longer round than the steps left (η ≈ 0 near the end of the schedule); H capped at \(sync.period)")
        }
    }

    private func evaluation(_ report: EvaluationReport) throws {
        let result = report.evaluation
        reporter.say("step \(report.step): \(scoreText(result))")
        try reporter.record([("event", .string("eval")), ("step", .int(report.step)), ("epoch", .int(report.epoch)),
                         ("test_accuracy", .double(result.accuracy)), ("test_loss", .double(result.loss)),
                         ("seconds", .double(report.elapsedSeconds)), ("bytes_sent_per_rank", .int(report.bytesSentPerRank))])
    }

    private func stopped(step: Int, signal: Int32, checkpoint: String?) throws {
        try reporter.record([("event", .string("stopped")), ("step", .int(step)), ("signal", .string(StopSignals.name(signal)))]
                            + (checkpoint.map { [("checkpoint", .string($0))] } ?? []))
        reporter.say("stopped by \(StopSignals.name(signal)) after step \(step): "
                     + (checkpoint.map { "checkpoint saved in \($0); to continue, run the same command with --resume" }
                        ?? "nothing saved; pass --checkpoint-dir to make a run resumable"))
    }

    private func finished(_ summary: TrainingSummary) throws {
        let sent = summary.traffic.bytesSent, fp32 = summary.fp32AllreduceBytesPerRank
        let ratio = sent > 0 ? Double(fp32) / Double(sent) : 0
        let wall = summary.wallSeconds
        reporter.say("""
            ── summary ─────────────────────────────────────────────
              optimizer        \(summary.optimizer) on \(summary.ranks) rank(s)
              evaluation       \(scoreText(summary.evaluation))
              steps            \(summary.steps) (\(summary.skippedSteps) skipped for non-finite gradients), \(summary.communicationRounds) synchronizations
              wall time        \(durationText(wall))   (\(speedText(summary.samplesPerSecond)))
              sent per rank    \(bytesText(sent))   (fp32 gradient allreduce: \(bytesText(fp32))\(sent > 0 ? ", \(fixed(ratio, 1))× more" : ""))
            """)
        let steadyBits = dgc.map { 8 * Double($0.steadyBytesSent) / Double(max(1, $0.steadySteps) * summary.parameters) }
        if let dgc, let steadyBits {
            reporter.say("  DGC traffic      warm-up \(bytesText(dgc.warmUpBytesSent)) in \(min(dgc.sparsity.steps, summary.steps)) steps, "
                         + "then \(bytesText(dgc.steadyBytesSent)) in \(dgc.steadySteps) (\(fixed(steadyBits, 3)) bits per parameter per step); "
                         + "\(dgc.clippedSteps) steps clipped")
        }
        if profile { reporter.say(profileText(summary)) }
        let dgcFields: [(String, JSONValue)] = dgc.map { dgc in
            [("dgc_warmup_bytes_sent_per_rank", .int(dgc.warmUpBytesSent)), ("dgc_steady_bytes_sent_per_rank", .int(dgc.steadyBytesSent)),
             ("dgc_steady_steps", .int(dgc.steadySteps)), ("dgc_steady_bits_per_parameter_step", .double(steadyBits ?? 0)),
             ("dgc_clipped_steps", .int(dgc.clippedSteps))]
        } ?? []
        let times = summary.times
        try reporter.record([("event", .string("summary")), ("optimizer", .string(summary.optimizer)), ("ranks", .int(summary.ranks)),
                         ("test_accuracy", .double(summary.evaluation.accuracy)), ("test_loss", .double(summary.evaluation.loss)),
                         ("steps", .int(summary.steps)), ("skipped_steps", .int(summary.skippedSteps)), ("epochs", .int(summary.epochs)),
                         ("synchronizations", .int(summary.communicationRounds)),
                         ("wall_seconds", .double(wall)), ("samples_per_second", .double(summary.samplesPerSecond)),
                         ("parameters", .int(summary.parameters)),
                         ("bytes_sent_per_rank", .int(sent)), ("bytes_received_per_rank", .int(summary.traffic.bytesReceived)),
                         ("fp32_allreduce_bytes_per_rank", .int(fp32)),
                         ("gemm_seconds", .double(times.gemm)), ("forward_backward_seconds", .double(times.forwardBackward)),
                         ("optimizer_seconds", .double(times.optimizer)), ("communication_seconds", .double(times.communication)),
                         ("data_seconds", .double(times.data))] + dgcFields)
        try reporter.close()
    }

    /// An evaluation in words: accuracy and loss, or for a language model the loss per
    /// character in nats and bits and the share of next characters predicted.
    private func scoreText(_ result: Evaluation) -> String {
        guard tokensPerExample != nil else { return "test accuracy \(fixed(100 * result.accuracy, 2)) %, test loss \(fixed(result.loss, 4))" }
        return "validation loss \(fixed(result.loss, 4)) nats/char (\(fixed(result.loss / 0.6931471805599453, 3)) bits/char), next character right \(fixed(100 * result.accuracy, 1)) %"
    }

    /// Examples per second, or tokens per second for a language model.
    private func speedText(_ examplesPerSecond: Double) -> String {
        tokensPerExample.map { "\(Int(examplesPerSecond * Double($0))) tokens/s" } ?? "\(Int(examplesPerSecond)) samples/s"
    }

    /// Shares of the run's time, rank 0's view.
    private func profileText(_ summary: TrainingSummary) -> String {
        let (times, wall) = (summary.times, summary.wallSeconds)
        let parts: [(String, Double)] = [
            ("GEMM (cblas_sgemm)", times.gemm),
            ("other forward/backward", times.forwardBackward - times.gemm),
            ("optimizer compute", times.optimizer - times.communication),
            ("communication", times.communication),
            ("data", times.data),
            ("evaluation, logging", wall - times.forwardBackward - times.optimizer - times.data),
        ]
        return "  profile (rank 0)\n" + parts.map { name, seconds in
            "    " + name.padding(24) + fixed(seconds, 2).padding(9) + "s  " + fixed(100 * seconds / wall, 1) + " %"
        }.joined(separator: "\n")
    }
}
