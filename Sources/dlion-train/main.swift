// dlion-train: data-parallel training with Distributed Lion and its baselines.
import ArgumentParser
import Training
#if canImport(Glibc)
import Glibc
#endif

BLAS.restartWithSleepingIdleThreads()
do {
    var command = try TrainCommand.parseAsRoot()
    try command.run()
} catch {
    // One write per message: every rank prints it, and mpirun must not interleave them mid-line.
    let message = TrainCommand.fullMessage(for: error)
    let code = TrainCommand.exitCode(for: error)
    if !message.isEmpty {
        if code == .success { print(message) } else { printError(message) }
    }
    exit(code.rawValue)
}
