import Testing
@testable import Training

/// The whole ViT: its gradient against finite differences, learning, and its checks on the shape.
@Suite struct ViTTests {
    static let configuration = ViTConfiguration(imageHeight: 4, imageWidth: 6, patchSize: 2, classes: 3, layers: 2, channels: 8, heads: 2)

    static func batch(images: Int, seed: UInt64) -> LabelledBatch {
        let pixels = 4 * 6
        let dataset = Dataset(features: GradientCheckTests.randomArray(images * pixels, seed: seed),
                              labels: (0..<images).map { Int32($0 % 3) }, featureCount: pixels, classes: 3)
        let batch = LabelledBatch(capacity: images, featureCount: pixels)
        batch.fill(from: dataset, rows: Array(0..<images)[...])
        return batch
    }

    /// Backward announces the head, the final LayerNorm and each block as they are done.
    @Test func backwardAnnouncesFinalGradientsBlockByBlock() throws {
        let model = try ViT(Self.configuration, maxBatch: 3, seed: 11)
        let watermarks = GradientCheckTests.checkGradientsReady(model, Self.batch(images: 3, seed: 13))
        let slot = { (name: String) in model.arena.slots.first { $0.name == name }?.offset ?? -1 }
        let blocks = (0..<Self.configuration.layers).reversed().map { slot("block\($0).ln1.weight") }
        #expect(watermarks == [slot("head.weight"), slot("lnf.weight")] + blocks + [0])
    }

    @Test func gradientMatchesFiniteDifferences() throws {
        let model = try ViT(Self.configuration, maxBatch: 3, seed: 11)
        let (analytic, worst, name) = GradientCheckTests.checkModelGradient(model, Self.batch(images: 3, seed: 13))
        #expect(worst <= 1, "worst gradient: \(name)")
        for slot in model.arena.slots {
            #expect(analytic[slot.offset..<slot.offset + slot.count].contains { $0 != 0 }, "\(slot.name) has no gradient")
        }
    }

    @Test func attentionSeesEveryPatch() throws {
        // Bidirectional: changing the last patch changes the first patch's representation, so
        // the pooled logits of an image depend on every patch even with one layer.
        let model = try ViT(ViTConfiguration(imageHeight: 4, imageWidth: 4, patchSize: 2, classes: 2, layers: 1, channels: 4, heads: 1), maxBatch: 1, seed: 1)
        let batch = LabelledBatch(capacity: 1, featureCount: 16)
        let dataset = Dataset(features: GradientCheckTests.randomArray(16, seed: 2), labels: [0], featureCount: 16, classes: 2)
        batch.fill(from: dataset, rows: [0])
        let before = model.forward(batch).lossSum
        batch.features[15] += 1
        #expect(model.forward(batch).lossSum != before)
    }

    @Test func refusesPatchesThatDoNotDivideTheImage() {
        let configuration = ViTConfiguration(imageHeight: 28, imageWidth: 28, patchSize: 5, classes: 10, layers: 1, channels: 8, heads: 2)
        #expect(throws: TrainingError.invalidConfiguration("the patch size 5 does not divide the 28×28 images; choose --patch-size among 1, 2, 4, 7, 14, 28")) {
            try ViT(configuration, maxBatch: 1, seed: 0)
        }
    }

    @Test func refusesWidthsTheHeadsDoNotDivide() {
        var configuration = Self.configuration
        configuration.heads = 3
        #expect(throws: TrainingError.invalidConfiguration("the width 8 is not divisible by the 3 heads; choose --channels a multiple of --heads")) {
            try ViT(configuration, maxBatch: 1, seed: 0)
        }
    }
}
