#if canImport(Glibc)
import Glibc
#endif

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

    deinit {
        tokens.deallocate()
        targets.deallocate()
    }
}

/// A GPT-2-style decoder (llm.c's layout): token and position embedding, `layers` blocks of
/// LayerNorm → causal self-attention → residual, LayerNorm → GELU MLP (4× wide) → residual,
/// a final LayerNorm and a language-model head (not tied to the embedding), cross-entropy
/// on every next token. Every parameter lives in one ``ParameterArena``; activations are
/// allocated once for `maxBatch` windows of the full context.
public final class GPT: Model {
    /// The shape.
    public let configuration: GPTConfiguration
    /// The most windows a batch may hold.
    public let maxBatch: Int
    /// Parameters and gradients.
    public let arena: ParameterArena

    private let wte: TensorSlot, wpe: TensorSlot
    private let blocks: [BlockSlots]
    private let finalNorm: (weight: TensorSlot, bias: TensorSlot)
    private let head: (weight: TensorSlot, bias: TensorSlot)
    private let activations: [BlockActivations]
    private let buffers: Buffers
    /// The shape of the last forward pass: windows and positions.
    private var shape = (windows: 0, positions: 0)

    /// A model of `configuration` for batches of up to `maxBatch` windows, initialized from
    /// `seed` as GPT-2 is: weights and embeddings normal(0, 0.02), the two residual
    /// projections of each block scaled by 1/√(2·layers), biases 0, LayerNorm weights 1.
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
        var tensors: [(name: String, shape: [Int])] = [("wte", [V, C]), ("wpe", [T, C])]
        for layer in 0..<L { tensors += BlockSlots.tensors(layer: layer, channels: C) }
        tensors += [("lnf.weight", [C]), ("lnf.bias", [C]), ("head.weight", [V, C]), ("head.bias", [V])]
        let blockSizes = BlockActivations.sizes(maxBatch: maxBatch, configuration), bufferSizes = Buffers.sizes(maxBatch: maxBatch, configuration)
        let (blocksFloats, blocksOverflow) = (FloatSlab.floats(blockSizes) ?? .max).multipliedReportingOverflow(by: L)
        guard !blocksOverflow, let bufferFloats = FloatSlab.floats(bufferSizes), bufferFloats <= .max - blocksFloats else {
            throw TrainingError.invalidConfiguration("the activations of \(maxBatch) windows of \(T) tokens through \(L) layers of width \(C) are more floats than can be counted; use a smaller --context, --batch-size, --layers or --channels")
        }
        let arena = try ParameterArena(tensors: tensors, activationFloats: blocksFloats + bufferFloats)
        self.arena = arena
        wte = arena.slots[0]
        wpe = arena.slots[1]
        blocks = (0..<L).map { BlockSlots(arena.slots[2 + 12 * $0 ..< 14 + 12 * $0]) }
        let last = arena.slots.count
        finalNorm = (arena.slots[last - 4], arena.slots[last - 3])
        head = (arena.slots[last - 2], arena.slots[last - 1])
        activations = (0..<L).map { _ in BlockActivations(FloatSlab(blockSizes)) }
        buffers = Buffers(FloatSlab(bufferSizes))

        var random = SplitMix64(seed: seed)
        let residualScale = 1 / Float(2 * L).squareRoot()
        for slot in arena.slots {
            let values = arena.parameters(slot)
            if slot.name.hasSuffix(".bias") { continue }
            if slot.name.hasSuffix("ln1.weight") || slot.name.hasSuffix("ln2.weight") || slot.name == "lnf.weight" {
                values.update(repeating: 1)
                continue
            }
            let std: Float = slot.name.hasSuffix("attproj.weight") || slot.name.hasSuffix("fcproj.weight") ? 0.02 * residualScale : 0.02
            for index in values.indices { values[index] = std * random.normal() }
        }
    }

    /// Runs `batch` through the model; returns the cross-entropy summed over every position
    /// and the positions whose most likely next token is the target.
    public func forward(_ batch: TokenBatch) -> BatchResult {
        let (B, T) = (batch.windows, batch.positions)
        let (C, V, heads) = (configuration.channels, configuration.vocabulary, configuration.heads)
        precondition(B > 0 && B <= maxBatch && T > 0 && T <= configuration.context, "GPT.forward: \(B) windows of \(T) tokens do not fit the model's \(maxBatch) × \(configuration.context)")
        shape = (B, T)
        let N = B * T
        Embedding.forward(out: buffers.embedded, tokens: batch.tokens.baseAddress!, wte: parameters(wte), wpe: parameters(wpe),
                          batch: B, positions: T, channels: C)
        var x = UnsafePointer(buffers.embedded)
        for (block, a) in zip(blocks, activations) {
            a.input = x
            LayerNorm.forward(out: a.ln1, mean: a.ln1Mean, rstd: a.ln1Rstd, inp: x, weight: parameters(block.ln1.weight), bias: parameters(block.ln1.bias), rows: N, channels: C)
            Linear.forward(out: a.qkv, inp: a.ln1, weight: parameters(block.qkv.weight), bias: parameters(block.qkv.bias), batch: N, inputs: C, outputs: 3 * C)
            Attention.forward(out: a.attended, att: a.att, qkv: a.qkv, batch: B, positions: T, channels: C, heads: heads, causal: true)
            Linear.forward(out: a.residual, inp: a.attended, weight: parameters(block.attproj.weight), bias: parameters(block.attproj.bias), batch: N, inputs: C, outputs: C)
            add(a.residual, x, count: N * C)
            LayerNorm.forward(out: a.ln2, mean: a.ln2Mean, rstd: a.ln2Rstd, inp: a.residual, weight: parameters(block.ln2.weight), bias: parameters(block.ln2.bias), rows: N, channels: C)
            Linear.forward(out: a.fc, inp: a.ln2, weight: parameters(block.fc.weight), bias: parameters(block.fc.bias), batch: N, inputs: C, outputs: 4 * C)
            GELU.forward(out: a.fcGELU, inp: a.fc, count: N * 4 * C)
            Linear.forward(out: a.output, inp: a.fcGELU, weight: parameters(block.fcproj.weight), bias: parameters(block.fcproj.bias), batch: N, inputs: 4 * C, outputs: C)
            add(a.output, a.residual, count: N * C)
            x = UnsafePointer(a.output)
        }
        buffers.finalInput = x
        LayerNorm.forward(out: buffers.lnf, mean: buffers.lnfMean, rstd: buffers.lnfRstd, inp: x, weight: parameters(finalNorm.weight), bias: parameters(finalNorm.bias), rows: N, channels: C)
        Linear.forward(out: buffers.logits, inp: buffers.lnf, weight: parameters(head.weight), bias: parameters(head.bias), batch: N, inputs: C, outputs: V)
        let (lossSum, correct) = SoftmaxCrossEntropy.forward(probs: buffers.probabilities, logits: buffers.logits, labels: batch.targets.baseAddress!, batch: N, classes: V)
        return BatchResult(lossSum: lossSum, correct: correct, count: N)
    }

    /// Writes the gradient of the mean loss of the last ``forward(_:)`` into ``arena``.
    public func backward(_ batch: TokenBatch) {
        let (B, T) = shape
        let (C, V, heads) = (configuration.channels, configuration.vocabulary, configuration.heads)
        let N = B * T
        let b = buffers
        SoftmaxCrossEntropy.backward(dlogits: b.dlogits, probs: b.probabilities, labels: batch.targets.baseAddress!, batch: N, classes: V, normalizer: N)
        Linear.backward(dinp: b.dnormed, dweight: gradients(head.weight), dbias: gradients(head.bias), dout: b.dlogits, inp: b.lnf,
                        weight: parameters(head.weight), batch: N, inputs: C, outputs: V)
        // dstream: the gradient of the residual stream at the current block's output.
        LayerNorm.backward(dinp: b.dstream, dweight: gradients(finalNorm.weight), dbias: gradients(finalNorm.bias), dout: b.dnormed,
                           inp: b.finalInput, weight: parameters(finalNorm.weight), mean: b.lnfMean, rstd: b.lnfRstd, rows: N, channels: C)
        for (block, a) in zip(blocks, activations).reversed() {
            // MLP half: output = residual + fcproj(gelu(fc(ln2(residual)))).
            Linear.backward(dinp: b.dwide, dweight: gradients(block.fcproj.weight), dbias: gradients(block.fcproj.bias), dout: b.dstream,
                            inp: a.fcGELU, weight: parameters(block.fcproj.weight), batch: N, inputs: 4 * C, outputs: C)
            GELU.backward(dinp: b.dwide, inp: a.fc, dout: b.dwide, count: N * 4 * C)
            Linear.backward(dinp: b.dnormed, dweight: gradients(block.fc.weight), dbias: gradients(block.fc.bias), dout: b.dwide,
                            inp: a.ln2, weight: parameters(block.fc.weight), batch: N, inputs: C, outputs: 4 * C)
            LayerNorm.backward(dinp: b.dbranch, dweight: gradients(block.ln2.weight), dbias: gradients(block.ln2.bias), dout: b.dnormed,
                               inp: a.residual, weight: parameters(block.ln2.weight), mean: a.ln2Mean, rstd: a.ln2Rstd, rows: N, channels: C)
            add(b.dstream, b.dbranch, count: N * C)
            // Attention half: residual = input + attproj(attention(qkv(ln1(input)))).
            Linear.backward(dinp: b.dnormed, dweight: gradients(block.attproj.weight), dbias: gradients(block.attproj.bias), dout: b.dstream,
                            inp: a.attended, weight: parameters(block.attproj.weight), batch: N, inputs: C, outputs: C)
            Attention.backward(dqkv: b.dqkv, scratch: b.attentionScratch, dout: b.dnormed, qkv: a.qkv, att: a.att,
                               batch: B, positions: T, channels: C, heads: heads)
            Linear.backward(dinp: b.dnormed, dweight: gradients(block.qkv.weight), dbias: gradients(block.qkv.bias), dout: b.dqkv,
                            inp: a.ln1, weight: parameters(block.qkv.weight), batch: N, inputs: C, outputs: 3 * C)
            LayerNorm.backward(dinp: b.dbranch, dweight: gradients(block.ln1.weight), dbias: gradients(block.ln1.bias), dout: b.dnormed,
                               inp: a.input, weight: parameters(block.ln1.weight), mean: a.ln1Mean, rstd: a.ln1Rstd, rows: N, channels: C)
            add(b.dstream, b.dbranch, count: N * C)
        }
        Embedding.backward(dwte: gradients(wte), vocabulary: V, dwpe: gradients(wpe), dout: b.dstream, tokens: batch.tokens.baseAddress!,
                           batch: B, positions: T, channels: C)
        // Positions beyond this batch's windows got no gradient.
        let unused = arena.gradients(wpe)
        unused.baseAddress!.advanced(by: T * C).update(repeating: 0, count: unused.count - T * C)
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

    /// destination += source, element-wise.
    private func add(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafePointer<Float>, count: Int) {
        for index in 0..<count { destination[index] += source[index] }
    }
}

/// One block's parameters, in arena order.
private struct BlockSlots {
    let ln1: (weight: TensorSlot, bias: TensorSlot), qkv: (weight: TensorSlot, bias: TensorSlot)
    let attproj: (weight: TensorSlot, bias: TensorSlot), ln2: (weight: TensorSlot, bias: TensorSlot)
    let fc: (weight: TensorSlot, bias: TensorSlot), fcproj: (weight: TensorSlot, bias: TensorSlot)

    static func tensors(layer: Int, channels C: Int) -> [(name: String, shape: [Int])] {
        let p = "block\(layer)."
        return [(p + "ln1.weight", [C]), (p + "ln1.bias", [C]), (p + "qkv.weight", [3 * C, C]), (p + "qkv.bias", [3 * C]),
                (p + "attproj.weight", [C, C]), (p + "attproj.bias", [C]), (p + "ln2.weight", [C]), (p + "ln2.bias", [C]),
                (p + "fc.weight", [4 * C, C]), (p + "fc.bias", [4 * C]), (p + "fcproj.weight", [C, 4 * C]), (p + "fcproj.bias", [C])]
    }

    init(_ slots: ArraySlice<TensorSlot>) {
        let s = Array(slots)
        (ln1, qkv, attproj) = ((s[0], s[1]), (s[2], s[3]), (s[4], s[5]))
        (ln2, fc, fcproj) = ((s[6], s[7]), (s[8], s[9]), (s[10], s[11]))
    }
}

/// What one block's forward keeps for its backward.
private final class BlockActivations {
    /// The block's input (the previous block's output or the embedding), not owned.
    var input: UnsafePointer<Float>
    let ln1, ln1Mean, ln1Rstd, qkv, att, attended, residual, ln2, ln2Mean, ln2Rstd, fc, fcGELU, output: UnsafeMutablePointer<Float>
    private let slab: FloatSlab

    /// The buffers' sizes as factors, in the order of the properties.
    static func sizes(maxBatch B: Int, _ c: GPTConfiguration) -> [[Int]] {
        let (T, C, heads) = (c.context, c.channels, c.heads)
        return [[B, T, C], [B, T], [B, T], [B, T, 3, C], [B, heads, T, T], [B, T, C], [B, T, C],
                [B, T, C], [B, T], [B, T], [B, T, 4, C], [B, T, 4, C], [B, T, C]]
    }

    init(_ slab: FloatSlab) {
        self.slab = slab
        let p = slab.pointers
        (ln1, ln1Mean, ln1Rstd, qkv, att, attended, residual) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6])
        (ln2, ln2Mean, ln2Rstd, fc, fcGELU, output) = (p[7], p[8], p[9], p[10], p[11], p[12])
        input = UnsafePointer(ln1)
    }
}

/// The model-wide activations and the backward pass's gradient buffers.
private final class Buffers {
    let embedded, lnf, lnfMean, lnfRstd, logits, probabilities: UnsafeMutablePointer<Float>
    let dlogits, dnormed, dstream, dbranch, dwide, dqkv, attentionScratch: UnsafeMutablePointer<Float>
    /// The last block's output, not owned.
    var finalInput: UnsafePointer<Float>
    private let slab: FloatSlab

    /// The buffers' sizes as factors, in the order of the properties.
    static func sizes(maxBatch B: Int, _ c: GPTConfiguration) -> [[Int]] {
        let (T, C, V) = (c.context, c.channels, c.vocabulary)
        return [[B, T, C], [B, T, C], [B, T], [B, T], [B, T, V], [B, T, V],
                [B, T, V], [B, T, C], [B, T, C], [B, T, C], [B, T, 4, C], [B, T, 3, C], [T, T]]
    }

    init(_ slab: FloatSlab) {
        self.slab = slab
        let p = slab.pointers
        (embedded, lnf, lnfMean, lnfRstd, logits, probabilities) = (p[0], p[1], p[2], p[3], p[4], p[5])
        (dlogits, dnormed, dstream, dbranch, dwide, dqkv, attentionScratch) = (p[6], p[7], p[8], p[9], p[10], p[11], p[12])
        finalInput = UnsafePointer(embedded)
    }
}

/// Zeroed float buffers carved from one allocation, one per size (given as factors).
private final class FloatSlab {
    /// The buffers, in the order of the sizes.
    let pointers: [UnsafeMutablePointer<Float>]
    private let storage: UnsafeMutableBufferPointer<Float>

    /// The floats `sizes` need together, or nil when that is more than can be counted.
    static func floats(_ sizes: [[Int]]) -> Int? {
        var total = 0
        for factors in sizes {
            var size = 1
            for factor in factors {
                let (product, overflow) = size.multipliedReportingOverflow(by: factor)
                guard !overflow else { return nil }
                size = product
            }
            let (sum, overflow) = total.addingReportingOverflow(size)
            guard !overflow else { return nil }
            total = sum
        }
        return total
    }

    /// Buffers of `sizes`, whose total ``floats(_:)`` has counted.
    init(_ sizes: [[Int]]) {
        let storage = zeroedBuffer(FloatSlab.floats(sizes) ?? 0)
        var offset = 0
        pointers = sizes.map { factors in
            defer { offset += factors.reduce(1, *) }
            return storage.baseAddress! + offset
        }
        self.storage = storage
    }

    deinit { storage.deallocate() }
}
