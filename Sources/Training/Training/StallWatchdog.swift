import Collectives
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ends the job when this rank stops making progress: when no step completes within the
/// timeout — another rank stopped (SIGSTOP, a hung device), a host lost, a collective that
/// never returns — it reports which step this rank is waiting in and calls `MPI_Abort`, as
/// PyTorch's collective timeout does, instead of leaving every rank blocked forever.
///
/// The check runs on a thread of its own (not a Dispatch worker: a worker held in `sleep`
/// for the whole run would be one fewer for ``Parallel``'s pieces), once a second; the training thread only stores
/// two numbers per step. (`MPI_Abort` from that thread goes beyond what `MPI_THREAD_FUNNELED`
/// promises; Open MPI honours it, and at that point the job is lost anyway.)
final class StallWatchdog: Sendable {
    /// The rank, for the message.
    let rank: Int
    private let timeoutMilliseconds: Atomic<Int>
    private let lastProgress: Atomic<Int>
    private let waitingIn: Atomic<Int>
    private let running = Atomic<Bool>(true)

    /// A watchdog for `rank` with a first timeout of `timeout` seconds, started at once.
    init(rank: Int, timeout: Double) {
        self.rank = rank
        timeoutMilliseconds = Atomic(Int(timeout * 1000))
        lastProgress = Atomic(StallWatchdog.nowMilliseconds())
        waitingIn = Atomic(1)
        var thread = pthread_t()
        let retained = Unmanaged.passRetained(self).toOpaque()
        if pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<StallWatchdog>.fromOpaque(context).takeRetainedValue().watch()
            return nil
        }, retained) == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<StallWatchdog>.fromOpaque(retained).release()
        }
    }

    /// Step `step` (1-based) completed; the rank now waits in the next one.
    func completed(step: Int) {
        lastProgress.store(StallWatchdog.nowMilliseconds(), ordering: .relaxed)
        waitingIn.store(step + 1, ordering: .relaxed)
    }

    /// Sets the timeout to `seconds`.
    func setTimeout(_ seconds: Double) { timeoutMilliseconds.store(Int(seconds * 1000), ordering: .relaxed) }

    /// Stops watching (the run ended or left the loop).
    func stop() { running.store(false, ordering: .relaxed) }

    private func watch() {
        while running.load(ordering: .relaxed) {
            sleep(1)
            let idle = StallWatchdog.nowMilliseconds() - lastProgress.load(ordering: .relaxed)
            let timeout = timeoutMilliseconds.load(ordering: .relaxed)
            guard running.load(ordering: .relaxed), idle > timeout else { continue }
            let message = "Trainer (rank \(rank)): error: no step completed in \(timeout / 1000) s; this rank is waiting in step "
                + "\(waitingIn.load(ordering: .relaxed)) (another rank may be stopped, or its host lost); ending the job with MPI_Abort\n"
            _ = Array(message.utf8).withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            MPI.abort(errorCode: 4)
        }
    }

    private static func nowMilliseconds() -> Int { Int(monotonicSeconds() * 1000) }
}
