import Collectives
import Training

/// A transformer's sequence chunks shared out over several threads (`BLAS.concurrently`), and
/// attention's (sequence, head) pairs where a batch is one chunk: the same loss and gradients,
/// bit for bit, as on one thread, and a GEMM recording that keeps each thread's calls apart,
/// in the one-thread order.
struct ThreadedAttentionChecks {
    let harness: Harness

    func runAll() {
        let gpt = GPTConfiguration(vocabulary: 11, context: 64, layers: 2, channels: 32, heads: 4)
        checkThreadsChangeNothing("GPT", sharedStretches: 5) {
            (try GPT(gpt, maxBatch: 12, seed: 7), TokenBatch.synthetic(windows: 12, positions: gpt.context, vocabulary: gpt.vocabulary, seed: 8))
        }
        checkThreadsChangeNothing("GPT of one chunk", sharedStretches: 4) {
            (try GPT(gpt, maxBatch: 3, seed: 7), TokenBatch.synthetic(windows: 3, positions: gpt.context, vocabulary: gpt.vocabulary, seed: 8))
        }
        let vit = ViTConfiguration(imageHeight: 28, imageWidth: 28, patchSize: 4, classes: 10, layers: 2, channels: 32, heads: 4)
        checkThreadsChangeNothing("ViT", sharedStretches: 3) {
            let batch = LabelledBatch(capacity: 16, featureCount: 784)
            batch.fill(from: Dataset.synthetic(count: 16, seed: 8), rows: Array(0..<16)[...])
            return (try ViT(vit, maxBatch: 16, seed: 7), batch)
        }
    }

    /// One forward and backward of the model and batch `make` builds (the model after the
    /// thread count is set, since its scratch depends on it), at 1, 2 and 3 threads, with
    /// `sharedStretches` stretches of GEMMs on 3 threads.
    func checkThreadsChangeNothing<M: Model>(_ name: String, sharedStretches expected: Int, _ make: () throws -> (M, M.Batch)) {
        harness.run("\(name) over 1, 2 and 3 threads") {
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
            let one = try measure(threads: 1), two = try measure(threads: 2), three = try measure(threads: 3)
            for (threads, run) in [(2, two), (3, three)] {
                harness.expect(one.loss == run.loss, "\(name) loss, 1 and \(threads) threads", "\(one.loss) against \(run.loss)")
                harness.expect(one.gradients == run.gradients, "\(name) gradients, 1 and \(threads) threads",
                               "\(zip(one.gradients, run.gradients).filter { $0 != $1 }.count) of \(one.gradients.count) differ")
                harness.expect(one.recording.calls == run.recording.calls, "\(name) recorded calls in the same order on 1 and \(threads) threads")
            }
            harness.expect(one.recording.stretches.count == 1, "\(name) recording on 1 thread is one stretch", "\(one.recording.stretches.count)")
            // Two layers, batches of 3 sequence chunks: the stack's forward and each block's
            // backward, and the GPT's head forward and backward. A batch of one chunk: attention's
            // forward and backward in each layer.
            let shared = three.recording.stretches.filter { $0.count == 3 }
            harness.expect(shared.count == expected && shared.allSatisfy { $0.allSatisfy { !$0.isEmpty } }, "\(name) recording on 3 threads",
                           "stretches of \(three.recording.stretches.map(\.count)), expected \(expected) of 3")
        }
    }
}
