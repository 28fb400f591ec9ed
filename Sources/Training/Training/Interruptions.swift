import Collectives

/// Requests that reach each rank at its own moment — a stop signal, a checkpoint due by the
/// clock — turned into one decision every rank takes after the same step.
///
/// Every ``every`` steps the ranks exchange their requests in one small allreduce (`MPI_MAX`
/// of two integers). ``every`` follows the step time the ranks agreed on at the last logged
/// step, so that an agreement comes about five times a second: a stop waits at most a fifth
/// of a second plus a step, and the allreduce costs well under 1 % of the run.
struct Interruptions {
    /// What the ranks decided after a step.
    struct Decision {
        /// The signal that asked to stop, on the rank where it arrived first; nil: go on.
        var stopSignal: Int32?
        /// Whether a checkpoint is due by the clock on some rank.
        var checkpointDue: Bool
    }

    /// Whether stop signals are heeded.
    let signals: Bool
    /// Seconds between checkpoints by the clock; 0: none.
    let checkpointSeconds: Double
    /// Steps between agreements; the same on every rank.
    private(set) var every = 1
    /// When this rank last saved (or started).
    private var lastCheckpoint: Double

    /// How long a stop may wait for its agreement, in seconds.
    static let agreementPeriod = 0.2

    init(signals: Bool, checkpointSeconds: Double, now: Double) {
        self.signals = signals
        self.checkpointSeconds = checkpointSeconds
        lastCheckpoint = now
    }

    /// Whether anything can interrupt the run.
    var isActive: Bool { signals || checkpointSeconds > 0 }

    /// Whether the ranks agree after `step`.
    func agreesAfter(step: Int) -> Bool { isActive && step % every == 0 }

    /// Sets the agreement interval from `stepSeconds`, a step's duration agreed by every rank,
    /// at most `most` steps (the log interval, where the loss report agrees anyway).
    mutating func follow(stepSeconds: Double, atMost most: Int) {
        let steps = stepSeconds > 0 ? Interruptions.agreementPeriod / stepSeconds : Double(most)
        every = max(1, Int(min(steps, Double(most))))
    }

    /// This rank's requests against every other's; collective.
    func agree(on communicator: Communicator, now: Double) throws -> Decision {
        let local: [Int32] = [signals ? StopSignals.received ?? 0 : 0,
                              checkpointSeconds > 0 && now - lastCheckpoint >= checkpointSeconds ? 1 : 0]
        let agreed = try communicator.allreduce(local, operation: .max)
        return Decision(stopSignal: agreed[0] == 0 ? nil : agreed[0], checkpointDue: agreed[1] != 0)
    }

    /// Notes a checkpoint saved at `now`, from which the clock counts again.
    mutating func saved(now: Double) { lastCheckpoint = now }
}
