import Testing
@testable import Training

@Suite struct SynchronizationRuleTests {
    @Test func qsrGrowsAsTheLearningRateDecays() {
        let rule = SynchronizationRule.quadratic(base: 4, alpha: 0.0175)
        // η = 0.008: (0.0175/0.008)² = 4.78 → H = 4; η = 0.004: 19.1 → 19; η = 0.001: 306.
        #expect(rule.period(learningRate: 0.008, warmingUp: false, stepsLeft: 1000) == (4, false))
        #expect(rule.period(learningRate: 0.004, warmingUp: false, stepsLeft: 1000) == (19, false))
        #expect(rule.period(learningRate: 0.001, warmingUp: false, stepsLeft: 1000) == (306, false))
        #expect(rule.period(learningRate: 0.001, warmingUp: true, stepsLeft: 1000) == (4, false))
    }

    @Test func linearRuleAndConstant() {
        #expect(SynchronizationRule.linear(base: 4, alpha: 0.0175).period(learningRate: 0.001, warmingUp: false, stepsLeft: 1000) == (17, false))
        #expect(SynchronizationRule.constant(6).period(learningRate: 0.1, warmingUp: false, stepsLeft: 1000) == (6, false))
    }

    @Test func periodsAreCappedByTheStepsLeftEvenAtZeroLearningRate() {
        let rule = SynchronizationRule.quadratic(base: 4, alpha: 0.01)
        #expect(rule.period(learningRate: 0, warmingUp: false, stepsLeft: 37) == (37, true))
        #expect(rule.period(learningRate: 0.001, warmingUp: false, stepsLeft: 50) == (50, true))
        #expect(SynchronizationRule.constant(8).period(learningRate: 0.1, warmingUp: false, stepsLeft: 3) == (3, true))
    }

    @Test func badSettingsAreRefused() {
        #expect(SynchronizationRule.constant(0).problem != nil)
        #expect(SynchronizationRule.quadratic(base: 0, alpha: 1).problem != nil)
        #expect(SynchronizationRule.quadratic(base: 4, alpha: 0).problem != nil)
        #expect(SynchronizationRule.linear(base: 4, alpha: -.infinity).problem != nil)
        #expect(SynchronizationRule.quadratic(base: 4, alpha: 0.01).problem == nil)
    }
}

@Suite struct CompressorTests {
    @Test func dgcSparsityWarmsUpInThePapersFourStages() throws {
        let warmUp = try SparsityWarmUp(ratio: 0.001, steps: 100)
        #expect([0, 24, 25, 49, 50, 74, 75, 99, 100, 10_000].map(warmUp.fraction(at:))
                == [0.25, 0.25, 0.0625, 0.0625, 0.015625, 0.015625, 0.00390625, 0.00390625, 0.001, 0.001])
        #expect(try SparsityWarmUp(ratio: 0.1, steps: 8).fraction(at: 7) == 0.1)
        #expect(try SparsityWarmUp(ratio: 0.001, steps: 0).fraction(at: 0) == 0.001)
        #expect(try SparsityWarmUp(ratio: 0.001, steps: 3).fraction(at: 2) == 0.015625)
        #expect(throws: TrainingError.self) { try SparsityWarmUp(ratio: 0, steps: 1) }
        #expect(throws: TrainingError.self) { try SparsityWarmUp(ratio: 1.5, steps: 1) }
        #expect(throws: TrainingError.self) { try SparsityWarmUp(ratio: 0.5, steps: -1) }
    }
}
