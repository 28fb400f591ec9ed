import Testing
@testable import Training

/// Optimizers against steps computed by hand.
@Suite struct OptimizerTests {
    @Test func lionStepByHand() throws {
        let lion = try Lion(count: 3, hyperparameters: LionHyperparameters(beta1: 0.9, beta2: 0.99, weightDecay: 0.1))
        try lion.momentum.restore(from: [1, -1, 0])
        var parameters: [Float] = [1, 1, 1]
        var gradients: [Float] = [-20, 5, 0]
        let applied = try lion.step(parameters: &parameters, gradients: &gradients, learningRate: 0.5)
        #expect(applied)
        // c = 0.9·m + 0.1·g = [−1.1, −0.4, 0] → sign [−1, −1, 0]; x = x·(1 − 0.5·0.1) − 0.5·sign.
        #expect(parameters == [1.45, 1.45, 0.95])
        // m = 0.99·m + 0.01·g = [0.79, −0.94, 0].
        #expect(zip(lion.momentum.values, [Float(0.79), -0.94, 0]).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func adamWTwoStepsByHand() throws {
        let adam = try AdamW(count: 1, hyperparameters: AdamWHyperparameters(beta1: 0.9, beta2: 0.999, epsilon: 0, weightDecay: 0.5))
        var parameters: [Float] = [2]
        for gradient: Float in [4, -2] {
            var gradients = [gradient]
            _ = try adam.step(parameters: &parameters, gradients: &gradients, learningRate: 0.1)
        }
        // Step 1: m = 0.4, v = 0.016, m̂ = 4, v̂ = 16 → update 1; x = 2·(1 − 0.05) − 0.1 = 1.8.
        // Step 2: m = 0.36 − 0.2 = 0.16, v = 0.015984 + 0.004 = 0.019984;
        //         m̂ = 0.16/0.19 = 0.842105, v̂ = 0.019984/0.001999 = 9.996998 → √ = 3.161803;
        //         x = 1.8·0.95 − 0.1·0.842105/3.161803 = 1.71 − 0.026634 = 1.683366.
        #expect(abs(parameters[0] - 1.683366) < 1e-5)
    }

    /// Decoupled weight decay against a float64 step rounded to float32, at every step from
    /// the float32 parameters the optimizer holds, at ηλ where the float32 factor (1 − ηλ) is
    /// badly rounded (3·10⁻⁸: twice the decay) and where it is not: Lion with a sign update,
    /// AdamW with a zero one (zero gradients), and Distributed Lion's unpack. Every value
    /// within one unit in the last place, nearly all exact.
    @Test(arguments: [(Float(1e-3), Float(3e-5)), (1e-5, 0.1), (1e-2, 0.1)])
    func weightDecayMatchesAFloat64Reference(learningRate: Float, weightDecay: Float) throws {
        let count = 4096, steps = 20
        let start = (0..<count).map { (i: Int) -> Float in
            let magnitude = 0.5 + 1.5 * Double((i * 2_654_435_761) % 1_000_003) / 1_000_003
            return Float(i % 3 == 0 ? -magnitude : magnitude)
        }
        let signs = (0..<count).map { Float(($0 * 7) % 5 == 0 ? -1 : 1) }
        let zeros = [Float](repeating: 0, count: count)
        let shrink = Double(learningRate) * Double(weightDecay)
        func reference(_ x: [Float], update: [Float]) -> [Float] {
            zip(x, update).map { (x: Float, u: Float) -> Float in
                let wide = Double(x)
                return Float(wide - shrink * wide - Double(learningRate) * Double(u))
            }
        }
        let lion = try Lion(count: count, hyperparameters: LionHyperparameters(weightDecay: weightDecay))
        let adamW = try AdamW(count: count, hyperparameters: AdamWHyperparameters(weightDecay: weightDecay))
        var (lionX, adamWX, unpackX) = (start, start, start)
        var apart: [String: [Float]] = [:]
        func compare(_ name: String, _ got: [Float], _ want: [Float]) {
            apart[name, default: []] += zip(got, want).map { abs($0 - $1) / $1.ulp.magnitude }
        }
        for _ in 0..<steps {
            var gradients = signs
            try lion.momentum.restore(from: zeros)  // the direction is sign(g)
            let lionWant = reference(lionX, update: signs)
            _ = try lion.step(parameters: &lionX, gradients: &gradients, learningRate: learningRate)
            compare("lion", lionX, lionWant)
            var noGradients = zeros
            let adamWWant = reference(adamWX, update: zeros)
            _ = try adamW.step(parameters: &adamWX, gradients: &noGradients, learningRate: learningRate)
            compare("adamw", adamWX, adamWWant)
            let unpackWant = reference(unpackX, update: zeros)
            unpackX.withUnsafeMutableBufferPointer { x in
                let unpack = LionUpdate(parameters: x, learningRate: learningRate, weightDecay: weightDecay)
                for offset in stride(from: 0, to: count, by: 16) { unpack.store(offset, SIMD16(repeating: 0), valid: 16) }
            }
            compare("unpack", unpackX, unpackWant)
        }
        for (name, units) in apart {
            #expect(units.allSatisfy { $0 <= 1 }, "\(name): \(units.max() ?? 0) units apart at most")
            #expect(units.filter { $0 == 0 }.count >= units.count * 99 / 100, "\(name): \(units.filter { $0 == 0 }.count) of \(units.count) exact")
        }
    }

    @Test func nonFiniteGradientsSkipTheStep() throws {
        for optimizer: any Optimizer in [try Lion(count: 2), try AdamW(count: 2)] {
            var parameters: [Float] = [1, 2]
            var gradients: [Float] = [.nan, 1]
            let applied = try optimizer.step(parameters: &parameters, gradients: &gradients, learningRate: 0.1)
            #expect(!applied)
            #expect(parameters == [1, 2])
        }
    }

    @Test func stateIsEnumerableAndRestorable() throws {
        let adam = try AdamW(count: 3)
        var parameters: [Float] = [1, 2, 3], gradients: [Float] = [1, -1, 0.5]
        _ = try adam.step(parameters: &parameters, gradients: &gradients, learningRate: 0.1)
        let state = adam.state
        #expect(state.buffers.map(\.name) == ["first_moment", "second_moment"])
        #expect(state.scalars == ["steps": 1])
        #expect(state.bytes == 2 * 3 * 4)
        #expect(abs(state.buffers[0][0] - 0.1) < 1e-7)
        #expect(throws: TrainingError.self) { try state.buffers[0].restore(from: [1, 2]) }
        try state.buffers[0].restore(from: [4, 5, 6])
        #expect(adam.firstMoment.values == [4, 5, 6])
    }

    @Test func stateTooLargeForMemoryIsAnError() {
        #expect(throws: TrainingError.self) { try AdamW(count: Int.max / 4) }
    }

    @Test func finiteCheck() {
        #expect(allFinite(UnsafeBufferPointer(start: nil, count: 0)))
        for bad: Float in [.nan, .infinity, -.infinity] {
            for position in [0, 17, 40] {
                var values = [Float](repeating: 1, count: 41)
                values[position] = bad
                #expect(!values.withUnsafeBufferPointer(allFinite))
            }
        }
        #expect([Float](repeating: 3e38, count: 100).withUnsafeBufferPointer(allFinite))
    }

    @Test func cosineScheduleWarmsUpThenDecays() {
        let schedule = LearningRateSchedule.cosine(peak: 1, warmupSteps: 4, totalSteps: 104, minimum: 0)
        #expect(schedule.rate(at: 0) == 0.25)
        #expect(schedule.rate(at: 3) == 1)
        #expect(abs(schedule.rate(at: 54) - 0.5) < 1e-6)
        #expect(schedule.rate(at: 104) < 1e-6)
        #expect(schedule.isWarmingUp(at: 3) && !schedule.isWarmingUp(at: 4))
        #expect(LearningRateSchedule.constant(0.3).rate(at: 1000) == 0.3)
    }
}
