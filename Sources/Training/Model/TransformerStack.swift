/// The body GPT and ViT share: `layers` pre-LN transformer blocks, each
/// x + attproj(attention(qkv(ln1(x)))) followed by + fcproj(gelu(fc(ln2(·)))) with a 4× wide
/// MLP, then a final LayerNorm. Its parameters are slots of the model's arena, named
/// `block<l>.…` and `lnf.…`; its activations are allocated once for `maxBatch` sequences of
/// up to `positions` tokens.
final class TransformerStack {
    /// Blocks, width, heads, and whether attention is causal (GPT) or bidirectional (ViT).
    let layers: Int, channels: Int, heads: Int, causal: Bool
    /// The longest batch of sequences the activations hold.
    let maxBatch: Int, maxPositions: Int
    /// The most threads attention's backward has scratch for.
    let attentionThreads: Int
    /// Where the caller writes the gradient of the loss with respect to ``forward(_:batch:positions:)``'s
    /// output (batch × positions × channels) before ``backward()``.
    let outputGradient: UnsafeMutablePointer<Float>
    /// The last forward's output (batch × positions × channels), which a head's backward reads.
    var forwardOutput: UnsafePointer<Float> { UnsafePointer(buffers.lnf) }

    private unowned let arena: ParameterArena
    private let blocks: [BlockSlots]
    private let finalNorm: (weight: TensorSlot, bias: TensorSlot)
    private let activations: [BlockActivations]
    private let buffers: StackBuffers
    private var shape = (batch: 0, positions: 0)

    /// The stack's tensors, in the arena order its initializer expects.
    static func tensors(layers: Int, channels C: Int) -> [(name: String, shape: [Int])] {
        (0..<layers).flatMap { BlockSlots.tensors(layer: $0, channels: C) } + [("lnf.weight", [C]), ("lnf.bias", [C])]
    }

    /// The floats of activation the stack allocates, or nil when more than can be counted.
    static func activationFloats(maxBatch: Int, positions: Int, channels: Int, heads: Int, layers: Int, threads: Int) -> Int? {
        FloatSlab.sum(FloatSlab.floats(BlockActivations.sizes(maxBatch, positions, channels, heads), times: layers),
                      FloatSlab.floats(StackBuffers.sizes(maxBatch, positions, channels, threads)))
    }

    /// A stack over `slots`, the arena's slots laid out by ``tensors(layers:channels:)``,
    /// whose attention runs on up to `threads` threads.
    init(arena: ParameterArena, slots: ArraySlice<TensorSlot>, layers: Int, channels: Int, heads: Int, causal: Bool,
         maxBatch: Int, positions: Int, threads: Int) {
        precondition(slots.count == 12 * layers + 2, "TransformerStack: \(slots.count) slots for \(layers) layers")
        (self.arena, self.layers, self.channels, self.heads, self.causal) = (arena, layers, channels, heads, causal)
        (self.maxBatch, maxPositions, attentionThreads) = (maxBatch, positions, threads)
        let first = slots.startIndex
        blocks = (0..<layers).map { BlockSlots(slots[first + 12 * $0 ..< first + 12 * $0 + 12]) }
        finalNorm = (slots[first + 12 * layers], slots[first + 12 * layers + 1])
        activations = (0..<layers).map { _ in BlockActivations(FloatSlab(BlockActivations.sizes(maxBatch, positions, channels, heads))) }
        buffers = StackBuffers(FloatSlab(StackBuffers.sizes(maxBatch, positions, channels, threads)))
        outputGradient = buffers.dnormed
    }

    /// Runs `input` (batch × positions × channels) through the blocks and the final LayerNorm;
    /// returns the normalized output, valid until the next forward.
    func forward(_ input: UnsafePointer<Float>, batch B: Int, positions T: Int) -> UnsafePointer<Float> {
        precondition(B > 0 && B <= maxBatch && T > 0 && T <= maxPositions, "TransformerStack.forward: \(B) × \(T) does not fit \(maxBatch) × \(maxPositions)")
        shape = (B, T)
        let (N, C) = (B * T, channels)
        var x = input
        for (block, a) in zip(blocks, activations) {
            a.input = x
            LayerNorm.forward(out: a.ln1, mean: a.ln1Mean, rstd: a.ln1Rstd, inp: x, weight: parameters(block.ln1.weight), bias: parameters(block.ln1.bias), rows: N, channels: C)
            Linear.forward(out: a.qkv, inp: a.ln1, weight: parameters(block.qkv.weight), bias: parameters(block.qkv.bias), batch: N, inputs: C, outputs: 3 * C)
            Attention.forward(out: a.attended, att: a.att, qkv: a.qkv, batch: B, positions: T, channels: C, heads: heads, causal: causal)
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
        return forwardOutput
    }

    /// From ``outputGradient``, writes the gradients of every block and of the final LayerNorm
    /// into the arena; returns the gradient with respect to the last forward's input (batch ×
    /// positions × channels), valid until the next backward.
    func backward() -> UnsafePointer<Float> { backward(blockDone: { _ in }) }

    /// ``backward()``, calling `blockDone` with the offset of the first parameter of the final
    /// LayerNorm, then of each block from the last to the first, once their gradients are
    /// final (each block's tensors are contiguous in the arena, in order).
    func backward(blockDone: (_ firstFinalGradient: Int) throws -> Void) rethrows -> UnsafePointer<Float> {
        let (B, T) = shape
        let (N, C) = (B * T, channels)
        let b = buffers
        // dstream: the gradient of the residual stream at the current block's output.
        LayerNorm.backward(dinp: b.dstream, dweight: gradients(finalNorm.weight), dbias: gradients(finalNorm.bias), dout: b.dnormed,
                           inp: b.finalInput, weight: parameters(finalNorm.weight), mean: b.lnfMean, rstd: b.lnfRstd, rows: N, channels: C)
        try blockDone(finalNorm.weight.offset)
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
            Attention.backward(dqkv: b.dqkv, scratch: b.attentionScratch, threads: attentionThreads, dout: b.dnormed, qkv: a.qkv, att: a.att,
                               batch: B, positions: T, channels: C, heads: heads)
            Linear.backward(dinp: b.dnormed, dweight: gradients(block.qkv.weight), dbias: gradients(block.qkv.bias), dout: b.dqkv,
                            inp: a.ln1, weight: parameters(block.qkv.weight), batch: N, inputs: C, outputs: 3 * C)
            LayerNorm.backward(dinp: b.dbranch, dweight: gradients(block.ln1.weight), dbias: gradients(block.ln1.bias), dout: b.dnormed,
                               inp: a.input, weight: parameters(block.ln1.weight), mean: a.ln1Mean, rstd: a.ln1Rstd, rows: N, channels: C)
            add(b.dstream, b.dbranch, count: N * C)
            try blockDone(block.ln1.weight.offset)
        }
        return UnsafePointer(b.dstream)
    }

    /// Initializes every parameter of `arena` by GPT-2's scheme, in arena order from `seed`:
    /// weights and embeddings normal(0, 0.02), each block's two residual projections scaled by
    /// 1/√(2·layers), biases 0, LayerNorm weights 1.
    static func initializeAsGPT2(_ arena: ParameterArena, layers: Int, seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let residualScale = 1 / Float(2 * layers).squareRoot()
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

    private func parameters(_ slot: TensorSlot) -> UnsafePointer<Float> { UnsafePointer(arena.parameters(slot).baseAddress!) }
    private func gradients(_ slot: TensorSlot) -> UnsafeMutablePointer<Float> { arena.gradients(slot).baseAddress! }
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
    static func sizes(_ B: Int, _ T: Int, _ C: Int, _ heads: Int) -> [[Int]] {
        [[B, T, C], [B, T], [B, T], [B, T, 3, C], [B, heads, T, T], [B, T, C], [B, T, C],
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

/// The final LayerNorm's activations and the backward pass's gradient buffers, shared by the blocks.
private final class StackBuffers {
    let lnf, lnfMean, lnfRstd, dnormed, dstream, dbranch, dwide, dqkv, attentionScratch: UnsafeMutablePointer<Float>
    /// The last block's output, not owned.
    var finalInput: UnsafePointer<Float>
    private let slab: FloatSlab

    /// The buffers' sizes as factors, in the order of the properties.
    static func sizes(_ B: Int, _ T: Int, _ C: Int, _ threads: Int) -> [[Int]] {
        [[B, T, C], [B, T], [B, T], [B, T, C], [B, T, C], [B, T, C], [B, T, 4, C], [B, T, 3, C], [threads, T, T]]
    }

    init(_ slab: FloatSlab) {
        self.slab = slab
        let p = slab.pointers
        (lnf, lnfMean, lnfRstd, dnormed, dstream, dbranch, dwide, dqkv, attentionScratch) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8])
        finalInput = UnsafePointer(lnf)
    }
}
