import Collectives
/// The shape of a ``ViT``.
public struct ViTConfiguration: Sendable, Equatable {
    /// Image rows and columns (single-channel images).
    public var imageHeight: Int, imageWidth: Int
    /// The side of a square patch; it divides both image sides.
    public var patchSize: Int
    /// Classes the head scores.
    public var classes: Int
    /// Transformer blocks.
    public var layers: Int
    /// Width of the residual stream.
    public var channels: Int
    /// Attention heads; they divide ``channels``.
    public var heads: Int

    /// A configuration; ``ViT/init(_:maxBatch:seed:)`` checks it.
    public init(imageHeight: Int, imageWidth: Int, patchSize: Int, classes: Int, layers: Int, channels: Int, heads: Int) {
        (self.imageHeight, self.imageWidth, self.patchSize, self.classes) = (imageHeight, imageWidth, patchSize, classes)
        (self.layers, self.channels, self.heads) = (layers, channels, heads)
    }

    /// Patches per image: the sequence length the transformer sees.
    public var positions: Int { (imageHeight / patchSize) * (imageWidth / patchSize) }
}

/// A Vision Transformer classifier: ``PatchEmbedding`` (patches projected to the width, plus
/// a learned position embedding), a bidirectional ``TransformerStack`` (the GPT's pre-LN
/// blocks and final LayerNorm), the mean over patches (``MeanPool``; the "global average
/// pooling" ViT of Beyer et al., in place of a class token) and a linear head, softmax
/// cross-entropy over the classes. Every parameter lives in one ``ParameterArena``,
/// initialized by GPT-2's scheme; it takes the same ``LabelledBatch`` as ``MLP``.
public final class ViT: Model {
    /// The shape.
    public let configuration: ViTConfiguration
    /// The most images a batch may hold.
    public let maxBatch: Int
    /// Parameters and gradients.
    public let arena: ParameterArena

    private let patch: (weight: TensorSlot, bias: TensorSlot), wpe: TensorSlot
    private let stack: TransformerStack
    private let head: (weight: TensorSlot, bias: TensorSlot)
    private let buffers: Buffers
    private var images = 0

    /// A model of `configuration` for batches of up to `maxBatch` images, initialized from
    /// `seed` (``TransformerStack/initializeAsGPT2(_:layers:seed:)``).
    public init(_ configuration: ViTConfiguration, maxBatch: Int, seed: UInt64) throws {
        let c = configuration
        guard c.imageHeight > 0, c.imageWidth > 0, c.patchSize > 0, c.classes > 0, c.layers > 0, c.channels > 0, c.heads > 0, maxBatch > 0 else {
            throw TrainingError.invalidConfiguration("a ViT needs a positive image size, patch size, class count, layer count, width, head count and batch (got \(configuration), batch \(maxBatch))")
        }
        guard c.imageHeight % c.patchSize == 0 && c.imageWidth % c.patchSize == 0 else {
            let fitting = (1...min(c.imageHeight, c.imageWidth)).filter { c.imageHeight % $0 == 0 && c.imageWidth % $0 == 0 }
            throw TrainingError.invalidConfiguration("the patch size \(c.patchSize) does not divide the \(c.imageHeight)×\(c.imageWidth) images; choose --patch-size among \(fitting.map(String.init).joined(separator: ", "))")
        }
        guard c.channels % c.heads == 0 else {
            throw TrainingError.invalidConfiguration("the width \(c.channels) is not divisible by the \(c.heads) heads; choose --channels a multiple of --heads")
        }
        self.configuration = configuration
        self.maxBatch = maxBatch
        let (T, C, P) = (c.positions, c.channels, c.patchSize)
        let tensors = [("patch.weight", [C, P * P]), ("patch.bias", [C]), ("wpe", [T, C])]
            + TransformerStack.tensors(layers: c.layers, channels: C) + [("head.weight", [c.classes, C]), ("head.bias", [c.classes])]
        let bufferSizes = Buffers.sizes(maxBatch: maxBatch, configuration)
        let threads = max(1, Parallel.threads)  // attention's backward gets scratch for each
        guard let activationFloats = FloatSlab.sum(TransformerStack.activationFloats(maxBatch: maxBatch, positions: T, channels: C, heads: c.heads, layers: c.layers, threads: threads),
                                                   FloatSlab.floats(bufferSizes)) else {
            throw TrainingError.invalidConfiguration("the activations of \(maxBatch) images of \(T) patches through \(c.layers) layers of width \(C) are more floats than can be counted; use a smaller --batch-size, --layers or --channels, or a larger --patch-size")
        }
        let arena = try ParameterArena(tensors: tensors, activationFloats: activationFloats)
        self.arena = arena
        (patch, wpe) = ((arena.slots[0], arena.slots[1]), arena.slots[2])
        let last = arena.slots.count
        stack = TransformerStack(arena: arena, slots: arena.slots[3 ..< last - 2], layers: c.layers, channels: C, heads: c.heads, causal: false,
                                 maxBatch: maxBatch, positions: T, threads: threads)
        head = (arena.slots[last - 2], arena.slots[last - 1])
        buffers = Buffers(FloatSlab(bufferSizes))
        TransformerStack.initializeAsGPT2(arena, layers: c.layers, seed: seed)
    }

    /// Runs `batch`'s images (rows of height × width pixels) through the model; returns the
    /// summed cross-entropy and the images classified correctly.
    public func forward(_ batch: LabelledBatch) -> BatchResult {
        let c = configuration
        let (B, T, C) = (batch.count, c.positions, c.channels)
        precondition(B > 0 && B <= maxBatch && batch.featureCount == c.imageHeight * c.imageWidth,
                     "ViT.forward: \(B) rows of \(batch.featureCount) pixels do not fit \(maxBatch) images of \(c.imageHeight)×\(c.imageWidth)")
        images = B
        PatchEmbedding.forward(out: buffers.embedded, patches: buffers.patches, images: batch.features.baseAddress!,
                               weight: parameters(patch.weight), bias: parameters(patch.bias), wpe: parameters(wpe),
                               batch: B, height: c.imageHeight, width: c.imageWidth, size: c.patchSize, channels: C)
        let normed = stack.forward(buffers.embedded, batch: B, positions: T)
        MeanPool.forward(out: buffers.pooled, inp: normed, batch: B, positions: T, channels: C)
        Linear.forward(out: buffers.logits, inp: buffers.pooled, weight: parameters(head.weight), bias: parameters(head.bias), batch: B, inputs: C, outputs: c.classes)
        let (lossSum, correct) = SoftmaxCrossEntropy.forward(probs: buffers.probabilities, logits: buffers.logits, labels: batch.labels.baseAddress!, batch: B, classes: c.classes)
        return BatchResult(lossSum: lossSum, correct: correct, count: B)
    }

    /// Writes the gradient of the mean loss of the last ``forward(_:)`` into ``arena``.
    public func backward(_ batch: LabelledBatch) { backward(batch, gradientsReady: { _ in }) }

    /// ``backward(_:)``, reporting final gradients after the head, the final LayerNorm and
    /// each block (the arena holds them after the patch embedding, in order), and 0 at the end.
    public func backward(_ batch: LabelledBatch, gradientsReady: (_ firstFinalGradient: Int) throws -> Void) rethrows {
        let c = configuration
        let (B, T, C) = (images, c.positions, c.channels)
        SoftmaxCrossEntropy.backward(dlogits: buffers.dlogits, probs: buffers.probabilities, labels: batch.labels.baseAddress!, batch: B, classes: c.classes, normalizer: B)
        Linear.backward(dinp: buffers.dpooled, dweight: gradients(head.weight), dbias: gradients(head.bias), dout: buffers.dlogits,
                        inp: buffers.pooled, weight: parameters(head.weight), batch: B, inputs: C, outputs: c.classes)
        try gradientsReady(head.weight.offset)
        MeanPool.backward(dinp: stack.outputGradient, dout: buffers.dpooled, batch: B, positions: T, channels: C)
        let dembedded = try stack.backward(blockDone: gradientsReady)
        PatchEmbedding.backward(dweight: gradients(patch.weight), dbias: gradients(patch.bias), dwpe: gradients(wpe), dout: dembedded,
                                patches: buffers.patches, weight: parameters(patch.weight), batch: B, positions: T, size: c.patchSize, channels: C)
        try gradientsReady(0)
    }

    private func parameters(_ slot: TensorSlot) -> UnsafePointer<Float> { UnsafePointer(arena.parameters(slot).baseAddress!) }
    private func gradients(_ slot: TensorSlot) -> UnsafeMutablePointer<Float> { arena.gradients(slot).baseAddress! }
}

/// The ViT's own activations (the stack keeps the rest) and the head's gradients.
private final class Buffers {
    let patches, embedded, pooled, logits, probabilities, dlogits, dpooled: UnsafeMutablePointer<Float>
    private let slab: FloatSlab

    /// The buffers' sizes as factors, in the order of the properties.
    static func sizes(maxBatch B: Int, _ c: ViTConfiguration) -> [[Int]] {
        let (T, C, K) = (c.positions, c.channels, c.classes)
        return [[B, T, c.patchSize, c.patchSize], [B, T, C], [B, C], [B, K], [B, K], [B, K], [B, C]]
    }

    init(_ slab: FloatSlab) {
        self.slab = slab
        let p = slab.pointers
        (patches, embedded, pooled, logits, probabilities, dlogits, dpooled) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6])
    }
}
