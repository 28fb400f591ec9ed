// gemm-bench: the GEMM-bound ceiling of the MLP's training step, next to the real step.
//
// Times, in interleaved rounds in one process: the model's eight GEMMs alone at the step's
// shapes (three forward, three weight gradients, two input gradients), forward+backward, and
// the full step with each optimizer (Distributed Lion both on the model's arena, as dlion-train
// steps, and on flat buffers). Prints samples/s and each one's share of the ceiling.
//   ci/mpirun -np 1 .build/release/gemm-bench --batch-size 128
import ArgumentParser
import BenchmarkSupport
import Collectives
import Training

struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm-bench",
                                                    abstract: "The MLP step's GEMM-bound ceiling against the real training step.")

    @Option(help: "Rows per batch.")
    var batchSize = 128

    @Option(help: "Hidden widths, comma-separated.")
    var hidden = "1024,1024"

    @Option(help: "Timed rounds.")
    var rounds = 30

    @Option(help: "BLAS threads (default: all cores, as dlion-train uses on one rank).")
    var threads: Int?

    func run() throws {
        try MPI.start()
        let world = try MPI.world()
        let cores = try Threads.shareNode(with: world, perRank: threads)
        let widths = [784] + hidden.split(separator: ",").compactMap { Int($0) } + [10]
        let model = try MLP(widths: widths, maxBatch: batchSize, seed: 1)
        let data = Dataset.synthetic(count: batchSize, seed: 2)
        let optimizers: [any Optimizer] = [try DistributedLion(count: model.arena.count, communicator: world),
                                           try Lion(count: model.arena.count), try AdamW(count: model.arena.count)]
        // Distributed Lion on flat buffers, which cannot take the gradient storage: 24 bytes
        // per parameter instead of the arena step's 20.
        let flatLion = try DistributedLion(count: model.arena.count, communicator: world)
        let flatName = "full step, \(flatLion.name) flat"
        let shapes = GemmShapes(widths: widths, batch: batchSize)

        var times: [String: [Double]] = [:]
        func time(_ name: String, _ body: () throws -> Void) rethrows {
            let start = monotonicSeconds()
            try body()
            times[name, default: []].append(monotonicSeconds() - start)
        }
        for round in 0..<(rounds + 3) {
            let keep = round >= 3
            func timed(_ name: String, _ body: () throws -> Void) rethrows {
                if keep { try time(name, body) } else { try body() }
            }
            timed("GEMMs only") { shapes.run() }
            timed("forward + backward") {
                model.forward(inputs: data.features, labels: data.labels, batch: batchSize)
                model.backward(batch: batchSize)
            }
            for optimizer in optimizers {
                try timed("full step, \(optimizer.name)") {
                    model.forward(inputs: data.features, labels: data.labels, batch: batchSize)
                    model.backward(batch: batchSize)
                    _ = try optimizer.step(model.arena, learningRate: 1e-6)
                }
            }
            try timed(flatName) {
                model.forward(inputs: data.features, labels: data.labels, batch: batchSize)
                model.backward(batch: batchSize)
                _ = try model.arena.withGradients { try flatLion.step(parameters: model.arena.parameters, gradients: $0, learningRate: 1e-6) }
            }
        }
        let ceiling = median(times["GEMMs only"]!)
        print("# gemm-bench: MLP \(widths.map(String.init).joined(separator: "-")), batch \(batchSize), \(cores) BLAS thread(s); medians of \(rounds) rounds")
        print("step".padded(30) + "ms".padded(10) + "samples/s".padded(12) + "of GEMM ceiling")
        for name in ["GEMMs only", "forward + backward"] + optimizers.map({ "full step, \($0.name)" }) + [flatName] {
            let seconds = median(times[name]!)
            print(name.padded(30) + String(rounded(seconds * 1000, decimals: 2)).padded(10) + "\(Int(Double(batchSize) / seconds))".padded(12)
                  + rounded(100 * ceiling / seconds, decimals: 2) + " %")
        }
        try MPI.finalize()
    }
}

/// The GEMMs of one training step of an MLP (per layer: forward, weight gradient, and input
/// gradient except for the first layer), each on its own buffers laid out as the model's are,
/// so the caches see what they see in training.
struct GemmShapes {
    let widths: [Int]
    let batch: Int
    /// Per layer: weight, input, output, weight gradient, input gradient, output gradient.
    let buffers: [[UnsafeMutableBufferPointer<Float>]]

    init(widths: [Int], batch: Int) {
        self.widths = widths
        self.batch = batch
        func buffer(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            buffer.initialize(repeating: 0.01)
            return buffer
        }
        buffers = (0..<widths.count - 1).map { layer in
            let (inputs, outputs) = (widths[layer], widths[layer + 1])
            return [buffer(outputs * inputs), buffer(batch * inputs), buffer(batch * outputs),
                    buffer(outputs * inputs), buffer(batch * inputs), buffer(batch * outputs)]
        }
    }

    func run() {
        let layers = widths.count - 1
        for layer in 0..<layers {
            let b = buffers[layer].map { $0.baseAddress! }
            BLAS.sgemm(m: batch, n: widths[layer + 1], k: widths[layer], b[1], b[0], transposeB: true, into: b[2])
        }
        for layer in stride(from: layers - 1, through: 0, by: -1) {
            let b = buffers[layer].map { $0.baseAddress! }
            let (inputs, outputs) = (widths[layer], widths[layer + 1])
            BLAS.sgemm(m: outputs, n: inputs, k: batch, b[5], transposeA: true, b[1], into: b[3])
            if layer > 0 { BLAS.sgemm(m: batch, n: inputs, k: outputs, b[5], b[0], into: b[4]) }
        }
    }
}

BLAS.restartWithSleepingIdleThreads()
GemmBench.main()
