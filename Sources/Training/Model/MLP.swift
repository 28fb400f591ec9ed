/// The activation function between the layers of an ``MLP``.
public enum Activation: String, Sendable, CaseIterable {
    /// max(0, x).
    case relu
    /// The tanh approximation of GELU.
    case gelu
}

/// A multilayer perceptron classifier: Linear → activation → … → Linear → softmax
/// cross-entropy, with every parameter in one ``ParameterArena``.
///
/// Activation buffers are allocated once for `maxBatch` rows; ``forward(inputs:labels:batch:)``
/// and ``backward(batch:)`` take any batch up to that, and so do the ``Model`` forms on a
/// ``LabelledBatch``.
public final class MLP: Model {
    /// Layer widths, inputs first, classes last: `[784, 1024, 1024, 10]`.
    public let widths: [Int]
    /// The activation after each hidden layer.
    public let activation: Activation
    /// The largest batch the buffers hold.
    public let maxBatch: Int
    /// Parameters and gradients.
    public let arena: ParameterArena
    /// About how many weight gradients ``backward(batch:gradientsReady:)`` computes before it
    /// reports them final, or `nil` (the default) for whole layers. With a block size, a
    /// layer's weight gradient is computed in blocks of whole rows of about this size, from the
    /// last block to the first, so that an optimizer overlapping its exchange with backward
    /// (``OverlappingOptimizer``) can start on a large layer before the layer is done. Every
    /// gradient is the same dot product either way, but OpenBLAS may round a block's GEMM
    /// differently from the whole layer's, in the last bits.
    public var gradientBlock: Int? = nil

    private let weights: [TensorSlot]
    private let biases: [TensorSlot]
    /// preActivations[l]: layer l's linear output (batch × widths[l+1]).
    private let preActivations: [UnsafeMutableBufferPointer<Float>]
    /// activations[l]: layer l's input (batch × widths[l]); activations[0] is the input.
    private let activations: [UnsafeMutableBufferPointer<Float>]
    private let probabilities: UnsafeMutableBufferPointer<Float>
    private let gradientScratch: (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>)
    private let labels: UnsafeMutableBufferPointer<Int32>

    /// A model with the given widths (at least inputs and classes), initialized from `seed`
    /// as PyTorch's `nn.Linear` is: weights and biases uniform in ±1/√fan-in.
    public init(widths: [Int], activation: Activation = .relu, maxBatch: Int, seed: UInt64) throws {
        guard widths.count >= 2, widths.allSatisfy({ $0 > 0 }), maxBatch > 0 else {
            throw TrainingError.invalidConfiguration("an MLP needs at least an input and an output width, all positive, and a batch of at least 1 (got widths \(widths), batch \(maxBatch))")
        }
        self.widths = widths
        self.activation = activation
        self.maxBatch = maxBatch
        let layers = widths.count - 1
        var tensors: [(name: String, shape: [Int])] = []
        for layer in 0..<layers {
            tensors.append(("layer\(layer).weight", [widths[layer + 1], widths[layer]]))
            tensors.append(("layer\(layer).bias", [widths[layer + 1]]))
        }
        let arena = try ParameterArena(tensors: tensors)
        self.arena = arena
        weights = (0..<layers).map { arena.slots[2 * $0] }
        biases = (0..<layers).map { arena.slots[2 * $0 + 1] }

        preActivations = (0..<layers).map { zeroedBuffer(maxBatch * widths[$0 + 1]) }
        activations = (0..<layers).map { zeroedBuffer(maxBatch * widths[$0]) }
        probabilities = zeroedBuffer(maxBatch * widths[layers])
        let widest = widths.max()!
        gradientScratch = (zeroedBuffer(maxBatch * widest), zeroedBuffer(maxBatch * widest))
        labels = .allocate(capacity: maxBatch)
        labels.initialize(repeating: 0)

        var random = SplitMix64(seed: seed)
        for layer in 0..<layers {
            let bound = 1 / Float(widths[layer]).squareRoot()
            for slot in [weights[layer], biases[layer]] {
                let values = arena.parameters(slot)
                for index in values.indices { values[index] = random.uniform(-bound, bound) }
            }
        }
    }

    deinit {
        (preActivations + activations + [probabilities, gradientScratch.0, gradientScratch.1]).forEach { $0.deallocate() }
        labels.deallocate()
    }

    /// The number of classes.
    public var classes: Int { widths.last! }

    /// Runs `batch` rows of `inputs` (batch × widths[0]) through the model; with `labels`,
    /// returns the summed cross-entropy and the number classified correctly, and keeps what
    /// ``backward(batch:)`` needs.
    @discardableResult
    public func forward(inputs: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int) -> BatchResult {
        precondition(batch > 0 && batch <= maxBatch, "MLP.forward: batch \(batch) is outside 1...\(maxBatch)")
        let layers = widths.count - 1
        activations[0].baseAddress!.update(from: inputs, count: batch * widths[0])
        self.labels.baseAddress!.update(from: labels, count: batch)
        for layer in 0..<layers {
            Linear.forward(out: preActivations[layer].baseAddress!, inp: activations[layer].baseAddress!,
                           weight: arena.parameters(weights[layer]).baseAddress!, bias: arena.parameters(biases[layer]).baseAddress!,
                           batch: batch, inputs: widths[layer], outputs: widths[layer + 1])
            if layer + 1 < layers {
                let count = batch * widths[layer + 1]
                switch activation {
                case .relu: ReLU.forward(out: activations[layer + 1].baseAddress!, inp: preActivations[layer].baseAddress!, count: count)
                case .gelu: GELU.forward(out: activations[layer + 1].baseAddress!, inp: preActivations[layer].baseAddress!, count: count)
                }
            }
        }
        let (lossSum, correct) = SoftmaxCrossEntropy.forward(probs: probabilities.baseAddress!, logits: preActivations[layers - 1].baseAddress!,
                                                             labels: labels, batch: batch, classes: classes)
        return BatchResult(lossSum: lossSum, correct: correct, count: batch)
    }

    /// Runs `batch`'s rows through the model (``forward(inputs:labels:batch:)``).
    public func forward(_ batch: LabelledBatch) -> BatchResult {
        forward(inputs: batch.features.baseAddress!, labels: batch.labels.baseAddress!, batch: batch.count)
    }

    /// The gradient of `batch`'s mean loss, after ``forward(_:)`` on it (``backward(batch:)``).
    public func backward(_ batch: LabelledBatch) { backward(batch: batch.count) }

    /// ``backward(_:)``, saying after each layer (or each block of a layer's weight gradient,
    /// ``gradientBlock``) that its gradients, and every one after them, are final (the arena holds the
    /// layers in order, each weight before its bias, so the watermark descends).
    public func backward(_ batch: LabelledBatch, gradientsReady: (_ firstFinalGradient: Int) throws -> Void) rethrows {
        try backward(batch: batch.count, gradientsReady: gradientsReady)
    }

    /// Writes the gradient of the mean loss of the last forward pass's `batch` rows into
    /// ``arena``'s gradients (``backward(batch:gradientsReady:)`` without the callback).
    public func backward(batch: Int) { backward(batch: batch, gradientsReady: { _ in }) }

    /// Writes the gradient of the mean loss of the last forward pass's `batch` rows into
    /// ``arena``'s gradients, every one of them (the layers write rather than accumulate, so
    /// no zeroing pass is needed); after each block of rows of a layer's weight gradient,
    /// `gradientsReady` hears the offset from which the gradients are final.
    public func backward(batch: Int, gradientsReady: (_ firstFinalGradient: Int) throws -> Void) rethrows {
        let layers = widths.count - 1
        var upstream = gradientScratch.0.baseAddress!   // d(preActivation) of the current layer
        var downstream = gradientScratch.1.baseAddress!
        SoftmaxCrossEntropy.backward(dlogits: upstream, probs: probabilities.baseAddress!, labels: labels.baseAddress!,
                                     batch: batch, classes: classes, normalizer: batch)
        for layer in stride(from: layers - 1, through: 0, by: -1) {
            let weight = weights[layer], inputs = widths[layer]
            try Linear.backward(dinp: layer > 0 ? downstream : nil,
                                dweight: arena.gradients(weight).baseAddress!, dbias: arena.gradients(biases[layer]).baseAddress!,
                                dout: upstream, inp: activations[layer].baseAddress!, weight: arena.parameters(weight).baseAddress!,
                                batch: batch, inputs: inputs, outputs: widths[layer + 1],
                                rowsPerBlock: gradientBlock.map { max(1, $0 / inputs) } ?? widths[layer + 1]) {
                try gradientsReady(weight.offset + $0 * inputs)
            }
            guard layer > 0 else { break }
            // Through the activation that produced this layer's input.
            let count = batch * widths[layer]
            switch activation {
            case .relu: ReLU.backward(dinp: downstream, inp: preActivations[layer - 1].baseAddress!, dout: downstream, count: count)
            case .gelu: GELU.backward(dinp: downstream, inp: preActivations[layer - 1].baseAddress!, dout: downstream, count: count)
            }
            swap(&upstream, &downstream)
        }
    }
}
