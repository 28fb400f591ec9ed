import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The signal received since ``StopSignals/install()``, 0 for none; written by the handler.
private let receivedSignal = Atomic<Int32>(0)

/// The handler: the first signal asks the run to stop after its step; a second one, while
/// the first is still pending, ends the process at once, the signal's default way.
private func requestStop(_ signal: Int32) {
    if receivedSignal.exchange(signal, ordering: .relaxed) != 0 {
        _ = Glibc.signal(signal, SIG_DFL)
        _ = raise(signal)
    }
}

/// Signals that ask a run to stop cleanly rather than die: a scheduler's SIGTERM (Slurm sends
/// it to every task, then SIGKILL after its `KillWait`), SIGINT (Ctrl-C), and SIGUSR1, which
/// `mpirun` forwards to every rank without starting to kill them.
///
/// Under `mpirun`, SIGTERM or SIGINT sent to `mpirun` reaches every rank as SIGTERM, and
/// Open MPI SIGKILLs the ranks about two seconds later (`--mca odls_base_sigkill_timeout`,
/// 1 s by default, waited twice): enough to finish a short step and write a small checkpoint.
/// `kill -USR1` on `mpirun` gives the ranks all the time they need.
///
/// While installed, a ``Trainer`` whose plan has ``TrainingPlan/stopOnSignals`` agrees with
/// the other ranks on a step to stop after, saves a checkpoint there and throws
/// ``TrainingError/stopped(step:totalSteps:signal:checkpoint:)``.
public enum StopSignals {
    /// SIGTERM, SIGINT and SIGUSR1.
    public static let handled: [Int32] = [SIGTERM, SIGINT, SIGUSR1]

    /// Catches ``handled`` until ``uninstall()``; forgets any signal received before.
    public static func install() {
        receivedSignal.store(0, ordering: .relaxed)
        for signal in handled { _ = Glibc.signal(signal, requestStop) }
    }

    /// Gives ``handled`` back their default actions.
    public static func uninstall() {
        for signal in handled { _ = Glibc.signal(signal, SIG_DFL) }
    }

    /// The signal received since ``install()``, if any.
    public static var received: Int32? {
        let signal = receivedSignal.load(ordering: .relaxed)
        return signal == 0 ? nil : signal
    }

    /// A signal's conventional name: `SIGTERM`, `SIGINT`, `SIGUSR1`, or `signal N`.
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGUSR1: "SIGUSR1"
        default: "signal \(signal)"
        }
    }
}
