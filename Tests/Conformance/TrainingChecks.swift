import Collectives
import Training

/// Checks the distributed optimizers across ranks: replicas stay identical, and a NaN on one
/// rank makes every rank skip the step.
struct TrainingChecks {
    let harness: Harness
    var world: Communicator { harness.world }

    func runAll() {
        for name in ["dlion-mavo", "dlion-avg", "global-lion", "global-adamw"] {
            checkReplicasStayIdentical(optimizerName: name)
        }
        checkNonFiniteGradientSkipsEverywhere()
    }

    func makeOptimizer(_ name: String, count: Int, communicator: Communicator) -> Optimizer {
        switch name {
        case "dlion-mavo": return DistributedLion(count: count, communicator: communicator, reduction: .majorityVote, seed: 1)
        case "dlion-avg": return DistributedLion(count: count, communicator: communicator, reduction: .average, seed: 1)
        case "global-lion": return DataParallel(Lion(count: count), communicator: communicator)
        default: return DataParallel(AdamW(count: count), communicator: communicator)
        }
    }

    /// A small MLP trained on each rank's own synthetic rows: parameters must match on every
    /// rank after every step, and the loss must fall.
    func checkReplicasStayIdentical(optimizerName: String) {
        let call = "training \(optimizerName) replicas"
        harness.run(call) {
            let data = Dataset.synthetic(count: 512, featureCount: 20, classes: 4, seed: 3)
            let model = try MLP(widths: [20, 33, 4], maxBatch: 16, seed: 5)
            let optimizer = makeOptimizer(optimizerName, count: model.arena.count, communicator: try world.duplicate())
            let sampler = try ShardedSampler(count: data.count, ranks: world.size, rank: world.rank, batchSize: 8, seed: 9)
            var features = [Float](repeating: 0, count: 8 * 20)
            var labels = [Int32](repeating: 0, count: 8)
            let before = try Evaluation.run(model: model, dataset: data, communicator: world)
            var identical = true
            for step in 0..<30 {
                let permutation = sampler.permutation(epoch: step / sampler.stepsPerEpoch)
                let rows = sampler.rows(epoch: 0, step: step % sampler.stepsPerEpoch, permutation: permutation)
                features.withUnsafeMutableBufferPointer { f in
                    labels.withUnsafeMutableBufferPointer { l in data.gather(rows: rows, features: f.baseAddress!, labels: l.baseAddress!) }
                }
                model.forward(inputs: features, labels: labels, batch: 8)
                model.backward(batch: 8)
                _ = try optimizer.step(parameters: model.arena.parameters, gradients: model.arena.gradients, learningRate: 0.01)
                let parameters = Array(model.arena.parameters)
                let highest = try world.allreduce(parameters, operation: .max)
                let lowest = try world.allreduce(parameters, operation: .min)
                identical = identical && highest == parameters && lowest == parameters
            }
            harness.expect(identical, call, "parameters differ across ranks")
            let after = try Evaluation.run(model: model, dataset: data, communicator: world)
            harness.expect(after.loss < before.loss, "\(call) loss falls", "\(before.loss) → \(after.loss)")
        }
    }

    /// The last rank's gradient holds a NaN: every rank must skip, leaving parameters untouched.
    func checkNonFiniteGradientSkipsEverywhere() {
        for name in ["dlion-mavo", "global-lion", "global-adamw"] {
            harness.run("training \(name) NaN skips everywhere") {
                let count = 1000
                let optimizer = makeOptimizer(name, count: count, communicator: try world.duplicate())
                var parameters = [Float](repeating: 1, count: count)
                var gradients = [Float](repeating: 0.5, count: count)
                if world.rank == world.size - 1 { gradients[777] = .nan }
                let applied = try parameters.withUnsafeMutableBufferPointer { x in
                    try gradients.withUnsafeMutableBufferPointer { g in try optimizer.step(parameters: x, gradients: g, learningRate: 0.1) }
                }
                harness.expect(!applied && parameters == [Float](repeating: 1, count: count), "training \(name) NaN skips everywhere")
            }
        }
    }
}
