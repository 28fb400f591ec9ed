import Collectives
import Training
#if canImport(Glibc)
import Glibc
#endif

/// One training run: set-up agreed by every rank, then the library's ``Trainer`` with rank 0's
/// reporter listening.
final class TrainingRun {
    let options: TrainCommand
    let world: Communicator

    init(options: TrainCommand, world: Communicator) {
        self.options = options
        self.world = world
    }

    func run() throws {
        try world.requireSameExecutable()
        try world.requireSameSettings(options.settingsEveryRankShares)
        let choice = options.optimizer
        if choice.isSingleProcess && world.size > 1 {
            throw TrainingError.invalidConfiguration("--optimizer \(choice.rawValue) runs on one rank; under mpirun use global-\(choice.rawValue) or dlion-mavo")
        }
        let threads = try Threads.shareNode(with: world, perRank: options.blasThreads)
        switch options.model {
        case .mlp, .vit: try runClassifier(threads: threads)
        case .gpt: try runGPT(threads: threads)
        }
    }

    /// The reporter on rank 0, nil elsewhere.
    private func makeReporter() throws -> Reporter? {
        world.rank == 0 ? try Reporter(metricsPath: options.metrics, progress: options.progress, appending: options.resume) : nil
    }

    /// Trains the MLP or the ViT on Fashion-MNIST (or the synthetic images).
    private func runClassifier(threads: Int) throws {
        // Set-up that can fail on one rank only is agreed on before any rank goes further.
        let (training, test, reporter) = try world.agreeOnSuccess("set-up") { () throws -> (Dataset, Dataset, Reporter?) in
            let (train, test) = try loadData()
            return (train, test, try makeReporter())
        }
        let source = options.synthetic ? "synthetic data" : "Fashion-MNIST"
        switch options.model {
        case .vit:
            let configuration = ViTConfiguration(imageHeight: FashionMNIST.imageHeight, imageWidth: FashionMNIST.imageWidth, patchSize: options.patchSize,
                                                 classes: training.classes, layers: options.layers, channels: options.channels, heads: options.heads)
            try trainClassifier(training: training, test: test, reporter: reporter, threads: threads,
                                describing: "\(source), ViT \(options.layers) layers × \(options.channels) wide, \(options.heads) heads, \(options.patchSize)×\(options.patchSize) patches (\(configuration.positions) per image)") {
                try ViT(configuration, maxBatch: $0, seed: options.seed)
            }
        default:
            let widths = [training.featureCount] + options.hiddenWidths + [training.classes]
            try trainClassifier(training: training, test: test, reporter: reporter, threads: threads,
                                describing: "\(source), MLP \(widths.map(String.init).joined(separator: "-"))") {
                let model = try MLP(widths: widths, activation: options.activation, maxBatch: $0, seed: options.seed)
                model.gradientBlock = options.gradientBlock > 0 ? options.gradientBlock : nil
                return model
            }
        }
    }

    /// Builds the classifier `makeModel` makes for a largest batch, and its batches, on every
    /// rank, then trains it.
    private func trainClassifier<M: Model>(training: Dataset, test: Dataset, reporter: Reporter?, threads: Int, describing what: String,
                                           makeModel: (Int) throws -> M) throws where M.Batch == LabelledBatch {
        // Evaluation batches of at least 128 rows, so that scoring the test split is quick.
        let maxBatch = max(options.batchSize, 128)
        let (model, batches) = try world.agreeOnSuccess("set-up") { () throws -> (M, ShardedBatches) in
            (try makeModel(maxBatch),
             try ShardedBatches(dataset: training, rank: world.rank, ranks: world.size, batchSize: options.batchSize, seed: options.seed))
        }
        try train(model: model, data: batches, evaluationData: EvaluationBatches(dataset: test, batchSize: maxBatch), reporter: reporter,
                  describing: what, threads: threads)
    }

    private func runGPT(threads: Int) throws {
        let (corpus, reporter) = try world.agreeOnSuccess("set-up") { () throws -> (TextCorpus, Reporter?) in
            (try TextCorpus.load(directory: options.dataDir ?? TextCorpus.defaultDirectory), try makeReporter())
        }
        let configuration = GPTConfiguration(vocabulary: corpus.vocabulary.count, context: options.context, layers: options.layers,
                                             channels: options.channels, heads: options.heads)
        let (model, windows) = try world.agreeOnSuccess("set-up") { () throws -> (GPT, TextWindows) in
            (try GPT(configuration, maxBatch: options.batchSize, seed: options.seed),
             try TextWindows(tokens: corpus.training, context: options.context, batchSize: options.batchSize, rank: world.rank, ranks: world.size, seed: options.seed))
        }
        try train(model: model, data: windows, evaluationData: TextEvaluationWindows(tokens: corpus.validation, context: options.context, batchSize: model.maxBatch),
                  reporter: reporter, describing: "\(corpus.training.count) characters of text (vocabulary \(corpus.vocabulary.count)), GPT \(options.layers) layers × \(options.channels) wide, \(options.heads) heads, context \(options.context)",
                  threads: threads)
        if let reporter, options.sampleLength > 0 {
            let prompt = Array(corpus.validation.prefix(min(16, options.context)))
            let sample = model.sample(prompt: prompt, length: options.sampleLength, temperature: options.temperature, seed: options.seed)
            reporter.say("sample (temperature \(options.temperature)), after the prompt “\(corpus.text(prompt))”:\n\(corpus.text(sample))")
        }
    }

    /// Builds the schedule and the optimizer for `data`, then trains `model` with the library's
    /// ``Trainer``, checkpointing and resuming as the flags say.
    private func train<M: Model>(model: M, data: any TrainingData<M.Batch>, evaluationData: any EvaluationData<M.Batch>,
                                 reporter: Reporter?, describing what: String, threads: Int) throws {
        let choice = options.optimizer
        let communicator = try world.duplicate()
        let (schedule, totalSteps, peak, optimizer, trace) = try world.agreeOnSuccess("set-up") {
            () throws -> (LearningRateSchedule, Int, Float, any Optimizer, TraceFile?) in
            let (epochSteps, overflow) = options.epochs.multipliedReportingOverflow(by: data.stepsPerEpoch)
            guard options.steps != nil || !overflow else {
                throw TrainingError.invalidConfiguration("--epochs \(options.epochs) × \(data.stepsPerEpoch) steps per epoch is more steps than can be counted; use fewer --epochs or --steps")
            }
            let totalSteps = options.steps ?? epochSteps
            let peak = options.learningRate ?? choice.defaultLearningRate
            let schedule: LearningRateSchedule = switch options.schedule {
            case .constant: .constant(peak)
            case .cosine: .cosine(peak: peak, warmupSteps: min(options.warmupSteps, totalSteps / 2), totalSteps: totalSteps, minimum: 0)
            }
            let optimizer = try OptimizerFactory(options: options, rank: world.rank)
                .make(count: model.arena.count, slots: model.arena.slots, communicator: communicator, schedule: schedule,
                      totalSteps: totalSteps, peak: peak, stepsPerEpoch: data.stepsPerEpoch)
            return (schedule, totalSteps, peak, optimizer, try options.trace.map { try TraceFile(path: $0, rank: world.rank) })
        }

        reporter?.say("dlion-train: \(optimizer.name) on \(what) (\(model.arena.count) parameters), \(world.size) rank(s) × batch \(options.batchSize), "
                      + "\(totalSteps) steps, peak lr \(peak), \(threads) BLAS thread(s) per rank"
                      + (getenv("OPENBLAS_THREAD_TIMEOUT").map { " (OPENBLAS_THREAD_TIMEOUT=\(String(cString: $0)))" } ?? ""))

        BLAS.timing = options.profile
        let trainer = Trainer(model: model, optimizer: optimizer, data: data, evaluationData: evaluationData, communicator: world,
                              plan: TrainingPlan(steps: totalSteps, schedule: schedule, evaluationInterval: options.evalInterval,
                                                 logInterval: options.logInterval,
                                                 stallTimeout: options.stallTimeout.map { $0 == 0 ? .off : .seconds($0) } ?? .adaptive,
                                                 checkpointInterval: options.checkpointEvery,
                                                 checkpointSeconds: 60 * options.checkpointMinutes, stopOnSignals: true))
        trainer.overlapsCommunication = options.overlap
        if let initial = options.initFrom {
            let file = try Checkpointer.loadParameters(from: initial, into: model.arena, communicator: world)
            reporter?.say("parameters from \(file); optimizer state starts afresh")
        }
        var position = TrainerPosition()
        if let directory = options.checkpointDir {
            let checkpointer = Checkpointer(directory: directory, keep: options.keepCheckpoints,
                                            configuration: options.checkpointConfiguration, communicator: world)
            trainer.checkpointer = checkpointer
            if options.resume {
                position = try checkpointer.restoreLatest(arena: model.arena, optimizer: optimizer)
                reporter?.say("resumed from \(checkpointer.path(step: position.step)) at step \(position.step) of \(totalSteps)")
            }
        }
        if let reporter {
            trainer.observers.append(RunObserver(reporter: reporter, profile: options.profile, tokensPerExample: options.model == .gpt ? options.context : nil,
                                                 synchronizationRule: (optimizer as? LocalAdamW)?.rule, dgc: optimizer as? DGC))
        }
        if let trace {
            trainer.timeline = trace.timeline
            communicator.timeline = trace.timeline
            world.timeline = trace.timeline
        }
        try trainer.run(from: position)
        if let trace {
            world.timeline = nil
            try trace.write(over: world)
            reporter?.say("timeline of every rank in \(trace.path) (open it in ui.perfetto.dev)")
        }
    }

    private func loadData() throws -> (Dataset, Dataset) {
        if options.synthetic {
            return (Dataset.synthetic(count: 20_000, seed: 1), Dataset.synthetic(count: 4_000, seed: 2))
        }
        let directory = options.dataDir ?? FashionMNIST.defaultDirectory
        return (try FashionMNIST.load(.train, directory: directory), try FashionMNIST.load(.test, directory: directory))
    }
}

/// Builds the optimizer the flags ask for.
struct OptimizerFactory {
    let options: TrainCommand
    let rank: Int

    func make(count: Int, slots: [TensorSlot], communicator: Communicator, schedule: LearningRateSchedule,
              totalSteps: Int, peak: Float, stepsPerEpoch: Int) throws -> any Optimizer {
        let lion = LionHyperparameters(beta1: options.beta1, beta2: options.beta2 ?? 0.99,
                                       weightDecay: options.weightDecay ?? options.optimizer.defaultWeightDecay)
        let adamw = AdamWHyperparameters(beta1: options.beta1, beta2: options.beta2 ?? 0.999,
                                         weightDecay: options.weightDecay ?? options.optimizer.defaultWeightDecay)
        switch options.optimizer {
        case .dlionMavo:
            return try DistributedLion(count: count, communicator: communicator, reduction: .majorityVote(options.tiePolicy.policy),
                                       zeroPolicy: options.zeroSign.policy, hyperparameters: lion, seed: options.seed,
                                       bucketLength: options.bucketLength, exchangeShape: options.exchange.shape)
        case .dlionAvg:
            return try DistributedLion(count: count, communicator: communicator, reduction: .average,
                                       zeroPolicy: options.zeroSign.policy, hyperparameters: lion, seed: options.seed,
                                       bucketLength: options.bucketLength, exchangeShape: options.exchange.shape)
        case .globalLion: return DataParallel(try Lion(count: count, hyperparameters: lion), communicator: communicator)
        case .globalAdamw: return DataParallel(try AdamW(count: count, hyperparameters: adamw), communicator: communicator)
        case .localAdamw:
            let alpha = options.qsrAlpha ?? 2.19 * peak
            let rule: SynchronizationRule = switch options.syncRule {
            case .constant: .constant(options.hBase)
            case .linear: .linear(base: options.hBase, alpha: alpha)
            case .qsr: .quadratic(base: options.hBase, alpha: alpha)
            }
            return try LocalAdamW(count: count, communicator: communicator, rule: rule, schedule: schedule, totalSteps: totalSteps,
                                  hyperparameters: adamw, averageMoments: options.averageMoments)
        case .terngrad:
            let tensors = slots.map { $0.offset ..< $0.offset + $0.count }
            let clip = options.terngradClip ?? 2.5
            let compressor = try TernGrad(tensors: tensors, seed: options.seed, rank: rank, clipSigmas: clip > 0 ? clip : nil,
                                          exchange: options.terngradExchange ?? .reduceScatter)
            return try CompressedGradientAdamW(count: count, communicator: communicator, compressor: compressor, hyperparameters: adamw)
        case .graddrop:
            let compressor = try GradDrop(count: count, ratio: options.topkRatio ?? options.optimizer.defaultTopKRatio)
            return try CompressedGradientAdamW(count: count, communicator: communicator, compressor: compressor, hyperparameters: adamw)
        case .dgc:
            let (warmUp, overflow) = 4.multipliedReportingOverflow(by: stepsPerEpoch)
            return try DGC(count: count, communicator: communicator, ratio: options.topkRatio ?? options.optimizer.defaultTopKRatio,
                           warmUpSteps: options.dgcWarmupSteps ?? (overflow ? Int.max : warmUp), momentum: options.beta1,
                           weightDecay: options.weightDecay ?? options.optimizer.defaultWeightDecay, clipNorm: options.dgcClipNorm)
        case .lion: return try Lion(count: count, hyperparameters: lion)
        case .adamw: return try AdamW(count: count, hyperparameters: adamw)
        }
    }
}
