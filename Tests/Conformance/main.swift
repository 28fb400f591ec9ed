// The multi-rank conformance suite: run under mpirun at any rank count.
//
// Every check compares a call's result with values each rank computes on its own. Each
// failure prints a line naming rank, call and size; rank 0 ends with "N passed, M failed";
// the exit code is non-zero on any failure, on every rank.
import Collectives
#if canImport(Glibc)
import Glibc
#endif

// Calls before start-up throw rather than crash.
var earlyProblems: [String] = []
do {
    _ = try MPI.world()
    earlyProblems.append("MPI.world() before start did not throw")
} catch CollectiveError.notStarted {
} catch {
    earlyProblems.append("MPI.world() before start threw \(error)")
}

do {
    let granted = try MPI.start(threadLevel: .funneled)
    let again = try MPI.start(threadLevel: .multiple)
    let world = try MPI.world()
    let harness = Harness(world: world)
    for problem in earlyProblems { harness.expect(false, "before start", problem) }
    harness.expect(again == granted, "start is idempotent", "second start returned \(again), first \(granted)")
    harness.expect(granted >= .single, "thread level", "granted \(granted)")
    if world.rank == 0 { print("conformance: \(world.size) ranks, thread level \(granted)") }

    MPILayerChecks(harness: harness).runAll()
    BadInputChecks(harness: harness).runAll()
    SignAllreduceChecks(harness: harness).runAll()
    NodeAwareSignAllreduceChecks(harness: harness, signs: SignAllreduceChecks(harness: harness)).runAll()
    OverlappedSignAllreduceChecks(harness: harness).runAll()
    CompressedAllgatherChecks(harness: harness).runAll()
    TrainingChecks(harness: harness).runAll()
    TernGradChecks(harness: harness).runAll()
    SparseGradientChecks(harness: harness).runAll()
    ThreadedAttentionChecks(harness: harness).runAll()

    let allPassed = try harness.finish()
    try MPI.finalize()
    try MPI.finalize()  // idempotent

    // After shut-down every call throws instead of crashing.
    do {
        _ = try world.allreduce([Float(1)], operation: .sum)
        print("FAIL rank \(world.rank): allreduce after finalize did not throw")
        exit(1)
    } catch CollectiveError.alreadyFinalized {
    }
    exit(allPassed ? 0 : 1)
} catch {
    print("FAIL: conformance suite stopped: \(error)")
    exit(2)
}
