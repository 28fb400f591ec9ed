import Collectives
import Training
#if canImport(Glibc)
import Glibc
#endif

/// One training run: set-up agreed by every rank, the loop, evaluations and the summary.
final class TrainingRun {
    let options: TrainCommand
    let world: Communicator

    init(options: TrainCommand, world: Communicator) {
        self.options = options
        self.world = world
    }

    func run() throws {
        let choice = options.optimizer
        if choice.isSingleProcess && world.size > 1 {
            throw TrainingError.invalidConfiguration("--optimizer \(choice.rawValue) runs on one rank; under mpirun use global-\(choice.rawValue) or dlion-mavo")
        }
        let threads = options.blasThreads ?? BLAS.threadsPerRank(cores: sysconf(Int32(_SC_NPROCESSORS_ONLN)), ranksOnNode: ranksOnThisNode())
        BLAS.setThreads(threads)
        Parallel.threads = threads

        // Set-up that can fail on one rank only is agreed on before any rank goes further.
        var setupError: Error?
        var data: (train: Dataset, test: Dataset)?
        var reporter: Reporter?
        do {
            data = try loadData()
            if world.rank == 0 { reporter = try Reporter(metricsPath: options.metrics, progress: options.progress) }
        } catch {
            setupError = error
        }
        let failedRanks = try world.allreduce([setupError == nil ? Int32(0) : 1], operation: .sum)[0]
        if let setupError { throw setupError }
        if failedRanks > 0 { throw TrainingError.invalidConfiguration("set-up failed on \(failedRanks) other rank(s); see their messages") }
        let (train, test) = data!

        let widths = [train.featureCount] + options.hiddenWidths + [train.classes]
        let model = try MLP(widths: widths, activation: Activation(rawValue: options.activation)!, maxBatch: max(options.batchSize, 256),
                            seed: options.seed, optimizerStateCopies: choice.isLion ? 1 : 2)
        let communicator = try world.duplicate()
        let sampler = try ShardedSampler(count: train.count, ranks: world.size, rank: world.rank, batchSize: options.batchSize, seed: options.seed)
        let totalSteps = options.steps ?? options.epochs * sampler.stepsPerEpoch
        let peak = options.learningRate ?? choice.defaultLearningRate
        let schedule: LearningRateSchedule = options.schedule == "constant"
            ? .constant(peak) : .cosine(peak: peak, warmupSteps: min(options.warmupSteps, totalSteps / 2), totalSteps: totalSteps, minimum: 0)
        let optimizer = try makeOptimizer(model: model, communicator: communicator, schedule: schedule,
                                          totalSteps: totalSteps, peak: peak, stepsPerEpoch: sampler.stepsPerEpoch)

        reporter?.say("dlion-train: \(optimizer.name) on \(options.synthetic ? "synthetic data" : "Fashion-MNIST"), \(world.size) rank(s) × batch \(options.batchSize), "
                      + "MLP \(widths.map(String.init).joined(separator: "-")) (\(model.arena.count) parameters), \(totalSteps) steps, peak lr \(peak), \(threads) BLAS thread(s) per rank"
                      + (getenv("OPENBLAS_THREAD_TIMEOUT").map { " (OPENBLAS_THREAD_TIMEOUT=\(String(cString: $0)))" } ?? ""))

        let loop = TrainingLoop(model: model, optimizer: optimizer, communicator: communicator, sampler: sampler, train: train, test: test,
                                schedule: schedule, totalSteps: totalSteps, options: options, reporter: reporter, world: world)
        try loop.run()
    }

    private func makeOptimizer(model: MLP, communicator: Communicator, schedule: LearningRateSchedule,
                               totalSteps: Int, peak: Float, stepsPerEpoch: Int) throws -> Optimizer {
        let count = model.arena.count
        let lion = LionHyperparameters(beta1: options.beta1, beta2: options.beta2 ?? 0.99,
                                       weightDecay: options.weightDecay ?? options.optimizer.defaultWeightDecay)
        let adamw = AdamWHyperparameters(beta1: options.beta1, beta2: options.beta2 ?? 0.999,
                                         weightDecay: options.weightDecay ?? options.optimizer.defaultWeightDecay)
        switch options.optimizer {
        case .dlionMavo: return DistributedLion(count: count, communicator: communicator, reduction: .majorityVote, hyperparameters: lion, seed: options.seed)
        case .dlionAvg: return DistributedLion(count: count, communicator: communicator, reduction: .average, hyperparameters: lion, seed: options.seed)
        case .globalLion: return DataParallel(Lion(count: count, hyperparameters: lion), communicator: communicator)
        case .globalAdamw: return DataParallel(AdamW(count: count, hyperparameters: adamw), communicator: communicator)
        case .localAdamw:
            let alpha = options.qsrAlpha ?? 2.19 * peak
            let rule: SynchronizationRule = switch options.syncRule {
            case "constant": .constant(options.hBase)
            case "linear": .linear(base: options.hBase, alpha: alpha)
            default: .quadratic(base: options.hBase, alpha: alpha)
            }
            return try LocalAdamW(count: count, communicator: communicator, rule: rule, schedule: schedule, totalSteps: totalSteps,
                                  hyperparameters: adamw, averageMoments: options.averageMoments)
        case .terngrad:
            let tensors = model.arena.slots.map { $0.offset ..< $0.offset + $0.count }
            return CompressedGradientAdamW(count: count, communicator: communicator,
                                           compressor: TernGrad(tensors: tensors, seed: options.seed, rank: world.rank), hyperparameters: adamw)
        case .dgc:
            let compressor = try DGC(count: count, ratio: options.topkRatio, warmupSteps: options.dgcWarmupSteps ?? stepsPerEpoch)
            return CompressedGradientAdamW(count: count, communicator: communicator, compressor: compressor, hyperparameters: adamw)
        case .lion: return Lion(count: count, hyperparameters: lion)
        case .adamw: return AdamW(count: count, hyperparameters: adamw)
        }
    }

    private func loadData() throws -> (Dataset, Dataset) {
        if options.synthetic {
            return (Dataset.synthetic(count: 20_000, seed: 1), Dataset.synthetic(count: 4_000, seed: 2))
        }
        return (try FashionMNIST.load(.train, directory: options.dataDir), try FashionMNIST.load(.test, directory: options.dataDir))
    }

    /// Ranks sharing this node: Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`, else 1.
    private func ranksOnThisNode() -> Int {
        guard let value = getenv("OMPI_COMM_WORLD_LOCAL_SIZE") else { return 1 }
        return Int(String(cString: value)) ?? 1
    }
}
