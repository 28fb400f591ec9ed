import Collectives

/// How many local steps a round of Local AdamW lasts (Gu et al., ICLR 2024).
public enum SynchronizationRule: Sendable, Equatable, CustomStringConvertible {
    /// H steps every round.
    case constant(Int)
    /// The Quadratic Synchronization Rule: H = max(H_base, ⌊(α/η)²⌋).
    case quadratic(base: Int, alpha: Float)
    /// The γ = 1 baseline: H = max(H_base, ⌊α/η⌋).
    case linear(base: Int, alpha: Float)

    /// Why the rule's settings are unusable, if they are.
    public var problem: String? {
        switch self {
        case .constant(let h):
            return h >= 1 ? nil : "the synchronization period H must be at least 1 (got \(h))"
        case .quadratic(let base, let alpha), .linear(let base, let alpha):
            if base < 1 { return "H_base must be at least 1 (got \(base))" }
            if !(alpha > 0 && alpha.isFinite) { return "the QSR α must be a positive number (got \(alpha))" }
            return nil
        }
    }

    /// The period of a round whose first step has learning rate `learningRate`: H_base during
    /// warm-up, never more than `stepsLeft`. A zero learning rate would make H infinite; it
    /// is capped by the steps left, and `capped` says so.
    public func period(learningRate: Float, warmingUp: Bool, stepsLeft: Int) -> (steps: Int, capped: Bool) {
        let limit = max(1, stepsLeft)
        let wanted: Double
        switch self {
        case .constant(let h):
            wanted = Double(h)
        case .quadratic(let base, let alpha):
            let ratio = Double(alpha) / Double(learningRate)   // +∞ when η = 0
            wanted = warmingUp ? Double(base) : max(Double(base), (ratio * ratio).rounded(.down))
        case .linear(let base, let alpha):
            let ratio = Double(alpha) / Double(learningRate)
            wanted = warmingUp ? Double(base) : max(Double(base), ratio.rounded(.down))
        }
        if !(wanted < Double(limit)) { return (limit, wanted > Double(limit)) }
        return (Int(wanted), false)
    }

    public var description: String {
        switch self {
        case .constant(let h): return "constant H = \(h)"
        case .quadratic(let base, let alpha): return "QSR (H_base \(base), α \(alpha))"
        case .linear(let base, let alpha): return "H ∝ 1/η (H_base \(base), α \(alpha))"
        }
    }
}

/// A synchronization of Local AdamW: at which step, after how long a round, at what cost.
public struct Synchronization: Sendable, Equatable {
    /// The step (1-based) that ended the round.
    public let step: Int
    /// The round's length H.
    public let period: Int
    /// Whether H was cut to the steps left (always so when η = 0 under QSR).
    public let capped: Bool
    /// The bytes this rank sent for it.
    public let bytesSent: Int
    /// Local steps skipped in the round for non-finite gradients, summed over ranks.
    public let skippedSteps: Int
    /// The longest run of consecutive local steps one rank skipped that holds a step of this
    /// round, counted in full (a run continues across rounds); the largest over ranks.
    public let longestSkipRun: Int
}

/// Local AdamW: each rank steps AdamW on its own data for H steps, then the parameters are
/// averaged across ranks (fp32 `MPI_Allreduce` ÷ N). The moments stay local (the paper's
/// default) unless `averageMoments` is set. H is chosen at the start of each round by a
/// ``SynchronizationRule`` from the learning rate of the round's first step.
///
/// Between synchronizations the ranks exchange nothing. A rank whose gradients are not
/// finite skips its own local update, alone; each synchronization reports the skips of its
/// round (``Synchronization/skippedSteps``, ``Synchronization/longestSkipRun``, agreed by two
/// 8-byte allreduces), so ``step(parameters:gradients:learningRate:)`` always returns `true`
/// and the ``Trainer`` counts skips and stops a diverging run at the synchronizations.
public final class LocalAdamW: DistributedOptimizer {
    public let name: String
    public let communicator: Communicator
    /// The rule choosing each round's H.
    public let rule: SynchronizationRule
    /// Whether m and v are averaged at synchronizations too.
    public let averageMoments: Bool
    /// Every synchronization so far.
    public private(set) var synchronizations: [Synchronization] = []
    /// One per synchronization, those before a restore included.
    public var communicationRounds: Int { restoredRounds + synchronizations.count }
    /// Synchronizations of the run before its state was restored from a checkpoint.
    private var restoredRounds = 0

    private let local: AdamW
    private let schedule: LearningRateSchedule
    private let totalSteps: Int
    private var step = 0
    private var roundLeft = 0
    private var round = (steps: 0, capped: false)
    /// This rank's skipped local steps in the round so far.
    private var skippedInRound = 0
    /// This rank's current run of consecutive skipped steps, and the longest that holds a
    /// step of this round.
    private var skipRun = (current: 0, longest: 0)

    /// Local AdamW for `count` parameters over `communicator`, for a run of `totalSteps`
    /// steps on `schedule`. Throws when the rule's settings are unusable.
    public init(count: Int, communicator: Communicator, rule: SynchronizationRule, schedule: LearningRateSchedule,
                totalSteps: Int, hyperparameters: AdamWHyperparameters = AdamWHyperparameters(), averageMoments: Bool = false) throws {
        if let problem = rule.problem { throw TrainingError.invalidConfiguration(problem) }
        self.communicator = communicator
        self.rule = rule
        self.schedule = schedule
        self.totalSteps = totalSteps
        self.averageMoments = averageMoments
        self.local = try AdamW(count: count, hyperparameters: hyperparameters)
        switch rule {
        case .constant: name = "local-adamw-constant"
        case .quadratic: name = "local-adamw-qsr"
        case .linear: name = "local-adamw-linear"
        }
    }

    public var state: OptimizerState {
        OptimizerState(scalars: ["step": step, "round_left": roundLeft, "round_steps": round.steps, "round_capped": round.capped ? 1 : 0,
                                 "communication_rounds": communicationRounds, "skipped_in_round": skippedInRound,
                                 "skip_run": skipRun.current, "longest_skip_run": skipRun.longest])
            .merging(local.state, prefix: "adamw")
    }

    /// Only between rounds: within one, every rank trains its own replica.
    public var replicasAgree: Bool { roundLeft == 0 }

    /// Restores the round in progress; ``synchronizations`` lists only those after it.
    public func restore(scalars: [String: Int]) throws {
        step = try OptimizerState.scalar("step", in: scalars)
        roundLeft = try OptimizerState.scalar("round_left", in: scalars)
        round = (try OptimizerState.scalar("round_steps", in: scalars), try OptimizerState.scalar("round_capped", in: scalars) != 0)
        restoredRounds = try OptimizerState.scalar("communication_rounds", in: scalars)
        skippedInRound = try OptimizerState.scalar("skipped_in_round", in: scalars)
        skipRun = (try OptimizerState.scalar("skip_run", in: scalars), try OptimizerState.scalar("longest_skip_run", in: scalars))
        synchronizations = []
        try local.restore(scalars: OptimizerState.scalars(scalars, under: "adamw"))
    }

    /// One step of the round, without a message unless it ends the round. A step whose
    /// gradients are not finite on this rank leaves its replica and moments as they were, but
    /// still counts in the round, as every step does in the training loop, so that the rounds
    /// stay on the loop's steps and the last one ends, synchronized, on the last step.
    /// Returns `true`: skips are reported by the round's ``Synchronization``.
    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        let finite = allFinite(UnsafeBufferPointer(gradients))
        if roundLeft == 0 {
            round = rule.period(learningRate: schedule.rate(at: step), warmingUp: schedule.isWarmingUp(at: step),
                                stepsLeft: totalSteps - step)
            roundLeft = round.steps
        }
        if finite {
            _ = try communicator.timeline.span("update", .optimizer) {
                try local.step(parameters: parameters, gradients: gradients, learningRate: learningRate)
            }
            skipRun.current = 0
        } else {
            skippedInRound += 1
            skipRun.current += 1
            skipRun.longest = max(skipRun.longest, skipRun.current)
        }
        step += 1
        roundLeft -= 1
        if roundLeft == 0 { try synchronize(parameters) }
        return true
    }

    /// Averages the parameters (and the moments, if asked) across ranks.
    private func synchronize(_ parameters: UnsafeMutableBufferPointer<Float>) throws {
        let before = communicator.traffic.bytesSent
        let buffers = averageMoments ? [parameters, local.firstMoment.storage, local.secondMoment.storage] : [parameters]
        for buffer in buffers { try averageAcrossRanks(buffer, communicator: communicator) }
        let skipped = Int(try communicator.allreduce([Int64(skippedInRound)], operation: .sum)[0])
        let longestRun = Int(try communicator.allreduce([Int64(skipRun.longest)], operation: .max)[0])
        synchronizations.append(Synchronization(step: step, period: round.steps, capped: round.capped,
                                                bytesSent: communicator.traffic.bytesSent - before,
                                                skippedSteps: skipped, longestSkipRun: longestRun))
        (skippedInRound, skipRun.longest) = (0, 0)
    }
}
