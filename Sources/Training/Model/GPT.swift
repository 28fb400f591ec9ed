#if canImport(Glibc)
import Glibc
#endif
import Collectives

/// The shape of a ``GPT``.
public struct GPTConfiguration: Sendable, Equatable {
    /// Tokens in the vocabulary.
    public var vocabulary: Int
    /// The longest window the model reads (its position table).
    public var context: Int
    /// Transformer blocks.
    public var layers: Int
    /// Width of the residual stream.
    public var channels: Int
    /// Attention heads; they divide ``channels``.
    public var heads: Int

    /// A configuration; ``GPT/init(_:maxBatch:seed:)`` checks it.
    public init(vocabulary: Int, context: Int, layers: Int, channels: Int, heads: Int) {
        self.vocabulary = vocabulary
        self.context = context
        self.layers = layers
        self.channels = channels
        self.heads = heads
    }
}

/// Windows of tokens and, for each position, the token that follows it.
public final class TokenBatch {
    /// batch × positions tokens, row-major.
    public let tokens: UnsafeMutableBufferPointer<Int32>
    /// The next token after each of ``tokens``.
    public let targets: UnsafeMutableBufferPointer<Int32>
    /// Windows in the batch.
    public let windows: Int
    /// Tokens per window.
    public let positions: Int

    /// A batch of `windows` windows of `positions` tokens, all 0.
    public init(windows: Int, positions: Int) {
        self.windows = windows
        self.positions = positions
        tokens = .allocate(capacity: windows * positions)
        tokens.initialize(repeating: 0)
        targets = .allocate(capacity: windows * positions)
        targets.initialize(repeating: 0)
    }

    /// A batch of uniformly random tokens and targets below `vocabulary`, the same for the same
    /// `seed` (for checks and benchmarks, as ``Dataset/synthetic(count:featureCount:classes:noise:seed:)``).
    public static func synthetic(windows: Int, positions: Int, vocabulary: Int, seed: UInt64) -> TokenBatch {
        let batch = TokenBatch(windows: windows, positions: positions)
        var random = SplitMix64(seed: seed)
        for index in batch.tokens.indices {
            batch.tokens[index] = Int32(random.next() % UInt64(vocabulary))
            batch.targets[index] = Int32(random.next() % UInt64(vocabulary))
        }
        return batch
    }

    deinit {
        tokens.deallocate()
        targets.deallocate()
    }
}

/// A GPT-2-style decoder (llm.c's layout): token and position embedding, a causal
/// ``TransformerStack`` (pre-LN blocks with a 4× wide GELU MLP, then a final LayerNorm) and
/// a language-model head (not tied to the embedding), cross-entropy on every next token.
/// Every parameter lives in one ``ParameterArena``; activations are allocated once for
/// `maxBatch` windows of the full context.
public final class GPT: Model {
    /// The shape.
    public let configuration: GPTConfiguration
    /// The most windows a batch may hold.
    public let maxBatch: Int
    /// Parameters and gradients.
    public let arena: ParameterArena

    private let wte: TensorSlot, wpe: TensorSlot
    private let stack: TransformerStack
    private let head: (weight: TensorSlot, bias: TensorSlot)
    private let buffers: Buffers
    /// The shape of the last forward pass: windows and positions.
    private var shape = (windows: 0, positions: 0)

    /// A model of `configuration` for batches of up to `maxBatch` windows, initialized from
    /// `seed` as GPT-2 is (``TransformerStack/initializeAsGPT2(_:layers:seed:)``).
    public init(_ configuration: GPTConfiguration, maxBatch: Int, seed: UInt64) throws {
        let (V, T, L, C, heads) = (configuration.vocabulary, configuration.context, configuration.layers, configuration.channels, configuration.heads)
        guard V > 0, T > 0, L > 0, C > 0, heads > 0, maxBatch > 0 else {
            throw TrainingError.invalidConfiguration("a GPT needs a positive vocabulary, context, layer count, width, head count and batch (got \(configuration), batch \(maxBatch))")
        }
        guard C % heads == 0 else {
            throw TrainingError.invalidConfiguration("the width \(C) is not divisible by the \(heads) heads; choose --channels a multiple of --heads")
        }
        self.configuration = configuration
        self.maxBatch = maxBatch
        let tensors = [("wte", [V, C]), ("wpe", [T, C])] + TransformerStack.tensors(layers: L, channels: C) + [("head.weight", [V, C]), ("head.bias", [V])]
        let bufferSizes = Buffers.sizes(maxBatch: maxBatch, configuration)
        let threads = max(1, Parallel.threads)  // attention's backward gets scratch for each
        guard let activationFloats = FloatSlab.sum(TransformerStack.activationFloats(maxBatch: maxBatch, positions: T, channels: C, heads: heads, layers: L, threads: threads),
                                                   FloatSlab.floats(bufferSizes)) else {
            throw TrainingError.invalidConfiguration("the activations of \(maxBatch) windows of \(T) tokens through \(L) layers of width \(C) are more floats than can be counted; use a smaller --context, --batch-size, --layers or --channels")
        }
        let arena = try ParameterArena(tensors: tensors, activationFloats: activationFloats)
        self.arena = arena
        (wte, wpe) = (arena.slots[0], arena.slots[1])
        let last = arena.slots.count
        stack = TransformerStack(arena: arena, slots: arena.slots[2 ..< last - 2], layers: L, channels: C, heads: heads, causal: true,
                                 maxBatch: maxBatch, positions: T, threads: threads)
        head = (arena.slots[last - 2], arena.slots[last - 1])
        buffers = Buffers(FloatSlab(bufferSizes))
        TransformerStack.initializeAsGPT2(arena, layers: L, seed: seed)
    }

    /// Runs `batch` through the model; returns the cross-entropy summed over every position
    /// and the positions whose most likely next token is the target.
    public func forward(_ batch: TokenBatch) -> BatchResult {
        let (B, T) = (batch.windows, batch.positions)
        let (C, V) = (configuration.channels, configuration.vocabulary)
        precondition(B > 0 && B <= maxBatch && T > 0 && T <= configuration.context, "GPT.forward: \(B) windows of \(T) tokens do not fit the model's \(maxBatch) × \(configuration.context)")
        shape = (B, T)
        let N = B * T
        Embedding.forward(out: buffers.embedded, tokens: batch.tokens.baseAddress!, wte: parameters(wte), wpe: parameters(wpe),
                          batch: B, positions: T, channels: C)
        let normed = stack.forward(buffers.embedded, batch: B, positions: T)
        // The head, chunk by chunk as the stack; the chunks' losses added in chunk order.
        var results = [(lossSum: Double, correct: Int)](repeating: (0, 0), count: stack.chunks.count)
        results.withUnsafeMutableBufferPointer { results in
            stack.forEachChunk { _, chunk, sequences in
                let (rows, first) = (sequences.count * T, sequences.lowerBound * T)
                Linear.forward(out: buffers.logits + first * V, inp: normed + first * C, weight: parameters(head.weight), bias: parameters(head.bias),
                               batch: rows, inputs: C, outputs: V)
                results[chunk] = SoftmaxCrossEntropy.forward(probs: buffers.probabilities + first * V, logits: buffers.logits + first * V,
                                                             labels: batch.targets.baseAddress! + first, batch: rows, classes: V)
            }
        }
        return BatchResult(lossSum: results.reduce(0) { $0 + $1.lossSum }, correct: results.reduce(0) { $0 + $1.correct }, count: N)
    }

    /// Writes the gradient of the mean loss of the last ``forward(_:)`` into ``arena``.
    public func backward(_ batch: TokenBatch) { backward(batch, gradientsReady: { _ in }) }

    /// ``backward(_:)``, reporting final gradients after the head, the final LayerNorm and
    /// each block (the arena holds them after the embeddings, in order), and 0 at the end.
    public func backward(_ batch: TokenBatch, gradientsReady: (_ firstFinalGradient: Int) throws -> Void) rethrows {
        let (B, T) = shape
        let (C, V) = (configuration.channels, configuration.vocabulary)
        let N = B * T
        stack.forEachChunk { _, chunk, sequences in
            let (rows, first) = (sequences.count * T, sequences.lowerBound * T)
            let dlogits = buffers.dlogits + first * V
            SoftmaxCrossEntropy.backward(dlogits: dlogits, probs: buffers.probabilities + first * V, labels: batch.targets.baseAddress! + first,
                                         batch: rows, classes: V, normalizer: N)
            Linear.biasGradient(dbias: buffers.headBiasPartials + chunk * V, dout: dlogits, batch: rows, outputs: V)
            Linear.inputGradient(dinp: stack.outputGradient + first * C, dout: dlogits, weight: parameters(head.weight), batch: rows, inputs: C, outputs: V)
        }
        Linear.weightGradient(dweight: gradients(head.weight), dout: buffers.dlogits, inp: stack.forwardOutput, batch: N, inputs: C, outputs: V)
        stack.chunks.addUp(buffers.headBiasPartials, width: V, into: [arena.gradients(head.bias)])
        try gradientsReady(head.weight.offset)
        let dembedded = try stack.backward(blockDone: gradientsReady)
        Embedding.backward(dwte: gradients(wte), vocabulary: V, dwpe: gradients(wpe), dout: dembedded, tokens: batch.tokens.baseAddress!,
                           batch: B, positions: T, channels: C)
        // Positions beyond this batch's windows got no gradient.
        let unused = arena.gradients(wpe)
        unused.baseAddress!.advanced(by: T * C).update(repeating: 0, count: unused.count - T * C)
        try gradientsReady(0)
    }

    /// Continues `prompt` (at least one token) by `length` tokens, each drawn from the model's
    /// next-token distribution at `temperature` (0: always the most likely), reading at most
    /// the last ``GPTConfiguration/context`` tokens; deterministic for a `seed`.
    public func sample(prompt: [Int32], length: Int, temperature: Float, seed: UInt64) -> [Int32] {
        precondition(!prompt.isEmpty, "GPT.sample: the prompt needs a token")
        var text = prompt
        var random = SplitMix64(seed: seed)
        let V = configuration.vocabulary
        for _ in 0..<length {
            let window = Array(text.suffix(configuration.context))
            let batch = TokenBatch(windows: 1, positions: window.count)
            _ = batch.tokens.update(fromContentsOf: window)
            _ = forward(batch)
            let logits = buffers.logits + (window.count - 1) * V
            var best = 0
            for v in 1..<V where logits[v] > logits[best] { best = v }
            guard temperature > 0 else { text.append(Int32(best)); continue }
            let weights = (0..<V).map { expf((logits[$0] - logits[best]) / temperature) }
            var draw = random.uniform(0, weights.reduce(0, +))
            var token = V - 1
            for v in 0..<V { draw -= weights[v]; if draw < 0 { token = v; break } }
            text.append(Int32(token))
        }
        return Array(text.dropFirst(prompt.count))
    }

    private func parameters(_ slot: TensorSlot) -> UnsafePointer<Float> { UnsafePointer(arena.parameters(slot).baseAddress!) }
    private func gradients(_ slot: TensorSlot) -> UnsafeMutablePointer<Float> { arena.gradients(slot).baseAddress! }
}

/// The GPT's own activations (the stack keeps the rest) and the head's gradients.
private final class Buffers {
    let embedded, logits, probabilities, dlogits: UnsafeMutablePointer<Float>
    /// Each sequence chunk's sums of the head's bias gradient, a row of vocabulary floats each.
    let headBiasPartials: UnsafeMutablePointer<Float>
    private let slab: FloatSlab

    /// The buffers' sizes as factors, in the order of the properties.
    static func sizes(maxBatch B: Int, _ c: GPTConfiguration) -> [[Int]] {
        [[B, c.context, c.channels], [B, c.context, c.vocabulary], [B, c.context, c.vocabulary], [B, c.context, c.vocabulary],
         [SequenceChunks.maxCount(batch: B, positions: c.context), c.vocabulary]]
    }

    init(_ slab: FloatSlab) {
        self.slab = slab
        (embedded, logits, probabilities, dlogits) = (slab.pointers[0], slab.pointers[1], slab.pointers[2], slab.pointers[3])
        headBiasPartials = slab.pointers[4]
    }
}
