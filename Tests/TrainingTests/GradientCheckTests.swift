import Testing
@testable import Training

/// Checks each backward against central finite differences of a scalar loss.
@Suite struct GradientCheckTests {
    /// Central difference of `loss` with respect to `values[index]`.
    static func numericGradient(_ values: UnsafeMutablePointer<Float>, _ index: Int, step: Float = 1e-2,
                                _ loss: () -> Double) -> Double {
        let saved = values[index]
        values[index] = saved + step
        let plus = loss()
        values[index] = saved - step
        let minus = loss()
        values[index] = saved
        return (plus - minus) / Double(2 * step)
    }

    static func close(_ analytic: Float, _ numeric: Double, tolerance: Double = 2e-2) -> Bool {
        abs(Double(analytic) - numeric) <= tolerance * max(1, abs(numeric))
    }

    static func randomArray(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in random.uniform(-scale, scale) }
    }

    /// A heap buffer holding `values`, so a loss closure can read it while a check perturbs it
    /// (arrays would be an overlapping access).
    static func buffer(_ values: [Float]) -> UnsafeMutablePointer<Float> {
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, values.count))
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    /// A whole model's backward on `batch` against finite differences of its mean loss, with
    /// its parameters first perturbed by ±0.3 (larger than GPT-2's 0.02, so that every path
    /// carries a gradient worth checking): the analytic gradients and the worst mismatch,
    /// relative to 5e-4 + 5 % of the numeric value (≤ 1 passes), naming its tensor.
    static func checkModelGradient<M: Model>(_ model: M, _ batch: M.Batch) -> (gradients: [Float], worst: Double, name: String) {
        var random = SplitMix64(seed: 12)
        for index in model.arena.parameters.indices { model.arena.parameters[index] += random.uniform(-0.3, 0.3) }
        func loss() -> Double {
            let result = model.forward(batch)
            return result.lossSum / Double(result.count)
        }
        _ = loss()
        model.backward(batch)
        let analytic = model.arena.withGradients { Array($0) }
        let parameters = model.arena.parameters.baseAddress!
        var worst = (error: 0.0, name: "")
        for slot in model.arena.slots {
            for index in slot.offset..<slot.offset + slot.count {
                let numeric = numericGradient(parameters, index, step: 1e-3, loss)
                let error = abs(Double(analytic[index]) - numeric) / (5e-4 + 0.05 * abs(numeric))
                if error > worst.error { worst = (error, "\(slot.name)[\(index - slot.offset)]: \(analytic[index]) vs \(numeric)") }
            }
        }
        return (analytic, worst.error, worst.name)
    }

    @Test func linearBackwardMatchesFiniteDifferences() {
        let (batch, inputs, outputs) = (3, 5, 4)
        let input = Self.buffer(Self.randomArray(batch * inputs, seed: 1))
        let weight = Self.buffer(Self.randomArray(outputs * inputs, seed: 2))
        let bias = Self.buffer(Self.randomArray(outputs, seed: 3))
        let probe = Self.randomArray(batch * outputs, seed: 4)   // loss = Σ out · probe
        func loss() -> Double {
            var out = [Float](repeating: 0, count: batch * outputs)
            Linear.forward(out: &out, inp: input, weight: weight, bias: bias, batch: batch, inputs: inputs, outputs: outputs)
            return zip(out, probe).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        var dinput = [Float](repeating: 0, count: batch * inputs)
        var dweight = [Float](repeating: 0, count: outputs * inputs)
        var dbias = [Float](repeating: 0, count: outputs)
        Linear.backward(dinp: &dinput, dweight: &dweight, dbias: &dbias, dout: probe, inp: input, weight: weight,
                        batch: batch, inputs: inputs, outputs: outputs)
        for index in dinput.indices { #expect(Self.close(dinput[index], Self.numericGradient(input, index, loss))) }
        for index in dweight.indices { #expect(Self.close(dweight[index], Self.numericGradient(weight, index, loss))) }
        for index in dbias.indices { #expect(Self.close(dbias[index], Self.numericGradient(bias, index, loss))) }
    }

    @Test(arguments: Activation.allCases)
    func activationBackwardMatchesFiniteDifferences(_ activation: Activation) {
        // Values away from ReLU's kink at 0.
        let values = Self.randomArray(40, seed: 5, scale: 3).map { abs($0) < 0.05 ? $0 + 0.1 : $0 }
        let input = Self.buffer(values)
        let probe = Self.randomArray(40, seed: 6)
        func run(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>) {
            switch activation {
            case .relu: ReLU.forward(out: out, inp: inp, count: 40)
            case .gelu: GELU.forward(out: out, inp: inp, count: 40)
            }
        }
        func loss() -> Double {
            var out = [Float](repeating: 0, count: 40)
            run(&out, input)
            return zip(out, probe).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        var dinput = [Float](repeating: 0, count: 40)
        switch activation {
        case .relu: ReLU.backward(dinp: &dinput, inp: input, dout: probe, count: 40)
        case .gelu: GELU.backward(dinp: &dinput, inp: input, dout: probe, count: 40)
        }
        for index in values.indices {
            #expect(Self.close(dinput[index], Self.numericGradient(input, index, step: 1e-3, loss)), "\(activation) at \(values[index])")
        }
    }

    @Test func softmaxCrossEntropyBackwardMatchesFiniteDifferences() {
        let (batch, classes) = (4, 6)
        let logits = Self.buffer(Self.randomArray(batch * classes, seed: 7, scale: 3))
        let labels: [Int32] = [0, 5, 2, 2]
        let probs = Self.buffer([Float](repeating: 0, count: batch * classes))
        func loss() -> Double {
            SoftmaxCrossEntropy.forward(probs: probs, logits: logits, labels: labels, batch: batch, classes: classes).lossSum / Double(batch)
        }
        _ = loss()
        var dlogits = [Float](repeating: 0, count: batch * classes)
        SoftmaxCrossEntropy.backward(dlogits: &dlogits, probs: probs, labels: labels, batch: batch, classes: classes, normalizer: batch)
        for index in dlogits.indices {
            #expect(Self.close(dlogits[index], Self.numericGradient(logits, index, step: 1e-2, loss), tolerance: 1e-2))
        }
    }

    @Test(arguments: Activation.allCases)
    func mlpBackwardMatchesFiniteDifferences(_ activation: Activation) throws {
        let model = try MLP(widths: [7, 6, 5, 3], activation: activation, maxBatch: 4, seed: 11)
        let inputs = Self.randomArray(4 * 7, seed: 12, scale: 2)
        let labels: [Int32] = [0, 2, 1, 2]
        func loss() -> Double { model.forward(inputs: inputs, labels: labels, batch: 4).lossSum / 4 }
        _ = loss()
        model.backward(batch: 4)
        let analytic = model.arena.withGradients { Array($0) }
        let parameters = model.arena.parameters.baseAddress!
        for index in stride(from: 0, to: model.arena.count, by: 3) {
            let numeric = Self.numericGradient(parameters, index, step: 1e-2, loss)
            #expect(Self.close(analytic[index], numeric, tolerance: 3e-2), "parameter \(index)")
        }
    }

    /// A model's backward with a ready callback against its plain backward on `batch` (after
    /// one forward): the same gradients; watermarks that descend strictly and end at 0; every
    /// gradient past a watermark already final when it is announced (the arena's gradients
    /// start as NaN, so one written later would show). Returns the watermarks.
    static func checkGradientsReady<M: Model>(_ model: M, _ batch: M.Batch) -> [Int] {
        _ = model.forward(batch)
        model.backward(batch)
        let plain = model.arena.withGradients { Array($0) }
        model.arena.withGradients { $0.update(repeating: .nan) }
        var announced: [(watermark: Int, gradients: [Float])] = []
        model.backward(batch) { watermark in announced.append((watermark, model.arena.withGradients { Array($0[watermark...]) })) }
        let watermarks = announced.map(\.watermark)
        #expect(model.arena.withGradients { Array($0) } == plain)
        #expect(watermarks.last == 0 && zip(watermarks, watermarks.dropFirst()).allSatisfy { $0 > $1 }, "\(watermarks)")
        for (watermark, gradients) in announced {
            #expect(gradients == Array(plain[watermark...]), "gradients from \(watermark) were not final when announced")
        }
        return watermarks
    }

    /// The MLP announces each layer, or each block of rows of each layer's weight, from the
    /// last layer's last block down to 0; its gradients are the same whatever the block size
    /// (exactly, at these sizes).
    @Test(arguments: [nil, 1 << 18, 12])
    func mlpBackwardAnnouncesFinalGradientsFromTheLastLayer(gradientBlock: Int?) throws {
        let widths = [7, 6, 5, 3]
        let model = try MLP(widths: widths, maxBatch: 4, seed: 11)
        let batch = LabelledBatch(capacity: 4, featureCount: 7)
        batch.fill(from: Dataset(features: Self.randomArray(4 * 7, seed: 12, scale: 2), labels: [0, 2, 1, 2], featureCount: 7, classes: 3),
                   rows: Array(0..<4)[...])
        model.forward(batch)
        model.backward(batch)
        let unblocked = model.arena.withGradients { Array($0) }
        model.gradientBlock = gradientBlock
        let watermarks = Self.checkGradientsReady(model, batch)
        #expect(model.arena.withGradients { Array($0) } == unblocked)
        var expected: [Int] = []
        for layer in (0..<widths.count - 1).reversed() {
            let rows = gradientBlock.map { max(1, $0 / widths[layer]) } ?? widths[layer + 1]
            let offset = model.arena.slots[2 * layer].offset
            expected += stride(from: (widths[layer + 1] - 1) / rows * rows, through: 0, by: -rows).map { offset + $0 * widths[layer] }
        }
        #expect(watermarks == expected && expected.count == (gradientBlock == 12 ? 2 + 3 + 6 : 3), "\(watermarks)")
    }
}
