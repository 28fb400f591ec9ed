// Links Collectives from another package and uses it under mpirun:
//   ci/mpirun -np 4 examples/.build/release/collectives-example
// It deliberately never calls MPI.finalize(): the library finalizes at exit, and the test
// script checks that such a program still exits cleanly.
import Collectives

do {
    try MPI.start()
    let world = try MPI.world()
    let gradients = [Float](repeating: Float(world.rank + 1), count: 1 << 16)
    let summed = try world.allreduce(gradients, operation: .sum)
    let expected = Float(world.size * (world.size + 1) / 2)
    guard summed.allSatisfy({ $0 == expected }) else {
        print("rank \(world.rank): allreduce gave \(summed[0]), expected \(expected)")
        MPI.abort(errorCode: 1)
    }
    if world.rank == 0 {
        print("collectives-example: \(world.size) ranks agree; sent \(world.traffic.bytesSent) bytes per rank")
    }
} catch {
    print("collectives-example: \(error)")
    MPI.abort(errorCode: 1)
}
