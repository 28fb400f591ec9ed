/// The body GPT and ViT share: `layers` pre-LN transformer blocks, each
/// x + attproj(attention(qkv(ln1(x)))) followed by + fcproj(gelu(fc(ln2(·)))) with a 4× wide
/// MLP, then a final LayerNorm. Its parameters are slots of the model's arena, named
/// `block<l>.…` and `lnf.…`; its activations are allocated once for `maxBatch` sequences of
/// up to `positions` tokens.
///
/// Everything but the weight gradients is local to a sequence, so the batch is cut into
/// ``SequenceChunks`` that the rank's threads share out (``BLAS/concurrently(tasks:maxPieces:_:)``),
/// each chunk on one thread from one block to the next. The weight gradients are then one
/// product each over the whole batch, and the vector gradients (biases, LayerNorm weights)
/// sums of each chunk's sums in chunk order. The chunks depend only on the batch's shape, so
/// the arithmetic is the same on any number of threads.
final class TransformerStack {
    /// Blocks, width, heads, and whether attention is causal (GPT) or bidirectional (ViT).
    let layers: Int, channels: Int, heads: Int, causal: Bool
    /// The longest batch of sequences the activations hold.
    let maxBatch: Int, maxPositions: Int
    /// The most threads that share a batch's chunks (attention's backward has scratch for each).
    let threads: Int
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
    /// whose chunks run on up to `threads` threads.
    init(arena: ParameterArena, slots: ArraySlice<TensorSlot>, layers: Int, channels: Int, heads: Int, causal: Bool,
         maxBatch: Int, positions: Int, threads: Int) {
        precondition(slots.count == 12 * layers + 2, "TransformerStack: \(slots.count) slots for \(layers) layers")
        (self.arena, self.layers, self.channels, self.heads, self.causal) = (arena, layers, channels, heads, causal)
        (self.maxBatch, maxPositions, self.threads) = (maxBatch, positions, threads)
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
        var x = input
        for a in activations {
            a.input = x
            x = UnsafePointer(a.output)
        }
        buffers.finalInput = x
        forEachChunk { _, _, sequences in forward(sequences: sequences, positions: T) }
        return forwardOutput
    }

    /// ``forward(_:batch:positions:)`` of one chunk's sequences.
    private func forward(sequences: Range<Int>, positions T: Int) {
        let (rows, first, C) = (sequences.count * T, sequences.lowerBound * T, channels)
        for (block, a) in zip(blocks, activations) {
            let x = a.input + first * C, ln1 = a.ln1 + first * C, qkv = a.qkv + first * 3 * C, attended = a.attended + first * C
            let residual = a.residual + first * C, ln2 = a.ln2 + first * C, fc = a.fc + first * 4 * C, fcGELU = a.fcGELU + first * 4 * C
            LayerNorm.forward(out: ln1, mean: a.ln1Mean + first, rstd: a.ln1Rstd + first, inp: x,
                              weight: parameters(block.ln1.weight), bias: parameters(block.ln1.bias), rows: rows, channels: C)
            Linear.forward(out: qkv, inp: ln1, weight: parameters(block.qkv.weight), bias: parameters(block.qkv.bias), batch: rows, inputs: C, outputs: 3 * C)
            Attention.forward(out: attended, att: a.att + sequences.lowerBound * heads * T * T, qkv: qkv,
                              batch: sequences.count, positions: T, channels: C, heads: heads, causal: causal)
            Linear.forward(out: residual, inp: attended, weight: parameters(block.attproj.weight), bias: parameters(block.attproj.bias),
                           batch: rows, inputs: C, outputs: C, residual: x)
            LayerNorm.forward(out: ln2, mean: a.ln2Mean + first, rstd: a.ln2Rstd + first, inp: residual,
                              weight: parameters(block.ln2.weight), bias: parameters(block.ln2.bias), rows: rows, channels: C)
            Linear.forward(out: fc, inp: ln2, weight: parameters(block.fc.weight), bias: parameters(block.fc.bias), batch: rows, inputs: C, outputs: 4 * C)
            GELU.forward(out: fcGELU, inp: fc, count: rows * 4 * C)
            Linear.forward(out: a.output + first * C, inp: fcGELU, weight: parameters(block.fcproj.weight), bias: parameters(block.fcproj.bias),
                           batch: rows, inputs: 4 * C, outputs: C, residual: residual)
        }
        let b = buffers
        LayerNorm.forward(out: b.lnf + first * C, mean: b.lnfMean + first, rstd: b.lnfRstd + first, inp: b.finalInput + first * C,
                          weight: parameters(finalNorm.weight), bias: parameters(finalNorm.bias), rows: rows, channels: C)
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
        let (N, C, b) = (B * T, channels, buffers)
        // The gradient of the residual stream at the current block's output, and where the
        // block writes the one at its input.
        var (stream, next) = (b.streams.0, b.streams.1)
        forEachChunk { _, chunk, sequences in
            let (rows, first) = (sequences.count * T, sequences.lowerBound * T)
            let partial = partials(of: chunk)
            LayerNorm.backward(dinp: stream + first * C, dweight: partial, dbias: partial + C, dout: b.dnormed + first * C,
                               inp: b.finalInput + first * C, weight: parameters(finalNorm.weight),
                               mean: b.lnfMean + first, rstd: b.lnfRstd + first, rows: rows, channels: C)
        }
        sumChunkPartials(of: [finalNorm.weight, finalNorm.bias])
        try blockDone(finalNorm.weight.offset)
        for (block, a) in zip(blocks, activations).reversed() {
            forEachChunk { piece, chunk, sequences in
                backward(block, a, dout: stream, dinp: next, sequences: sequences, positions: T,
                         partial: partials(of: chunk), scratch: b.attentionScratch + piece * T * T)
            }
            Linear.weightGradient(dweight: gradients(block.fcproj.weight), dout: stream, inp: a.fcGELU, batch: N, inputs: 4 * C, outputs: C)
            Linear.weightGradient(dweight: gradients(block.fc.weight), dout: b.dwide, inp: a.ln2, batch: N, inputs: C, outputs: 4 * C)
            Linear.weightGradient(dweight: gradients(block.attproj.weight), dout: b.dresidual, inp: a.attended, batch: N, inputs: C, outputs: C)
            Linear.weightGradient(dweight: gradients(block.qkv.weight), dout: b.dqkv, inp: a.ln1, batch: N, inputs: C, outputs: 3 * C)
            sumChunkPartials(of: BlockPartials.tensors(block))
            (stream, next) = (next, stream)
            try blockDone(block.ln1.weight.offset)
        }
        return UnsafePointer(stream)
    }

    /// One block's backward over one chunk's sequences, all but the weight gradients: from
    /// `dout`, the gradient at the block's output, writes `dinp`, the gradient at its input,
    /// the gradients at each weight's output that the weights' products read, and the chunk's
    /// sums of the vector gradients into `partial` (``BlockPartials``).
    private func backward(_ block: BlockSlots, _ a: BlockActivations, dout: UnsafePointer<Float>, dinp: UnsafeMutablePointer<Float>,
                          sequences: Range<Int>, positions T: Int, partial: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let (rows, first, C, b) = (sequences.count * T, sequences.lowerBound * T, channels, buffers)
        let sums = BlockPartials(partial, block)
        let dout = dout + first * C, dwide = b.dwide + first * 4 * C, dln2 = b.dln2 + first * C, dresidual = b.dresidual + first * C
        let dattended = b.dattended + first * C, dqkv = b.dqkv + first * 3 * C, dln1 = b.dln1 + first * C
        // MLP half: output = residual + fcproj(gelu(fc(ln2(residual)))).
        Linear.biasGradient(dbias: sums.fcprojBias, dout: dout, batch: rows, outputs: C)
        Linear.inputGradient(dinp: dwide, dout: dout, weight: parameters(block.fcproj.weight), batch: rows, inputs: 4 * C, outputs: C)
        GELU.backward(dinp: dwide, inp: a.fc + first * 4 * C, dout: dwide, rows: rows, columns: 4 * C, columnSums: sums.fcBias)
        Linear.inputGradient(dinp: dln2, dout: dwide, weight: parameters(block.fc.weight), batch: rows, inputs: C, outputs: 4 * C)
        LayerNorm.backward(dinp: dresidual, dweight: sums.ln2Weight, dbias: sums.ln2Bias, dout: dln2, inp: a.residual + first * C,
                           weight: parameters(block.ln2.weight), mean: a.ln2Mean + first, rstd: a.ln2Rstd + first, rows: rows, channels: C,
                           residual: dout)
        // Attention half: residual = input + attproj(attention(qkv(ln1(input)))).
        Linear.biasGradient(dbias: sums.attprojBias, dout: dresidual, batch: rows, outputs: C)
        Linear.inputGradient(dinp: dattended, dout: dresidual, weight: parameters(block.attproj.weight), batch: rows, inputs: C, outputs: C)
        Attention.backward(dqkv: dqkv, scratch: scratch, threads: threads, dout: dattended, qkv: a.qkv + first * 3 * C,
                           att: a.att + sequences.lowerBound * heads * T * T, batch: sequences.count, positions: T, channels: C, heads: heads, causal: causal)
        Linear.biasGradient(dbias: sums.qkvBias, dout: dqkv, batch: rows, outputs: 3 * C)
        Linear.inputGradient(dinp: dln1, dout: dqkv, weight: parameters(block.qkv.weight), batch: rows, inputs: C, outputs: 3 * C)
        LayerNorm.backward(dinp: dinp + first * C, dweight: sums.ln1Weight, dbias: sums.ln1Bias, dout: dln1, inp: a.input + first * C,
                           weight: parameters(block.ln1.weight), mean: a.ln1Mean + first, rstd: a.ln1Rstd + first, rows: rows, channels: C,
                           residual: dresidual)
    }

    /// Runs `body(piece, chunk, sequences)` for each chunk of the last forward's batch, the
    /// chunks shared out over up to ``threads`` threads (piece numbers them): for a model's
    /// own work on the rows the stack reads or writes (a head, say).
    func forEachChunk(_ body: (_ piece: Int, _ chunk: Int, _ sequences: Range<Int>) -> Void) {
        let chunks = self.chunks
        BLAS.concurrently(tasks: chunks.count, maxPieces: threads) { piece, range in
            for chunk in range { body(piece, chunk, chunks.sequences(chunk)) }
        }
    }

    /// The last forward's chunks (``SequenceChunks``).
    var chunks: SequenceChunks { SequenceChunks(batch: shape.batch, positions: shape.positions) }

    /// Chunk `chunk`'s row of ``StackBuffers/partials``.
    private func partials(of chunk: Int) -> UnsafeMutablePointer<Float> { buffers.partials + chunk * StackBuffers.partialWidth(channels) }

    /// Writes the gradients of `tensors` from the chunks' partial sums (``StackBuffers/partials``).
    private func sumChunkPartials(of tensors: [TensorSlot]) {
        chunks.addUp(buffers.partials, width: StackBuffers.partialWidth(channels), into: tensors.map { arena.gradients($0) })
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
    let lnf, lnfMean, lnfRstd, dnormed: UnsafeMutablePointer<Float>
    /// The residual stream's gradient at a block's output and at its input, swapped block by block.
    let streams: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
    /// The gradients at the outputs of fc (after GELU), ln2, the attention half and qkv, and
    /// at attention's and ln1's outputs: what the weight gradients read after a block's chunks.
    let dwide, dln2, dresidual, dattended, dqkv, dln1: UnsafeMutablePointer<Float>
    /// One positions × positions square per thread, for attention's backward.
    let attentionScratch: UnsafeMutablePointer<Float>
    /// One row of ``partialWidth(_:)`` floats per chunk: its sums of the vector gradients.
    let partials: UnsafeMutablePointer<Float>
    /// The last block's output, not owned.
    var finalInput: UnsafePointer<Float>
    private let slab: FloatSlab

    /// Floats per chunk in ``partials``: a block's vector tensors (``BlockPartials``).
    static func partialWidth(_ C: Int) -> Int { 13 * C }

    /// The buffers' sizes as factors, in the order of the properties.
    static func sizes(_ B: Int, _ T: Int, _ C: Int, _ threads: Int) -> [[Int]] {
        [[B, T, C], [B, T], [B, T], [B, T, C], [B, T, C], [B, T, C],
         [B, T, 4, C], [B, T, C], [B, T, C], [B, T, C], [B, T, 3, C], [B, T, C],
         [threads, T, T], [SequenceChunks.maxCount(batch: B, positions: T), partialWidth(C)]]
    }

    init(_ slab: FloatSlab) {
        self.slab = slab
        let p = slab.pointers
        (lnf, lnfMean, lnfRstd, dnormed, streams) = (p[0], p[1], p[2], p[3], (p[4], p[5]))
        (dwide, dln2, dresidual, dattended, dqkv, dln1) = (p[6], p[7], p[8], p[9], p[10], p[11])
        (attentionScratch, partials) = (p[12], p[13])
        finalInput = UnsafePointer(lnf)
    }
}

/// Where one chunk's sums of a block's vector gradients sit in its row of
/// ``StackBuffers/partials``: side by side, in the order of ``tensors(_:)``.
private struct BlockPartials {
    let fcprojBias, fcBias, ln2Weight, ln2Bias, attprojBias, qkvBias, ln1Weight, ln1Bias: UnsafeMutablePointer<Float>

    /// The block's vector tensors, in the order backward produces them.
    static func tensors(_ block: BlockSlots) -> [TensorSlot] {
        [block.fcproj.bias, block.fc.bias, block.ln2.weight, block.ln2.bias, block.attproj.bias, block.qkv.bias, block.ln1.weight, block.ln1.bias]
    }

    init(_ row: UnsafeMutablePointer<Float>, _ block: BlockSlots) {
        var next = row
        let p = BlockPartials.tensors(block).map { slot in
            defer { next += slot.count }
            return next
        }
        (fcprojBias, fcBias, ln2Weight, ln2Bias) = (p[0], p[1], p[2], p[3])
        (attprojBias, qkvBias, ln1Weight, ln1Bias) = (p[4], p[5], p[6], p[7])
    }
}

/// A batch's sequences cut into ``count`` chunks of whole sequences, as even as can be and of
/// at least ``minimumRows`` rows where the batch has that many: the unit of work a rank's
/// threads share in a ``TransformerStack``. They depend on the batch's shape only.
struct SequenceChunks {
    /// Rows (sequences × positions) a chunk holds at least, so that its products stay large
    /// enough to run near the BLAS's speed.
    static let minimumRows = 256

    /// How many chunks there are.
    let count: Int
    private let batch: Int

    /// The chunks of `batch` sequences of `positions` rows.
    init(batch: Int, positions: Int) {
        self.batch = batch
        count = max(1, min(batch, batch * positions / SequenceChunks.minimumRows))
    }

    /// The most chunks a batch of up to `batch` sequences of up to `positions` rows makes.
    static func maxCount(batch: Int, positions: Int) -> Int { SequenceChunks(batch: batch, positions: positions).count }

    /// The sequences of chunk `chunk`.
    func sequences(_ chunk: Int) -> Range<Int> { chunk * batch / count ..< (chunk + 1) * batch / count }

    /// Writes each of `totals` as the sum over the chunks, in chunk order, of its partial sums:
    /// `partials` holds a row of `width` floats per chunk, with the partial sums of `totals`
    /// side by side in their order.
    func addUp(_ partials: UnsafePointer<Float>, width: Int, into totals: [UnsafeMutableBufferPointer<Float>]) {
        var offset = 0
        for total in totals {
            guard let base = total.baseAddress else { continue }
            base.update(from: partials + offset, count: total.count)
            for chunk in 1..<max(1, count) { add(base, partials + chunk * width + offset, count: total.count) }
            offset += total.count
        }
    }
}
