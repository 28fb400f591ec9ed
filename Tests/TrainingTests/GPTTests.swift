import Testing
@testable import Training

/// The whole GPT: its gradient against finite differences, and its checks on the shape.
@Suite struct GPTTests {
    static let configuration = GPTConfiguration(vocabulary: 7, context: 4, layers: 2, channels: 8, heads: 2)

    static func batch(windows: Int, positions: Int, seed: UInt64) -> TokenBatch {
        TokenBatch.synthetic(windows: windows, positions: positions, vocabulary: 7, seed: seed)
    }

    /// Backward announces the head, the final LayerNorm and each block as they are done.
    @Test func backwardAnnouncesFinalGradientsBlockByBlock() throws {
        let model = try GPT(Self.configuration, maxBatch: 2, seed: 11)
        let watermarks = GradientCheckTests.checkGradientsReady(model, Self.batch(windows: 2, positions: 4, seed: 13))
        let slot = { (name: String) in model.arena.slots.first { $0.name == name }?.offset ?? -1 }
        #expect(watermarks == [slot("head.weight"), slot("lnf.weight"), slot("block1.ln1.weight"), slot("block0.ln1.weight"), 0])
    }

    @Test(arguments: [4, 3]) func gradientMatchesFiniteDifferences(positions: Int) throws {
        let model = try GPT(Self.configuration, maxBatch: 2, seed: 11)
        let (analytic, worst, name) = GradientCheckTests.checkModelGradient(model, Self.batch(windows: 2, positions: positions, seed: 13))
        #expect(worst <= 1, "worst gradient: \(name)")
        // Every tensor gets a gradient, except the position rows this batch does not reach.
        for slot in model.arena.slots {
            let values = analytic[slot.offset..<slot.offset + slot.count]
            if slot.name == "wpe" {
                #expect(values.dropFirst(positions * 8).allSatisfy { $0 == 0 } && values.prefix(positions * 8).contains { $0 != 0 })
            } else {
                #expect(values.contains { $0 != 0 }, "\(slot.name) has no gradient")
            }
        }
    }

    @Test func refusesWidthsTheHeadsDoNotDivide() {
        var configuration = Self.configuration
        configuration.heads = 3
        #expect(throws: TrainingError.invalidConfiguration("the width 8 is not divisible by the 3 heads; choose --channels a multiple of --heads")) {
            try GPT(configuration, maxBatch: 1, seed: 0)
        }
    }

    @Test func initializesAsGPT2() throws {
        let model = try GPT(GPTConfiguration(vocabulary: 50, context: 16, layers: 4, channels: 64, heads: 4), maxBatch: 1, seed: 3)
        func std(_ name: String) throws -> Double {
            let slot = try #require(model.arena.slots.first { $0.name == name })
            let values = model.arena.parameters(slot).map(Double.init)
            return (values.reduce(0) { $0 + $1 * $1 } / Double(values.count)).squareRoot()
        }
        #expect(abs(try std("block0.qkv.weight") - 0.02) < 0.001)
        #expect(abs(try std("block3.fcproj.weight") - 0.02 / 8.0.squareRoot()) < 0.0005)
        #expect(try std("block1.ln2.weight") == 1 && (try std("head.bias")) == 0)
    }
}
