import Testing
@testable import Training

/// The transformer layers' backward against central finite differences of loss = Σ out · probe.
@Suite struct TransformerLayerTests {
    typealias Check = GradientCheckTests

    /// Whether `analytic` matches the finite difference of `loss` at every index of `values`.
    static func matches(_ analytic: [Float], _ values: UnsafeMutablePointer<Float>, _ loss: () -> Double) -> Bool {
        analytic.indices.allSatisfy { Check.close(analytic[$0], Check.numericGradient(values, $0, step: 1e-2, loss)) }
    }

    @Test func layerNormBackwardMatchesFiniteDifferences() {
        let (rows, channels) = (3, 7)
        let input = Check.buffer(Check.randomArray(rows * channels, seed: 1, scale: 2))
        let weight = Check.buffer(Check.randomArray(channels, seed: 2))
        let bias = Check.buffer(Check.randomArray(channels, seed: 3))
        let probe = Check.randomArray(rows * channels, seed: 4)
        var mean = [Float](repeating: 0, count: rows), rstd = mean
        func loss() -> Double {
            var out = [Float](repeating: 0, count: rows * channels)
            LayerNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: input, weight: weight, bias: bias, rows: rows, channels: channels)
            return zip(out, probe).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        _ = loss()
        var dinput = [Float](repeating: 0, count: rows * channels)
        var dweight = [Float](repeating: 9, count: channels), dbias = dweight   // overwritten, not accumulated
        LayerNorm.backward(dinp: &dinput, dweight: &dweight, dbias: &dbias, dout: probe, inp: input, weight: weight,
                           mean: mean, rstd: rstd, rows: rows, channels: channels)
        #expect(Self.matches(dinput, input, loss))
        #expect(Self.matches(dweight, weight, loss))
        #expect(Self.matches(dbias, bias, loss))
    }

    @Test func embeddingBackwardMatchesFiniteDifferences() {
        let (batch, positions, channels, vocabulary) = (2, 3, 4, 5)
        let tokens: [Int32] = [0, 3, 3, 4, 0, 1]   // repeated tokens sum their gradients
        let wte = Check.buffer(Check.randomArray(vocabulary * channels, seed: 5))
        let wpe = Check.buffer(Check.randomArray(positions * channels, seed: 6))
        let probe = Check.randomArray(batch * positions * channels, seed: 7)
        func loss() -> Double {
            var out = [Float](repeating: 0, count: batch * positions * channels)
            Embedding.forward(out: &out, tokens: tokens, wte: wte, wpe: wpe, batch: batch, positions: positions, channels: channels)
            return zip(out, probe).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        var dwte = [Float](repeating: 9, count: vocabulary * channels), dwpe = [Float](repeating: 9, count: positions * channels)
        Embedding.backward(dwte: &dwte, vocabulary: vocabulary, dwpe: &dwpe, dout: probe, tokens: tokens,
                           batch: batch, positions: positions, channels: channels)
        #expect(Self.matches(dwte, wte, loss))
        #expect(Self.matches(dwpe, wpe, loss))
    }

    @Test(arguments: [true, false]) func attentionBackwardMatchesFiniteDifferences(causal: Bool) {
        let (batch, positions, channels, heads) = (2, 5, 6, 2)
        let qkv = Check.buffer(Check.randomArray(batch * positions * 3 * channels, seed: 8))
        let probe = Check.randomArray(batch * positions * channels, seed: 9)
        var att = [Float](repeating: 0, count: batch * heads * positions * positions)
        func loss() -> Double {
            var out = [Float](repeating: 0, count: batch * positions * channels)
            Attention.forward(out: &out, att: &att, qkv: qkv, batch: batch, positions: positions, channels: channels, heads: heads, causal: causal)
            return zip(out, probe).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        _ = loss()
        if causal {
            // Position 0 sees only itself; no weight reaches a later position.
            #expect(att[0] == 1 && (1..<positions).allSatisfy { att[$0] == 0 })
        }
        var dqkv = [Float](repeating: 9, count: batch * positions * 3 * channels)
        var scratch = [Float](repeating: 0, count: positions * positions)
        Attention.backward(dqkv: &dqkv, scratch: &scratch, threads: 1, dout: probe, qkv: qkv, att: att,
                           batch: batch, positions: positions, channels: channels, heads: heads, causal: causal)
        #expect(Self.matches(dqkv, qkv, loss))
    }

    @Test func patchEmbeddingBackwardMatchesFiniteDifferences() {
        let (batch, height, width, size, channels) = (2, 4, 6, 2, 3)
        let positions = (height / size) * (width / size)
        let images = Check.randomArray(batch * height * width, seed: 20)
        let weight = Check.buffer(Check.randomArray(channels * size * size, seed: 21))
        let bias = Check.buffer(Check.randomArray(channels, seed: 22))
        let wpe = Check.buffer(Check.randomArray(positions * channels, seed: 23))
        let probe = Check.randomArray(batch * positions * channels, seed: 24)
        var patches = [Float](repeating: 0, count: batch * positions * size * size)
        func loss() -> Double {
            var out = [Float](repeating: 0, count: batch * positions * channels)
            PatchEmbedding.forward(out: &out, patches: &patches, images: images, weight: weight, bias: bias, wpe: wpe,
                                   batch: batch, height: height, width: width, size: size, channels: channels)
            return zip(out, probe).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        _ = loss()
        // Patch 4 of image 1 is rows 2–3, columns 2–3 of the second image.
        let second = 1 * height * width
        #expect(Array(patches[(positions + 4) * 4 ..< (positions + 5) * 4])
                == [images[second + 2 * width + 2], images[second + 2 * width + 3], images[second + 3 * width + 2], images[second + 3 * width + 3]])
        var dweight = [Float](repeating: 9, count: channels * size * size), dbias = [Float](repeating: 9, count: channels)
        var dwpe = [Float](repeating: 9, count: positions * channels)
        PatchEmbedding.backward(dweight: &dweight, dbias: &dbias, dwpe: &dwpe, dout: probe, patches: patches, weight: weight,
                                batch: batch, positions: positions, size: size, channels: channels)
        #expect(Self.matches(dweight, weight, loss))
        #expect(Self.matches(dbias, bias, loss))
        #expect(Self.matches(dwpe, wpe, loss))
    }

    @Test func meanPoolBackwardMatchesFiniteDifferences() {
        let (batch, positions, channels) = (2, 3, 4)
        let input = Check.buffer(Check.randomArray(batch * positions * channels, seed: 25))
        let probe = Check.randomArray(batch * channels, seed: 26)
        func loss() -> Double {
            var out = [Float](repeating: 0, count: batch * channels)
            MeanPool.forward(out: &out, inp: input, batch: batch, positions: positions, channels: channels)
            return zip(out, probe).reduce(0) { $0 + Double($1.0 * $1.1) }
        }
        var dinput = [Float](repeating: 9, count: batch * positions * channels)
        MeanPool.backward(dinp: &dinput, dout: probe, batch: batch, positions: positions, channels: channels)
        #expect(Self.matches(dinput, input, loss))
    }
}
