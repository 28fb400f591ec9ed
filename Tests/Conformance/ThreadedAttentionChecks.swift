import Collectives
import Training

/// Attention's (sequence, head) pairs shared out over several threads (`BLAS.concurrently`):
/// the same loss and gradients, bit for bit, as on one thread, and a GEMM recording that keeps
/// each thread's calls apart, in the one-thread order.
struct ThreadedAttentionChecks {
    let harness: Harness

    func runAll() {
        let gpt = GPTConfiguration(vocabulary: 11, context: 64, layers: 2, channels: 32, heads: 4)
        checkThreadsChangeNothing("GPT") {
            (try GPT(gpt, maxBatch: 6, seed: 7), TokenBatch.synthetic(windows: 6, positions: gpt.context, vocabulary: gpt.vocabulary, seed: 8))
        }
        let vit = ViTConfiguration(imageHeight: 28, imageWidth: 28, patchSize: 4, classes: 10, layers: 2, channels: 32, heads: 4)
        checkThreadsChangeNothing("ViT") {
            let batch = LabelledBatch(capacity: 12, featureCount: 784)
            batch.fill(from: Dataset.synthetic(count: 12, seed: 8), rows: Array(0..<12)[...])
            return (try ViT(vit, maxBatch: 12, seed: 7), batch)
        }
    }

    /// One forward and backward of the model and batch `make` builds (the model after the
    /// thread count is set, since its scratch depends on it), at 1 and at 3 threads.
    func checkThreadsChangeNothing<M: Model>(_ name: String, _ make: () throws -> (M, M.Batch)) {
        harness.run("\(name) attention over 1 and 3 threads") {
            func measure(threads: Int) throws -> (loss: Double, gradients: [Float], recording: GEMMRecording) {
                let saved = Parallel.threads
                Parallel.threads = threads
                defer { Parallel.threads = saved }
                let (model, batch) = try make()
                var loss = 0.0
                let recording = BLAS.record {
                    loss = model.forward(batch).lossSum
                    model.backward(batch)
                }
                return (loss, model.arena.withGradients { Array($0) }, recording)
            }
            let one = try measure(threads: 1), three = try measure(threads: 3)
            harness.expect(one.loss == three.loss, "\(name) loss, 1 and 3 threads", "\(one.loss) against \(three.loss)")
            harness.expect(one.gradients == three.gradients, "\(name) gradients, 1 and 3 threads",
                           "\(zip(one.gradients, three.gradients).filter { $0 != $1 }.count) of \(one.gradients.count) differ")
            harness.expect(one.recording.stretches.count == 1, "\(name) recording on 1 thread is one stretch", "\(one.recording.stretches.count)")
            // Two layers, attention forward and backward each: four stretches of three threads.
            let shared = three.recording.stretches.filter { $0.count == 3 }
            harness.expect(shared.count == 4 && shared.allSatisfy { $0.allSatisfy { !$0.isEmpty } }, "\(name) recording on 3 threads",
                           "stretches of \(three.recording.stretches.map(\.count))")
            harness.expect(one.recording.calls == three.recording.calls, "\(name) recorded calls in the same order on 1 and 3 threads")
        }
    }
}
