// A trainer of its own that borrows only the optimizer: least-squares regression of a
// random linear map, its own model and gradient, stepped by Training's Distributed Lion on
// its own buffers. Each rank sees its own data; one bit per parameter crosses the wire.
//   ci/mpirun -np 4 examples/.build/release/lion-example
import Collectives
import Training

do {
    try MPI.start()
    let world = try MPI.world()
    let (inputs, outputs, rows) = (32, 8, 64)
    var truthRandom = SplitMix64(seed: 42)   // the same map on every rank
    let truth = (0..<outputs * inputs).map { _ in truthRandom.uniform(-1, 1) }
    var dataRandom = SplitMix64(seed: UInt64(world.rank + 1))  // different data per rank

    var weights = [Float](repeating: 0, count: outputs * inputs)  // identical start everywhere
    var gradient = [Float](repeating: 0, count: weights.count)
    let optimizer = DistributedLion(count: weights.count, communicator: try world.duplicate(),
                                    hyperparameters: LionHyperparameters(weightDecay: 0), seed: 7)

    func lossAndGradient() -> Float {
        gradient = [Float](repeating: 0, count: weights.count)
        var loss: Float = 0
        for _ in 0..<rows {
            let x = (0..<inputs).map { _ in dataRandom.uniform(-1, 1) }
            for o in 0..<outputs {
                var error: Float = 0
                for i in 0..<inputs { error += (weights[o * inputs + i] - truth[o * inputs + i]) * x[i] }
                loss += error * error / Float(rows)
                for i in 0..<inputs { gradient[o * inputs + i] += 2 * error * x[i] / Float(rows) }
            }
        }
        return loss
    }

    let first = lossAndGradient()
    var last = first
    for step in 0..<400 {
        last = lossAndGradient()
        let rate: Float = step < 300 ? 0.01 : 0.001
        _ = try weights.withUnsafeMutableBufferPointer { w in
            try gradient.withUnsafeMutableBufferPointer { g in try optimizer.step(parameters: w, gradients: g, learningRate: rate) }
        }
    }
    // Every rank applied the same votes, so the weights are identical without being sent.
    let highest = try world.allreduce(weights, operation: .max)
    let lowest = try world.allreduce(weights, operation: .min)
    guard highest == weights, lowest == weights, last < first / 20 else {
        print("lion-example (rank \(world.rank)): replicas differ or loss did not fall (\(first) → \(last))")
        MPI.abort(errorCode: 1)
    }
    if world.rank == 0 {
        let sent = optimizer.communicator!.traffic.bytesSent
        print("lion-example: \(world.size) ranks, loss \(first) → \(last), replicas identical, \(sent) bytes sent per rank for \(weights.count) parameters × 400 steps")
    }
    try MPI.finalize()
} catch {
    print("lion-example: \(error)")
    MPI.abort(errorCode: 1)
}
