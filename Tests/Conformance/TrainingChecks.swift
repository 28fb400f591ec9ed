import Collectives
import Training
#if canImport(Glibc)
import Glibc
#endif

/// Checks the distributed optimizers across ranks: replicas stay identical, and a NaN on one
/// rank makes every rank skip the step.
struct TrainingChecks {
    let harness: Harness
    var world: Communicator { harness.world }

    func runAll() {
        for name in ["dlion-mavo", "dlion-avg", "global-lion", "global-adamw", "terngrad", "graddrop", "dgc"] {
            checkReplicasStayIdentical(optimizerName: name)
        }
        checkLocalAdamWSynchronizes()
        checkLocalAdamWSynchronizes(skippedSteps: [5, 6, 38])
        checkLocalAdamWEvaluatesTheMeanOfTheReplicas()
        checkNonFiniteGradientSkipsEverywhere()
        checkDistributedLionArenaStepMatchesFlatStep()
        checkDistributedLionArenaStepSkipsNonFinite()
        for reduction in [SignReduction.majorityVote, .average] { checkOverlappedTrainingMatchesPlain(reduction) }
        checkOverlappedGPTStepMatchesPlain()
        checkTrainerStopsADivergingRunEverywhere(local: false)
        checkTrainerStopsADivergingRunEverywhere(local: true)
        checkASignalOnOneRankStopsEveryRankAfterTheSameStep()
    }

    func makeOptimizer(_ name: String, count: Int, communicator: Communicator) throws -> any DistributedOptimizer {
        switch name {
        case "dlion-mavo": return try DistributedLion(count: count, communicator: communicator, reduction: .majorityVote, seed: 1)
        case "dlion-avg": return try DistributedLion(count: count, communicator: communicator, reduction: .average, seed: 1)
        case "global-lion": return DataParallel(try Lion(count: count), communicator: communicator)
        case "terngrad":
            return try CompressedGradientAdamW(count: count, communicator: communicator,
                                               compressor: try TernGrad(tensors: [0..<count / 3, count / 3..<count], seed: 4, rank: world.rank))
        case "dgc": return try DGC(count: count, communicator: communicator, ratio: 0.05, warmUpSteps: 8, clipNorm: 1)
        case "graddrop":
            return try CompressedGradientAdamW(count: count, communicator: communicator, compressor: try GradDrop(count: count, ratio: 0.05))
        default: return DataParallel(try AdamW(count: count), communicator: communicator)
        }
    }

    /// After every step (the trainer reports each one), whether this rank's parameters are
    /// those of every other rank.
    final class ReplicaWatch: TrainingObserver {
        let arena: ParameterArena
        let world: Communicator
        var identical = true
        var steps = 0
        var failure: Error?

        init(arena: ParameterArena, world: Communicator) {
            self.arena = arena
            self.world = world
        }

        func observe(_ event: TrainingEvent) {
            guard case .step = event else { return }
            steps += 1
            do {
                identical = try identicalOnEveryRank(Array(arena.parameters), world: world) && identical
            } catch {
                failure = error
            }
        }
    }

    /// A small MLP trained by the library's ``Trainer`` on each rank's own shard of synthetic
    /// rows: parameters must match on every rank after every step, and the loss must fall.
    func checkReplicasStayIdentical(optimizerName: String) {
        let call = "training \(optimizerName) replicas"
        harness.run(call) {
            let data = Dataset.synthetic(count: 512, featureCount: 20, classes: 4, seed: 3)
            let model = try MLP(widths: [20, 33, 4], maxBatch: 16, seed: 5)
            let optimizer = try makeOptimizer(optimizerName, count: model.arena.count, communicator: try world.duplicate())
            let evaluation = EvaluationBatches(dataset: data, batchSize: model.maxBatch)
            let before = try Evaluation.run(model: model, data: evaluation, communicator: world)
            let trainer = Trainer(model: model, optimizer: optimizer,
                                  data: try ShardedBatches(dataset: data, rank: world.rank, ranks: world.size, batchSize: 8, seed: 9),
                                  evaluationData: evaluation, communicator: world,
                                  plan: TrainingPlan(steps: 30, schedule: .constant(0.01), logInterval: 1))
            let watch = ReplicaWatch(arena: model.arena, world: world)
            trainer.observers.append(watch)
            let after = try trainer.run().evaluation
            if let failure = watch.failure { throw failure }
            harness.expect(watch.identical && watch.steps == 30, call, "parameters differ across ranks (\(watch.steps) steps seen)")
            harness.expect(after.loss < before.loss, "\(call) loss falls", "\(before.loss) → \(after.loss)")
        }
    }

    /// Local AdamW: replicas match right after each synchronization and the rounds follow the
    /// rule, covering the run; no message travels between synchronizations. With
    /// `skippedSteps`, the last rank's gradient holds a NaN at those steps: that rank alone
    /// skips them, the rounds still count them and end, synchronized, on the last step, and
    /// each synchronization reports its round's skips.
    func checkLocalAdamWSynchronizes(skippedSteps: Set<Int> = []) {
        let label = skippedSteps.isEmpty ? "" : " with skipped steps \(skippedSteps.sorted())"
        harness.run("local-adamw synchronizes\(label)") {
            let count = 777
            let schedule = LearningRateSchedule.cosine(peak: 0.01, warmupSteps: 4, totalSteps: 40, minimum: 0)
            let optimizer = try LocalAdamW(count: count, communicator: try world.duplicate(),
                                           rule: .quadratic(base: 3, alpha: 0.03), schedule: schedule, totalSteps: 40)
            var parameters = [Float](repeating: 0.5, count: count)
            var matchedAfterEverySync = true
            var silentBetweenSynchronizations = true
            var skippedParameters: [Float]?
            for step in 0..<40 {
                var gradients = (0..<count).map { Float(($0 * 7 + world.rank * 13 + step) % 11) - 5 }
                let skipping = skippedSteps.contains(step) && world.rank == world.size - 1
                if skipping { gradients[count / 2] = .nan }
                let before = (parameters: parameters, bytes: optimizer.communicator.traffic.bytesSent)
                let applied = try optimizer.step(parameters: &parameters, gradients: &gradients, learningRate: schedule.rate(at: step))
                harness.expect(applied, "local-adamw steps report no skip on every rank\(label)", "step \(step)")
                let synchronized = optimizer.synchronizations.last?.step == step + 1
                if skipping && !synchronized && parameters != before.parameters { skippedParameters = parameters }
                silentBetweenSynchronizations = silentBetweenSynchronizations
                    && (synchronized || optimizer.communicator.traffic.bytesSent == before.bytes)
                if synchronized {
                    matchedAfterEverySync = try identicalOnEveryRank(parameters, world: world) && matchedAfterEverySync
                }
            }
            let periods = optimizer.synchronizations.map(\.period)
            harness.expect(matchedAfterEverySync, "local-adamw replicas match after each synchronization\(label)")
            harness.expect(silentBetweenSynchronizations, "local-adamw sends nothing between synchronizations\(label)")
            harness.expect(skippedParameters == nil, "local-adamw leaves a skipping rank's replica alone\(label)")
            harness.expect(periods.reduce(0, +) == 40 && periods.first == 3 && optimizer.synchronizations.last?.step == 40 && optimizer.replicasAgree,
                           "local-adamw rounds cover the run and end synchronized\(label)", "\(periods)")
            // Each round reports the skips that fell in it, and the longest run, counted in full,
            // that holds one of them.
            func runEnding(at step: Int) -> Int { (0...step).reversed().prefix(while: skippedSteps.contains).count }
            var expected: [(skipped: Int, longest: Int)] = []
            for (start, end) in zip([0] + optimizer.synchronizations.map(\.step), optimizer.synchronizations.map(\.step)) {
                let inRound = (start..<end).filter(skippedSteps.contains)
                expected.append((inRound.count, inRound.map(runEnding).max() ?? 0))
            }
            let reported = optimizer.synchronizations.map { (skipped: $0.skippedSteps, longest: $0.longestSkipRun) }
            harness.expect(reported.elementsEqual(expected, by: { $0 == $1 }), "local-adamw synchronizations report the round's skips\(label)",
                           "reported \(reported), expected \(expected)")
        }
    }

    /// At each evaluation, the mean of the ranks' replicas, scored on a second model: what
    /// the trainer must report mid-round under Local AdamW. Also whether this rank's
    /// parameters were its own replica again when the report came.
    final class ReplicaMeanScorer: TrainingObserver {
        let arena: ParameterArena
        let scorer: MLP
        let data: EvaluationBatches
        let world: Communicator
        var expected: [Evaluation] = []
        var reported: [Evaluation] = []
        var replicasDifferedAtAnEvaluation = false
        var failure: Error?

        init(arena: ParameterArena, scorer: MLP, data: EvaluationBatches, world: Communicator) {
            (self.arena, self.scorer, self.data, self.world) = (arena, scorer, data, world)
        }

        func observe(_ event: TrainingEvent) {
            guard case .evaluation(let report) = event else { return }
            do {
                let replica = Array(arena.parameters)
                let agree = try identicalOnEveryRank(replica, world: world)
                replicasDifferedAtAnEvaluation = replicasDifferedAtAnEvaluation || !agree
                // Synchronized replicas are the model; otherwise their mean, rounded as the trainer rounds it.
                let model = agree ? replica
                    : try world.allreduce(replica, operation: .sum).map { $0 * (1 / Float(world.size)) }
                _ = scorer.arena.parameters.update(fromContentsOf: model)
                expected.append(try Evaluation.run(model: scorer, data: data, communicator: world))
                reported.append(report.evaluation)
            } catch {
                failure = error
            }
        }
    }

    /// Local AdamW evaluated mid-round: each evaluation scores the mean of the replicas (an
    /// independent computation of it on a second model), and evaluating does not change the
    /// training: the final parameters are those of the same run without evaluations.
    func checkLocalAdamWEvaluatesTheMeanOfTheReplicas() {
        let call = "local-adamw evaluates the mean of the replicas"
        harness.run(call) {
            let data = Dataset.synthetic(count: 512, featureCount: 20, classes: 4, seed: 3)
            let evaluation = EvaluationBatches(dataset: data, batchSize: 16)
            func train(evaluating: Bool) throws -> (parameters: [Float], scorer: ReplicaMeanScorer) {
                let model = try MLP(widths: [20, 33, 4], maxBatch: 16, seed: 5)
                let optimizer = try LocalAdamW(count: model.arena.count, communicator: try world.duplicate(), rule: .constant(7),
                                               schedule: .constant(0.01), totalSteps: 30)
                let trainer = Trainer(model: model, optimizer: optimizer,
                                      data: try ShardedBatches(dataset: data, rank: world.rank, ranks: world.size, batchSize: 4, seed: 9),
                                      evaluationData: evaluating ? evaluation : nil, communicator: world,
                                      plan: TrainingPlan(steps: 30, schedule: .constant(0.01), evaluationInterval: 5))
                let scorer = ReplicaMeanScorer(arena: model.arena, scorer: try MLP(widths: [20, 33, 4], maxBatch: 16, seed: 6),
                                               data: evaluation, world: world)
                trainer.observers.append(scorer)
                try trainer.run()
                if let failure = scorer.failure { throw failure }
                return (Array(model.arena.parameters), scorer)
            }
            let evaluated = try train(evaluating: true)
            let unevaluated = try train(evaluating: false)
            let scorer = evaluated.scorer
            harness.expect(scorer.reported.count == 6 && scorer.reported == scorer.expected, call,
                           "reported \(scorer.reported.map(\.loss)), the replicas' mean scores \(scorer.expected.map(\.loss))")
            harness.expect(scorer.replicasDifferedAtAnEvaluation || world.size == 1, "\(call) mid-round, replicas restored")
            harness.expect(evaluated.parameters == unevaluated.parameters, "\(call) without changing the training")
        }
    }

    /// The last rank's gradient holds a NaN: every rank must skip, leaving parameters untouched.
    func checkNonFiniteGradientSkipsEverywhere() {
        for name in ["dlion-mavo", "global-lion", "global-adamw", "terngrad", "graddrop", "dgc"] {
            harness.run("training \(name) NaN skips everywhere") {
                let count = 1000
                let optimizer = try makeOptimizer(name, count: count, communicator: try world.duplicate())
                var parameters = [Float](repeating: 1, count: count)
                var gradients = [Float](repeating: 0.5, count: count)
                if world.rank == world.size - 1 { gradients[777] = .nan }
                let applied = try optimizer.step(parameters: &parameters, gradients: &gradients, learningRate: 0.1)
                harness.expect(!applied && parameters == [Float](repeating: 1, count: count), "training \(name) NaN skips everywhere")
            }
        }
    }

    /// Distributed Lion's arena step (new momentum over the gradients, then a storage swap)
    /// gives bit for bit the parameters and momentum of its flat step, step after step, and
    /// really trades the storages.
    func checkDistributedLionArenaStepMatchesFlatStep() {
        harness.run("dlion arena step matches flat step") {
            let count = 64 * world.size * 5 + 37
            let arena = try ParameterArena(tensors: [("weight", [count - 37]), ("bias", [37])])
            let viaArena = try DistributedLion(count: count, communicator: try world.duplicate(), seed: 1)
            let flat = try DistributedLion(count: count, communicator: try world.duplicate(), seed: 1)
            var parameters = [Float](repeating: 0, count: count)
            for index in 0..<count { arena.parameters[index] = Float(index % 13) / 13 - 0.5 }
            _ = parameters.withUnsafeMutableBufferPointer { $0.update(fromContentsOf: arena.parameters) }
            var identical = true
            for step in 0..<6 {
                var gradients = (0..<count).map { Float(($0 * 7 + world.rank * 5 + step * 3) % 17) / 17 - 0.45 }
                _ = arena.withGradients { $0.update(fromContentsOf: gradients) }
                let (oldMomentum, oldGradients) = (viaArena.momentum.withUnsafeBufferPointer(\.baseAddress),
                                                   arena.withGradients { UnsafePointer($0.baseAddress) })
                let appliedViaArena = try viaArena.step(arena, learningRate: 0.01)
                // The storages traded places: no copy was made.
                identical = identical && arena.withGradients { UnsafePointer($0.baseAddress) } == oldMomentum
                    && viaArena.momentum.withUnsafeBufferPointer(\.baseAddress) == oldGradients
                let appliedFlat = try flat.step(parameters: &parameters, gradients: &gradients, learningRate: 0.01)
                identical = identical && appliedViaArena && appliedFlat && Array(arena.parameters) == parameters
                    && viaArena.momentum.values == flat.momentum.values
            }
            harness.expect(identical, "dlion arena step matches flat step", size: count)
        }
    }

    /// The trainer with Distributed Lion's exchange overlapped with backward (in buckets far
    /// smaller than a layer, so that several are in flight) ends with the parameters and
    /// momentum of the run without overlap, bit for bit, and the same rounds.
    func checkOverlappedTrainingMatchesPlain(_ reduction: SignReduction) {
        let call = "training \(reduction) overlapped with backward matches the plain run"
        harness.run(call) {
            let data = Dataset.synthetic(count: 512, featureCount: 20, classes: 4, seed: 3)
            func train(overlapped: Bool) throws -> (parameters: [Float], momentum: [Float], rounds: Int) {
                let model = try MLP(widths: [20, 150, 40, 4], maxBatch: 16, seed: 5)
                let optimizer = try DistributedLion(count: model.arena.count, communicator: try world.duplicate(), reduction: reduction,
                                                    seed: 1, bucketLength: 64 * world.size * 3)
                let trainer = Trainer(model: model, optimizer: optimizer,
                                      data: try ShardedBatches(dataset: data, rank: world.rank, ranks: world.size, batchSize: 8, seed: 9),
                                      evaluationData: nil, communicator: world,
                                      plan: TrainingPlan(steps: 25, schedule: .cosine(peak: 0.01, warmupSteps: 3, totalSteps: 25, minimum: 0)))
                trainer.overlapsCommunication = overlapped
                try trainer.run()
                return (Array(model.arena.parameters), optimizer.momentum.values, optimizer.communicationRounds)
            }
            let plain = try train(overlapped: false), overlapped = try train(overlapped: true)
            harness.expect(overlapped.parameters.map(\.bitPattern) == plain.parameters.map(\.bitPattern)
                           && overlapped.momentum.map(\.bitPattern) == plain.momentum.map(\.bitPattern)
                           && overlapped.rounds == 25 && plain.rounds == 25, call,
                           "rounds \(overlapped.rounds) vs \(plain.rounds)")
        }
    }

    /// A GPT's Distributed Lion step with the exchange overlapped with backward (block by
    /// block, in buckets of a few words per rank) gives the plain step's parameters and
    /// momentum, bit for bit, step after step.
    func checkOverlappedGPTStepMatchesPlain() {
        let call = "dlion GPT step overlapped with backward matches the plain step"
        harness.run(call) {
            let configuration = GPTConfiguration(vocabulary: 7, context: 4, layers: 2, channels: 8, heads: 2)
            let plainModel = try GPT(configuration, maxBatch: 2, seed: 11), overlappedModel = try GPT(configuration, maxBatch: 2, seed: 11)
            let count = plainModel.arena.count
            let plain = try DistributedLion(count: count, communicator: try world.duplicate(), seed: 1, bucketLength: 64 * world.size * 2)
            let overlapped = try DistributedLion(count: count, communicator: try world.duplicate(), seed: 1, bucketLength: 64 * world.size * 2)
            var identical = true
            for step in 0..<5 {
                let batch = TokenBatch.synthetic(windows: 2, positions: 4, vocabulary: 7, seed: UInt64(100 * step + world.rank))
                _ = plainModel.forward(batch)
                plainModel.backward(batch)
                let plainApplied = try plain.step(plainModel.arena, learningRate: 0.01)
                _ = overlappedModel.forward(batch)
                let overlappedApplied = try overlapped.step(overlappedModel.arena, learningRate: 0.01) { ready in
                    try overlappedModel.backward(batch, gradientsReady: ready)
                }
                identical = identical && plainApplied && overlappedApplied
                    && Array(plainModel.arena.parameters).map(\.bitPattern) == Array(overlappedModel.arena.parameters).map(\.bitPattern)
                    && plain.momentum.values.map(\.bitPattern) == overlapped.momentum.values.map(\.bitPattern)
            }
            harness.expect(identical, call)
        }
    }

    /// A NaN or an infinity in the last rank's gradients: every rank's arena step returns
    /// false and leaves parameters, momentum and the arena's storage as they were.
    func checkDistributedLionArenaStepSkipsNonFinite() {
        for bad in [Float.nan, .infinity] {
            let call = "dlion arena step skips \(bad) everywhere"
            harness.run(call) {
                let count = 3000
                let arena = try ParameterArena(tensors: [("weight", [count])])
                let optimizer = try DistributedLion(count: count, communicator: try world.duplicate(), seed: 1)
                arena.parameters.update(repeating: 1)
                arena.withGradients { $0.update(repeating: 0.5) }
                _ = try optimizer.step(arena, learningRate: 0.1)  // a momentum that is not zero
                let storage = arena.withGradients { $0.baseAddress }
                let (parameters, momentum) = (Array(arena.parameters), optimizer.momentum.values)
                arena.withGradients { gradients in
                    gradients.update(repeating: -0.5)
                    if world.rank == world.size - 1 { gradients[2999] = bad }
                }
                let applied = try optimizer.step(arena, learningRate: 0.1)
                harness.expect(!applied && Array(arena.parameters) == parameters && optimizer.momentum.values == momentum
                               && arena.withGradients { $0.baseAddress } == storage, call)
            }
        }
    }

    /// The trainer's skip policy: a model whose gradient is NaN on the last rank only makes
    /// every rank skip every step, hear each skip, and stop with the same error after 20.
    /// Under Local AdamW (H = 7) the last rank skips alone and every rank stops at the first
    /// synchronization after the 20th, step 21, having heard no per-step skip.
    func checkTrainerStopsADivergingRunEverywhere(local: Bool) {
        final class PoisonedModel: Model {
            let arena: ParameterArena
            let poisoned: Bool
            init(poisoned: Bool) throws {
                arena = try ParameterArena(tensors: [("weight", [100])])
                self.poisoned = poisoned
            }
            func forward(_ batch: LabelledBatch) -> BatchResult { BatchResult(lossSum: 1, correct: 0, count: batch.count) }
            func backward(_ batch: LabelledBatch) {
                arena.zeroGradients()
                if poisoned { arena.withGradients { $0[42] = .nan } }
            }
        }
        final class SkipCounter: TrainingObserver {
            var skipped: [Int] = []
            func observe(_ event: TrainingEvent) { if case .skipped(let step) = event { skipped.append(step) } }
        }
        let call = "trainer stops a diverging run on every rank" + (local ? " under local-adamw" : "")
        harness.run(call) {
            let model = try PoisonedModel(poisoned: world.rank == world.size - 1)
            let data = Dataset.synthetic(count: 64 * world.size, featureCount: 3, classes: 2, seed: 1)
            let optimizer: any Optimizer = local
                ? try LocalAdamW(count: 100, communicator: try world.duplicate(), rule: .constant(7), schedule: .constant(0.1), totalSteps: 100)
                : try DistributedLion(count: 100, communicator: try world.duplicate())
            let trainer = Trainer(model: model, optimizer: optimizer,
                                  data: try ShardedBatches(dataset: data, rank: world.rank, ranks: world.size, batchSize: 2, seed: 1),
                                  evaluationData: nil, communicator: world, plan: TrainingPlan(steps: 100, schedule: .constant(0.1)))
            let counter = SkipCounter()
            trainer.observers.append(counter)
            var thrown: TrainingError?
            do { try trainer.run() } catch let error as TrainingError { thrown = error }
            let expected = local ? (TrainingError.diverged(step: 21, skippedInARow: 21), [Int]())
                : (TrainingError.diverged(step: 20, skippedInARow: 20), Array(1...20))
            harness.expect(thrown == expected.0 && counter.skipped == expected.1
                           && Array(model.arena.parameters) == [Float](repeating: 0, count: 100),
                           call, "threw \(String(describing: thrown)), skips \(counter.skipped)")
        }
    }

    /// SIGUSR1 raised on the last rank only, at its tenth step: every rank stops after the same
    /// step, soon after, with the signal named.
    func checkASignalOnOneRankStopsEveryRankAfterTheSameStep() {
        final class SignalAtStep: TrainingObserver {
            let raises: Bool
            init(raises: Bool) { self.raises = raises }
            func observe(_ event: TrainingEvent) {
                if raises, case .step(let report) = event, report.step == 10 { raise(SIGUSR1) }
            }
        }
        let call = "a signal on one rank stops every rank after the same step"
        harness.run(call) {
            let data = Dataset.synthetic(count: 64 * world.size, featureCount: 20, classes: 4, seed: 3)
            let model = try MLP(widths: [20, 8, 4], maxBatch: 4, seed: 5)
            let trainer = Trainer(model: model, optimizer: try DistributedLion(count: model.arena.count, communicator: try world.duplicate()),
                                  data: try ShardedBatches(dataset: data, rank: world.rank, ranks: world.size, batchSize: 4, seed: 1),
                                  evaluationData: nil, communicator: world,
                                  plan: TrainingPlan(steps: 100_000, schedule: .constant(0.01), logInterval: 10, stopOnSignals: true))
            trainer.observers.append(SignalAtStep(raises: world.rank == world.size - 1))
            var stoppedAfter = -1
            do { try trainer.run() } catch TrainingError.stopped(let step, 100_000, SIGUSR1, nil) { stoppedAfter = step }
            let lowest = try world.allreduce([Int64(stoppedAfter)], operation: .min)[0]
            let highest = try world.allreduce([Int64(stoppedAfter)], operation: .max)[0]
            harness.expect(lowest == highest && lowest == Int64(stoppedAfter) && stoppedAfter >= 10 && stoppedAfter <= 20, call,
                           "stopped after step \(stoppedAfter); across ranks \(lowest)...\(highest)")
        }
    }
}
