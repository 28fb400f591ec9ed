// A trainer of its own: least-squares regression of a random linear map, with its own model
// and data, trained by Training's `Trainer` with Distributed Lion. Each rank draws its own
// rows; one bit per parameter crosses the wire, and the replicas stay identical.
//   ci/mpirun -np 4 examples/.build/release/lion-example
// MPI is finalized at exit.
import Collectives
import Training

/// Rows x (row-major, 32 floats each) with targets y = truth·x (8 floats each).
struct Rows { var x: [Float], y: [Float], count: Int }

/// y = W·x with W 8×32, the arena's one tensor; loss ½‖Wx − y‖² summed over the rows.
final class LinearMap: Model {
    let arena: ParameterArena
    private var errors: [Float] = []

    init() throws { arena = try ParameterArena(tensors: [("weight", [8, 32])]) }

    func forward(_ batch: Rows) -> BatchResult {
        let w = arena.parameters
        errors = (0..<batch.count * 8).map { (i: Int) -> Float in
            (0..<32).reduce(-batch.y[i]) { $0 + w[i % 8 * 32 + $1] * batch.x[i / 8 * 32 + $1] }
        }
        return BatchResult(lossSum: errors.reduce(0) { $0 + 0.5 * Double($1 * $1) }, correct: 0, count: batch.count)
    }

    func backward(_ batch: Rows) {
        arena.withGradients { g in
            for index in g.indices {
                let (o, i) = (index / 32, index % 32)
                g[index] = (0..<batch.count).reduce(0) { $0 + errors[$1 * 8 + o] * batch.x[$1 * 32 + i] } / Float(batch.count)
            }
        }
    }
}

/// Fresh random rows every step, different on every rank, of the same map everywhere.
final class RandomRows: TrainingData, EvaluationData {
    let (stepsPerEpoch, batchSize) = (100, 64)
    private let truth: [Float] = { var random = SplitMix64(seed: 42); return (0..<256).map { _ in random.uniform(-1, 1) } }()
    private var random: SplitMix64

    init(rank: Int) { random = SplitMix64(seed: UInt64(rank + 1)) }

    func batch(epoch: Int, step: Int) -> Rows {
        let x = (0..<batchSize * 32).map { _ in random.uniform(-1, 1) }
        let y = (0..<batchSize * 8).map { (i: Int) -> Float in (0..<32).reduce(0) { $0 + truth[i % 8 * 32 + $1] * x[i / 8 * 32 + $1] } }
        return Rows(x: x, y: y, count: batchSize)
    }

    func forEachBatch(rank: Int, ranks: Int, _ body: (Rows) throws -> Void) rethrows { try body(batch(epoch: 0, step: 0)) }
}

do {
    try MPI.start()
    let world = try MPI.world()
    try Threads.shareNode(with: world)
    let (model, data) = (try LinearMap(), RandomRows(rank: world.rank))
    let optimizer = try DistributedLion(count: model.arena.count, communicator: try world.duplicate(), seed: 7)
    let first = try Evaluation.run(model: model, data: data, communicator: world).loss
    let summary = try Trainer(model: model, optimizer: optimizer, data: data, evaluationData: data, communicator: world,
                              plan: TrainingPlan(steps: 400, schedule: .cosine(peak: 0.01, warmupSteps: 20, totalSteps: 400, minimum: 0)))
        .run()
    // Every rank applied the same votes, so the weights are identical without being sent.
    let weights = Array(model.arena.parameters)
    guard try world.allreduce(weights, operation: .max) == world.allreduce(weights, operation: .min),
          summary.evaluation.loss < first / 20 else {
        print("lion-example (rank \(world.rank)): replicas differ or loss did not fall (\(first) → \(summary.evaluation.loss))")
        MPI.abort(errorCode: 1)
    }
    if world.rank == 0 {
        print("lion-example: \(world.size) ranks, loss \(first) → \(summary.evaluation.loss), replicas identical, "
              + "\(summary.traffic.bytesSent) bytes sent per rank for \(weights.count) parameters × \(summary.steps) steps")
    }
} catch {
    print("lion-example: \(error)")
    MPI.abort(errorCode: 1)
}
