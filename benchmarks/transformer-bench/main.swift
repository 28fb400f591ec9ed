// transformer-bench: the GEMM-bound ceiling of a GPT's or ViT's training step, next to the real step.
//
// Records the sgemm calls of one forward and backward, then times, in interleaved rounds in
// one process: those calls alone replayed on buffers kept hot in cache (the ceiling),
// forward + backward, and the full step with AdamW and with Distributed Lion (one rank).
// Prints tokens/s (GPT) or images/s (ViT) and each one's share of the ceiling; --json prints
// one line of medians for scripts (benchmarks/pytorch-peer/compare.py).
//   ci/mpirun -np 1 .build/release/transformer-bench --model gpt
import ArgumentParser
import BenchmarkSupport
import Collectives
import Training

struct TransformerBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transformer-bench",
                                                    abstract: "A transformer step's GEMM-bound ceiling against the real training step.")

    @Option(help: "gpt or vit.")
    var model = "gpt"
    @Option(help: "Transformer blocks.")
    var layers = 2
    @Option(help: "Width of the residual stream.")
    var channels = 64
    @Option(help: "Attention heads.")
    var heads = 4
    @Option(help: "GPT: tokens per window.")
    var context = 64
    @Option(help: "GPT: vocabulary size.")
    var vocabulary = 96
    @Option(help: "ViT: patch side (28×28 images).")
    var patchSize = 4
    @Option(help: "Windows (GPT) or images (ViT) per batch.")
    var batchSize = 32
    @Option(help: "Timed rounds.")
    var rounds = 20
    @Option(help: "BLAS threads (default: all cores, as dlion-train uses on one rank).")
    var threads: Int?
    @Flag(help: "Print one JSON line of medians instead of the table.")
    var json = false

    func run() throws {
        try MPI.start()
        let world = try MPI.world()
        let cores = try Threads.shareNode(with: world, perRank: threads)
        let bench: StepBench
        switch model {
        case "gpt": bench = try GPTBench(GPTConfiguration(vocabulary: vocabulary, context: context, layers: layers, channels: channels, heads: heads), batch: batchSize)
        case "vit": bench = try ViTBench(ViTConfiguration(imageHeight: 28, imageWidth: 28, patchSize: patchSize, classes: 10, layers: layers, channels: channels, heads: heads), batch: batchSize)
        default: throw ValidationError("--model must be gpt or vit (got \(model))")
        }
        let optimizers: [any Optimizer] = [try AdamW(count: bench.parameterCount), try DistributedLion(count: bench.parameterCount, communicator: world)]
        let replay = GEMMReplay(BLAS.record { bench.forwardBackward() })
        // The per-head calls read strided views of the QKV buffer; the same calls on dense
        // operands say what copying each head out first (llm.c's permute) could gain at most.
        let denseReplay = GEMMReplay(replay.recording.map(\.dense))

        var times: [String: [Double]] = [:]
        for round in 0..<(rounds + 3) {
            func timed(_ name: String, _ body: () throws -> Void) rethrows {
                let start = monotonicSeconds()
                try body()
                if round >= 3 { times[name, default: []].append(monotonicSeconds() - start) }
            }
            timed("GEMMs only") { replay.run() }
            timed("GEMMs only, dense operands") { denseReplay.run() }
            timed("forward + backward") { bench.forwardBackward() }
            for optimizer in optimizers {
                try timed("full step, \(optimizer.name)") {
                    bench.forwardBackward()
                    try bench.step(optimizer)
                }
            }
        }
        // The same GEMMs timed inside forward + backward, where the element-wise work between
        // them evicts their operands: how far the replay's hot buffers flatter them.
        BLAS.timing = true
        BLAS.resetTimer()
        for _ in 0..<rounds { bench.forwardBackward() }
        BLAS.timing = false
        let inStep = BLAS.gemmSeconds / Double(rounds)
        let names = ["GEMMs only", "GEMMs only, dense operands", "forward + backward"] + optimizers.map { "full step, \($0.name)" }
        let ceiling = median(times["GEMMs only"] ?? [])
        let unit = model == "gpt" ? "tokens/s" : "images/s"
        if json {
            let fields = names.map { "\"\($0)\": \(Double(bench.examples) / median(times[$0] ?? []))" }
            print("{\"unit\": \"\(unit)\", \"threads\": \(cores), \"gemm_calls\": \(replay.calls), \"gemm_gflop\": \(replay.flops / 1e9), "
                  + "\"GEMMs inside the step\": \(Double(bench.examples) / inStep), " + fields.joined(separator: ", ") + "}")
        } else {
            print("# transformer-bench: \(bench.description), batch \(batchSize), \(bench.parameterCount) parameters, \(cores) BLAS thread(s); medians of \(rounds) rounds")
            print("# \(replay.calls) sgemm calls, \(rounded(replay.flops / 1e9, decimals: 3)) GFLOP per step")
            print("# the GEMMs inside forward + backward: \(rounded(inStep * 1000, decimals: 2)) ms (mean), \(rounded(100 * ceiling / inStep, decimals: 1)) % of their speed alone")
            print("step".padded(30) + "ms".padded(10) + unit.padded(12) + "of GEMM ceiling")
            for name in names {
                let seconds = median(times[name] ?? [])
                print(name.padded(30) + rounded(seconds * 1000, decimals: 2).padded(10) + "\(Int(Double(bench.examples) / seconds))".padded(12)
                      + rounded(100 * ceiling / seconds, decimals: 1) + " %")
            }
        }
        try MPI.finalize()
    }
}

/// A model with one fixed batch: forward + backward, an optimizer step.
protocol StepBench {
    var description: String { get }
    var parameterCount: Int { get }
    /// Tokens (GPT) or images (ViT) per step.
    var examples: Int { get }
    func forwardBackward()
    func step(_ optimizer: any Optimizer) throws
}

struct GPTBench: StepBench {
    let model: GPT
    let batch: TokenBatch
    init(_ configuration: GPTConfiguration, batch windows: Int) throws {
        model = try GPT(configuration, maxBatch: windows, seed: 1)
        batch = TokenBatch.synthetic(windows: windows, positions: configuration.context, vocabulary: configuration.vocabulary, seed: 2)
    }
    var description: String { "GPT \(model.configuration.layers) layers × \(model.configuration.channels), \(model.configuration.heads) heads, context \(model.configuration.context)" }
    var parameterCount: Int { model.arena.count }
    var examples: Int { batch.windows * batch.positions }
    func forwardBackward() { _ = model.forward(batch); model.backward(batch) }
    func step(_ optimizer: any Optimizer) throws { _ = try optimizer.step(model.arena, learningRate: 1e-6) }
}

struct ViTBench: StepBench {
    let model: ViT
    let batch: LabelledBatch
    init(_ configuration: ViTConfiguration, batch images: Int) throws {
        model = try ViT(configuration, maxBatch: images, seed: 1)
        batch = LabelledBatch(capacity: images, featureCount: 784)
        batch.fill(from: Dataset.synthetic(count: images, seed: 2), rows: Array(0..<images)[...])
    }
    var description: String { "ViT \(model.configuration.layers) layers × \(model.configuration.channels), \(model.configuration.heads) heads, \(model.configuration.patchSize)×\(model.configuration.patchSize) patches" }
    var parameterCount: Int { model.arena.count }
    var examples: Int { batch.count }
    func forwardBackward() { _ = model.forward(batch); model.backward(batch) }
    func step(_ optimizer: any Optimizer) throws { _ = try optimizer.step(model.arena, learningRate: 1e-6) }
}

/// A step's recorded sgemm calls replayed on buffers large enough for any of them, kept hot
/// in cache: the fastest those shapes can run, whatever the step does between them. The
/// stretches the step ran on several threads at once (attention's heads) are replayed so,
/// each thread on buffers of its own.
struct GEMMReplay {
    let recording: GEMMRecording
    private let buffers: [(a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>)]

    init(_ recording: GEMMRecording) {
        self.recording = recording
        let calls = recording.calls
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
            buffer.initialize(repeating: 0.01, count: max(1, count))
            return buffer
        }
        let threads = recording.stretches.map(\.count).max() ?? 1
        buffers = (0..<threads).map { _ in
            (buffer(calls.map(\.extents.a).max() ?? 1), buffer(calls.map(\.extents.b).max() ?? 1), buffer(calls.map(\.extents.c).max() ?? 1))
        }
    }

    var calls: Int { recording.calls.count }
    var flops: Double { recording.flops }

    func run() {
        for stretch in recording.stretches {
            if stretch.count == 1 {
                for call in stretch[0] { call.run(buffers[0].a, buffers[0].b, buffers[0].c) }
            } else {
                BLAS.concurrently(tasks: stretch.count) { _, pieces in
                    for piece in pieces {
                        for call in stretch[piece] { call.run(buffers[piece].a, buffers[piece].b, buffers[piece].c) }
                    }
                }
            }
        }
    }
}

BLAS.restartWithSleepingIdleThreads()
TransformerBench.main()
