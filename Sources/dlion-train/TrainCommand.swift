import ArgumentParser
import Collectives
import Training

/// The optimizers `dlion-train` can run.
enum OptimizerChoice: String, ExpressibleByArgument, CaseIterable {
    case dlionMavo = "dlion-mavo"
    case dlionAvg = "dlion-avg"
    case globalLion = "global-lion"
    case globalAdamw = "global-adamw"
    case localAdamw = "local-adamw"
    case terngrad
    case graddrop
    case dgc
    case lion
    case adamw

    /// The default peak learning rate: Lion wants 3–10× less than AdamW; DGC is momentum SGD.
    var defaultLearningRate: Float {
        switch self {
        case .dlionMavo, .dlionAvg, .globalLion, .lion: return 3e-4
        case .globalAdamw, .adamw, .localAdamw, .terngrad, .graddrop: return 1e-3
        case .dgc: return 0.1
        }
    }

    /// The default weight decay: Lion wants 3–10× more than AdamW; DGC's momentum SGD takes
    /// the paper's 1e-4 (at 100× AdamW's learning rate, the same ηλ).
    var defaultWeightDecay: Float {
        switch self {
        case .dlionMavo, .dlionAvg, .globalLion, .lion: return 0.1
        case .globalAdamw, .adamw, .localAdamw, .terngrad, .graddrop: return 0.01
        case .dgc: return 1e-4
        }
    }

    /// The default fraction of coordinates a sparse method sends each step: DGC's 0.1 %,
    /// gradient dropping's 1 % (its paper drops 99 %).
    var defaultTopKRatio: Float { self == .graddrop ? 0.01 : 0.001 }

    var isSingleProcess: Bool { self == .lion || self == .adamw }
}

extension TernGrad.Exchange: ExpressibleByArgument {}

/// Local AdamW's rule for the length of a round.
enum SyncRuleChoice: String, ExpressibleByArgument, CaseIterable {
    case qsr, linear, constant
}

/// How Distributed Lion's majority vote resolves a tie (``TiePolicy``).
enum TiePolicyChoice: String, ExpressibleByArgument, CaseIterable {
    /// A seeded fair coin; one bit back.
    case random
    /// sign(0) = 0, as in the paper; a second bit plane back at even rank counts.
    case zero

    var policy: TiePolicy { self == .random ? .randomTieBreak : .zero }
}

/// What a coordinate with no sign (an exact zero) votes in Distributed Lion (``ZeroSignPolicy``).
enum ZeroSignChoice: String, ExpressibleByArgument, CaseIterable {
    /// A seeded fair coin: unbiased.
    case random
    /// +1, as DeepSpeed's 1-bit compression and signSGD do.
    case positive

    var policy: ZeroSignPolicy { self == .random ? .random : .positive }
}

/// How Distributed Lion's votes travel between nodes (``ExchangeShape``).
enum ExchangeChoice: String, ExpressibleByArgument, CaseIterable {
    /// Every rank with every rank.
    case flat
    /// The ranks of a node count their votes together first (flat on one node, or with one rank per node).
    case nodeAware = "node-aware"

    var shape: ExchangeShape { self == .flat ? .flat : .nodeAware() }
}

/// The learning-rate schedules.
enum ScheduleChoice: String, ExpressibleByArgument, CaseIterable {
    case cosine, constant
}

/// The models `dlion-train` trains.
enum ModelChoice: String, ExpressibleByArgument, CaseIterable {
    /// A multilayer perceptron on Fashion-MNIST.
    case mlp
    /// A character-level GPT on plain text.
    case gpt
    /// A Vision Transformer on Fashion-MNIST.
    case vit

    /// Rows per batch on each rank when `--batch-size` is not given: the GPT takes smaller
    /// batches, so that its default run makes more steps in about five minutes at 16 ranks.
    var defaultBatchSize: Int { self == .gpt ? 8 : 32 }
}

/// How rank 0 shows progress.
enum ProgressChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, line, plain
}

extension Activation: ExpressibleByArgument {}

/// `dlion-train`: trains an MLP or a ViT on Fashion-MNIST, or a GPT on text, with Distributed Lion or a baseline.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlion-train",
        abstract: "Data-parallel training of an MLP or a ViT on Fashion-MNIST, or a character-level GPT on text, with Distributed Lion and its baselines.",
        discussion: """
            Run under mpirun; every rank trains on its own shard of each epoch's shuffle:
              ci/mpirun -np 16 .build/release/dlion-train
            Rank 0 shows progress and a summary, including the bytes each rank sent and what fp32 \
            gradient allreduce would have sent for the same steps. Non-finite gradients on any rank \
            make every rank skip that step (counted in the summary); 20 skipped in a row stop the run. \
            Under local-adamw a rank skips its own step alone, and the round's synchronization counts it.
            """)

    @Option(help: "Optimizer: \(OptimizerChoice.allCases.map(\.rawValue).joined(separator: ", ")). lion and adamw run on one rank only.")
    var optimizer: OptimizerChoice = .dlionMavo

    @Option(help: "Model: mlp or vit (Fashion-MNIST classifiers: a multilayer perceptron, a Vision Transformer) or gpt (character-level language model on --data-dir's text, Debian's fortunes by default).")
    var model: ModelChoice = .mlp

    @Option(help: "GPT and ViT: transformer blocks.")
    var layers = 2

    @Option(help: "GPT and ViT: width of the residual stream (a multiple of --heads).")
    var channels = 64

    @Option(help: "GPT and ViT: attention heads.")
    var heads = 4

    @Option(help: "GPT: tokens per window (the model's context).")
    var context = 64

    @Option(help: "ViT: the side of the square patches, a divisor of the 28×28 images (4: 49 patches per image).")
    var patchSize = 4

    @Option(help: "GPT: characters of text rank 0 generates at the end.")
    var sampleLength = 200

    @Option(help: "GPT: sampling temperature (0: always the most likely character).")
    var temperature: Float = 0.8

    @Option(help: "Hidden layer widths, comma-separated.")
    var hidden = "1024,1024"

    @Option(help: "Activation between layers: relu or gelu.")
    var activation: Activation = .relu

    @Option(help: "Epochs over the training set.")
    var epochs = 10

    @Option(help: "Stop after this many steps (overrides --epochs when given).")
    var steps: Int?

    @Option(name: .customLong("batch-size"), help: "Rows (images, text windows) per batch on each rank; the global batch is this × ranks (default 32, 8 for --model gpt).")
    var batchSizeFlag: Int?

    /// Rows per batch on each rank: `--batch-size`, or the model's default.
    var batchSize: Int { batchSizeFlag ?? model.defaultBatchSize }

    @Option(name: .customLong("lr"), help: "Peak learning rate (default 3e-4 for the Lion family, 1e-3 for AdamW).")
    var learningRate: Float?

    @Option(help: "Decoupled weight decay λ (default 0.1 for the Lion family, 0.01 for AdamW).")
    var weightDecay: Float?

    @Option(help: "β1 of Lion and AdamW, and DGC's momentum μ (default 0.9).")
    var beta1: Float = 0.9

    @Option(help: "β2 (default 0.99 for the Lion family, 0.999 for AdamW).")
    var beta2: Float?

    @Option(help: "dlion-mavo: how a tied vote resolves at even rank counts: random (a seeded coin, one bit back) or zero (the paper's sign(0) = 0, two bits back).")
    var tiePolicy: TiePolicyChoice = .random

    @Option(help: "dlion-mavo, dlion-avg: what an exact zero votes: random (a seeded coin, unbiased) or positive (+1).")
    var zeroSign: ZeroSignChoice = .random

    @Option(help: "Local AdamW's synchronization rule: qsr (H = max(H_base, ⌊(α/η)²⌋)), linear (γ = 1: ⌊α/η⌋), or constant (H = H_base).")
    var syncRule: SyncRuleChoice = .qsr

    @Option(help: "Local AdamW's H_base: the period during warm-up and the least period (the period itself for --sync-rule constant).")
    var hBase = 4

    @Option(help: "Local AdamW's α (default 2.19 × the peak learning rate: the paper's ViT-B ratio 0.0175/0.008).")
    var qsrAlpha: Float?

    @Flag(help: "Local AdamW: average the moments m and v at synchronizations too (default: they stay local).")
    var averageMoments = false

    @Option(help: "DGC and GradDrop: the fraction of coordinates sent each step (DGC: once warmed up), in (0, 1]. Default: 0.001 for DGC, 0.01 for GradDrop.")
    var topkRatio: Float?

    @Option(help: "DGC: the steps of the four warm-up stages, in which the sent fraction falls 25 %, 6.25 %, 1.56 %, 0.39 %, then --topk-ratio (default: four epochs, the paper's).")
    var dgcWarmupSteps: Int?

    @Option(help: "DGC: the global L2 norm of the local gradient clipping; each rank clips its gradient to this / √N. Default: none.")
    var dgcClipNorm: Float?

    @Option(help: "TernGrad: how the 2-bit codes travel: reduce-scatter (their sum, in the sign allreduce's shape: (N−1)/N·(2 + ⌈log2(2N+1)⌉) bits a parameter) or allgather (every rank's codes to every rank: (N−1)·2 bits). Default: reduce-scatter.")
    var terngradExchange: TernGrad.Exchange?

    @Option(help: "TernGrad: clip each tensor's gradient to ± this many of its standard deviations before ternarizing; 0 turns clipping off. Default: the paper's 2.5.")
    var terngradClip: Float?

    @Option(help: "Linear warm-up steps before the cosine decay.")
    var warmupSteps = 100

    @Option(help: "Learning-rate schedule: cosine (with warm-up) or constant.")
    var schedule: ScheduleChoice = .cosine

    @Option(help: "Seed for initialization, shuffling and coin flips (the same on every rank).")
    var seed: UInt64 = 0

    @Option(help: "Directory holding the Fashion-MNIST *-ubyte.gz files (mlp, vit; default \(FashionMNIST.defaultDirectory)) or plain text files (gpt; default \(TextCorpus.defaultDirectory)).")
    var dataDir: String?

    @Flag(help: "Train on a synthetic dataset (Gaussian clusters) instead of Fashion-MNIST.")
    var synthetic = false

    @Option(help: "Evaluate on the test split every N steps (0: at the end of each epoch).")
    var evalInterval = 0

    @Option(help: "Log training loss every N steps.")
    var logInterval = 50

    @Option(help: "Write JSON lines (steps, evaluations, a final summary) to this file (rank 0).")
    var metrics: String?

    @Flag(inversion: .prefixedNo, help: "Distributed Lion: send each bucket of votes as soon as backward has produced its gradients, instead of after the whole backward pass (the same parameters either way, bit for bit).")
    var overlap = true

    @Option(help: "Distributed Lion: how votes travel between nodes: node-aware (the ranks of a node count their votes together, then exchange the counts with the other nodes: about half the bytes off each node at 4 ranks a node; flat on one node or with one rank per node) or flat (every rank with every rank). The same parameters either way, bit for bit.")
    var exchange: ExchangeChoice = .nodeAware

    @Option(help: "Distributed Lion with --overlap: parameters per bucket, each sent as soon as backward has produced it (at least 64). Fewer, larger buckets cost fewer collective calls; smaller ones start sending sooner.")
    var bucketLength = 1 << 20

    @Option(help: "The MLP with --overlap: compute each layer's weight gradient in blocks of about this many parameters, reporting each block to the exchange as it is done, so that a large layer starts sending before it is finished (0: whole layers, the default). The same gradients up to float rounding.")
    var gradientBlock = 0

    @Flag(help: "Time GEMM, the rest of forward/backward, optimizer and communication separately.")
    var profile = false

    @Option(help: "Write every rank's timeline of the run (data, forward, backward, optimizer step with its pack, exchange, vote and unpack, evaluations, checkpoints) to this file as Chrome trace-event JSON, one process per rank, for ui.perfetto.dev or chrome://tracing; rank 0 writes it when the run finishes.")
    var trace: String?

    @Option(help: "Progress display: line (redrawn in place), plain (one line per log), or auto (DLION_PROGRESS if set, else whether stdout is a terminal; ranks always see a terminal under mpirun, ci/mpirun sets DLION_PROGRESS).")
    var progress: ProgressChoice = .auto

    @Option(help: "Save checkpoints (safetensors: the model, each rank's optimizer state, the run's position) in this directory, which every rank must see.")
    var checkpointDir: String?

    @Option(help: "Save a checkpoint every N steps (and after the last step); 0: only after the last.")
    var checkpointEvery = 0

    @Option(help: "Also save a checkpoint once this many minutes have passed since the last one; 0: by steps only.")
    var checkpointMinutes = 0.0

    @Option(help: "How many complete checkpoints to keep.")
    var keepCheckpoints = 2

    @Flag(help: "Resume from the newest complete checkpoint in --checkpoint-dir: the run ends as the uninterrupted one would have.")
    var resume = false

    @Option(help: "Start from the parameters saved in this checkpoint (a model.safetensors, a step directory, or a checkpoint directory's newest), with fresh optimizer state: another optimizer, rank count or schedule may follow. Only rank 0 reads it.")
    var initFrom: String?

    @Option(help: "Seconds without a completed step after which a rank ends the job with MPI_Abort, saying which step it waits in (default: max(600, 20 × the median step); 0: never).")
    var stallTimeout: Double?

    @Option(help: "BLAS threads per rank (default: max(1, cores ÷ ranks on this node)).")
    var blasThreads: Int?

    /// Throws when `flags`, which apply to the optimizers `allowed` only, were `given` with another.
    private func refuse(_ flags: [String], given: Bool, unless allowed: [OptimizerChoice]) throws {
        guard given, !allowed.contains(optimizer) else { return }
        throw ValidationError("\(flags.joined(separator: " and ")) \(flags.count == 1 ? "applies" : "apply") to --optimizer "
                              + "\(allowed.map(\.rawValue).joined(separator: " or ")) only (got \(optimizer.rawValue))")
    }

    func validate() throws {
        let widths = hidden.split(separator: ",").map { Int(String($0).trimmingCharacters(in: " ")) }
        guard !widths.isEmpty, widths.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("--hidden must be positive widths separated by commas, like 1024,1024 (got '\(hidden)')")
        }
        guard epochs > 0 else { throw ValidationError("--epochs must be at least 1") }
        if let steps, steps <= 0 { throw ValidationError("--steps must be at least 1") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1") }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) { throw ValidationError("--lr must be a positive number") }
        if let weightDecay, !(weightDecay >= 0 && weightDecay.isFinite) { throw ValidationError("--weight-decay must be ≥ 0") }
        guard (0..<1).contains(beta1) else { throw ValidationError("--beta1 must be in [0, 1)") }
        if let beta2, !(0..<1).contains(beta2) { throw ValidationError("--beta2 must be in [0, 1)") }
        guard warmupSteps >= 0 else { throw ValidationError("--warmup-steps must be ≥ 0") }
        try refuse(["--tie-policy"], given: tiePolicy != .random, unless: [.dlionMavo])
        try refuse(["--zero-sign"], given: zeroSign != .random, unless: [.dlionMavo, .dlionAvg])
        guard evalInterval >= 0, logInterval > 0 else { throw ValidationError("--eval-interval must be ≥ 0 and --log-interval ≥ 1") }
        guard hBase >= 1 else { throw ValidationError("--h-base must be at least 1 (got \(hBase))") }
        if let qsrAlpha, !(qsrAlpha > 0 && qsrAlpha.isFinite) { throw ValidationError("--qsr-alpha must be a positive number (got \(qsrAlpha))") }
        if let topkRatio, !(topkRatio > 0 && topkRatio <= 1) { throw ValidationError("--topk-ratio must be in (0, 1] (got \(topkRatio))") }
        try refuse(["--topk-ratio"], given: topkRatio != nil, unless: [.dgc, .graddrop])
        if let dgcWarmupSteps, dgcWarmupSteps < 0 { throw ValidationError("--dgc-warmup-steps must be ≥ 0") }
        if let dgcClipNorm, !(dgcClipNorm > 0 && dgcClipNorm.isFinite) { throw ValidationError("--dgc-clip-norm must be a positive number (got \(dgcClipNorm))") }
        try refuse(["--dgc-warmup-steps", "--dgc-clip-norm"], given: dgcWarmupSteps != nil || dgcClipNorm != nil, unless: [.dgc])
        if let terngradClip, !(terngradClip >= 0 && terngradClip.isFinite) {
            throw ValidationError("--terngrad-clip must be a number of standard deviations ≥ 0 (got \(terngradClip))")
        }
        try refuse(["--terngrad-exchange", "--terngrad-clip"], given: terngradExchange != nil || terngradClip != nil, unless: [.terngrad])
        if resume && checkpointDir == nil { throw ValidationError("--resume needs --checkpoint-dir, the directory to resume from") }
        guard checkpointEvery >= 0, keepCheckpoints >= 1 else { throw ValidationError("--checkpoint-every must be ≥ 0 and --keep-checkpoints ≥ 1") }
        guard checkpointMinutes >= 0 && checkpointMinutes.isFinite else { throw ValidationError("--checkpoint-minutes must be a number of minutes ≥ 0") }
        if checkpointMinutes > 0 && checkpointDir == nil { throw ValidationError("--checkpoint-minutes needs --checkpoint-dir, where to save") }
        if let stallTimeout, !(stallTimeout >= 0 && stallTimeout.isFinite) { throw ValidationError("--stall-timeout must be a number of seconds ≥ 0") }
        guard layers > 0, channels > 0, heads > 0, context > 0, patchSize > 0 else { throw ValidationError("--layers, --channels, --heads, --context and --patch-size must be at least 1") }
        guard channels % heads == 0 else { throw ValidationError("--channels \(channels) is not divisible by --heads \(heads); each head needs an equal share of the width") }
        guard sampleLength >= 0, temperature >= 0 && temperature.isFinite else { throw ValidationError("--sample-length and --temperature must be ≥ 0") }
        if let blasThreads, blasThreads < 1 { throw ValidationError("--blas-threads must be at least 1") }
        if gradientBlock < 0 { throw ValidationError("--gradient-block must be 0 (whole layers) or a number of parameters, got \(gradientBlock)") }
        if bucketLength < 64 { throw ValidationError("--bucket-length must be at least 64 (one word of signs), got \(bucketLength)") }
    }

    /// Every flag that changes what or how the ranks train, with its parsed value: they must
    /// be the same on every rank (for `--trace`, whether it is on). Left out: where rank 0 writes (`--metrics`, `--progress`), where
    /// each host keeps the data (`--data-dir`), and the BLAS threads of each node.
    var settingsEveryRankShares: [(name: String, value: String)] {
        [("--model", model.rawValue), ("--layers", "\(layers)"), ("--channels", "\(channels)"), ("--heads", "\(heads)"),
         ("--context", "\(context)"), ("--patch-size", "\(patchSize)"), ("--optimizer", optimizer.rawValue), ("--hidden", hiddenWidths.map(String.init).joined(separator: ",")),
         ("--activation", activation.rawValue), ("--epochs", "\(epochs)"), ("--steps", steps.map(String.init) ?? "none"),
         ("--batch-size", "\(batchSize)"), ("--lr", learningRate.map { "\($0)" } ?? "default"),
         ("--weight-decay", weightDecay.map { "\($0)" } ?? "default"), ("--beta1", "\(beta1)"),
         ("--beta2", beta2.map { "\($0)" } ?? "default"), ("--sync-rule", syncRule.rawValue), ("--tie-policy", tiePolicy.rawValue), ("--zero-sign", zeroSign.rawValue), ("--h-base", "\(hBase)"),
         ("--qsr-alpha", qsrAlpha.map { "\($0)" } ?? "default"), ("--average-moments", "\(averageMoments)"),
         ("--topk-ratio", topkRatio.map { "\($0)" } ?? "default"), ("--dgc-warmup-steps", dgcWarmupSteps.map(String.init) ?? "default"),
         ("--dgc-clip-norm", dgcClipNorm.map { "\($0)" } ?? "default"),
         ("--terngrad-exchange", terngradExchange?.rawValue ?? "default"), ("--terngrad-clip", terngradClip.map { "\($0)" } ?? "default"),
         ("--warmup-steps", "\(warmupSteps)"), ("--schedule", schedule.rawValue), ("--seed", "\(seed)"),
         ("--synthetic", "\(synthetic)"), ("--eval-interval", "\(evalInterval)"), ("--log-interval", "\(logInterval)"),
         ("--profile", "\(profile)"), ("--trace", trace == nil ? "off" : "on"), ("--overlap", "\(overlap)"), ("--exchange", exchange.rawValue), ("--bucket-length", "\(bucketLength)"), ("--gradient-block", "\(gradientBlock)")]
    }

    /// What a checkpoint must have been saved with to be resumed by this run: the settings
    /// every rank shares, less those that only change what is reported.
    var checkpointConfiguration: [String: String] {
        var configuration: [String: String] = [:]
        for (name, value) in settingsEveryRankShares where !["--eval-interval", "--log-interval", "--profile", "--trace", "--overlap", "--exchange", "--bucket-length"].contains(name) {
            configuration[name] = value
        }
        return configuration
    }

    /// The hidden widths, validated.
    var hiddenWidths: [Int] { hidden.split(separator: ",").compactMap { Int(String($0).trimmingCharacters(in: " ")) } }

    func run() throws {
        try MPI.start()
        let world = try MPI.world()
        do {
            try TrainingRun(options: self, world: world).run()
            try MPI.finalize()
        } catch let error as CollectiveError {
            // Collective errors are thrown on every rank alike: each says what it knows.
            report(error, rank: world.rank)
            throw ExitCode(2)
        } catch TrainingError.stopped(_, _, let signal, _) {
            // Rank 0's observer said where the run stopped and how to resume it.
            throw ExitCode(128 + signal)
        } catch let error as TrainingError {
            report(error, rank: world.rank)
            throw ExitCode(1)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            // Anything else may have happened on this rank alone: stop every rank.
            report(error, rank: world.rank)
            MPI.abort(errorCode: 3)
        }
    }

    private func report(_ error: Error, rank: Int) {
        printError("dlion-train (rank \(rank)): error: \(error)")
    }
}

extension String {
    /// The string without leading and trailing characters in `set`.
    func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
