import Collectives
import PropertyBased
import Testing
@testable import Training

/// Distributed Lion's fused pack source and update sink.
@Suite struct LionLanesTests {
    @Test(arguments: [0, 1, 2])
    func fusedLionDirectionMatchesScalarAndWritesTheNewMomentum(destination: Int) async {
        // The new momentum goes over the momentum (0), over the gradient (1) or elsewhere (2).
        let vectors = Gen<Float>.float(in: -1...1).array(of: 0...200)
        await propertyCheck(input: vectors, vectors) { momentumValues, gradientValues in
            let count = min(momentumValues.count, gradientValues.count)
            var momentum = Array(momentumValues.prefix(count))
            var gradient = Array(gradientValues.prefix(count))
            var separate = [Float](repeating: .nan, count: count)
            let (beta1, beta2): (Float, Float) = (0.9, 0.99)
            let direction = zip(momentum, gradient).map { beta1 * $0 + (1 - beta1) * $1 }
            let updated = zip(momentum, gradient).map { beta2 * $0 + (1 - beta2) * $1 }
            let packed = momentum.withUnsafeMutableBufferPointer { m in
                gradient.withUnsafeMutableBufferPointer { g in
                    separate.withUnsafeMutableBufferPointer { s in
                        PackedSigns(LionDirection(momentum: UnsafeBufferPointer(m), gradient: UnsafeBufferPointer(g),
                                                  nextMomentum: [m, g, s][destination], beta1: beta1, beta2: beta2),
                                    zeroPolicy: .positive)
                    }
                }
            }
            #expect(packed == PackedSigns(signsOf: direction, zeroPolicy: .positive))
            #expect([momentum, gradient, separate][destination] == updated)
        }
    }

    @Test func lionUpdateAppliesDecoupledWeightDecay() {
        var parameters: [Float] = [1, 2, 3, 4, 5]
        let (lr, wd): (Float, Float) = (0.1, 0.5)
        parameters.withUnsafeMutableBufferPointer { x in
            LionUpdate(parameters: x, learningRate: lr, weightDecay: wd)
                .store(0, SIMD16(1, -1, 1, -1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), valid: 5)
        }
        // x − η(Δ + λx) by hand: 1 − 0.1(1 + 0.5) = 0.85, 2 − 0.1(−1 + 1) = 2, …
        let expected: [Float] = [0.85, 2.0, 2.75, 3.9, 4.65]
        #expect(zip(parameters, expected).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func lionDirectionReportsBuffersThatCannotWork() {
        var storage = [Float](repeating: 1, count: 300)
        storage.withUnsafeMutableBufferPointer { all in
            let momentum = UnsafeBufferPointer(rebasing: all[0..<100]), gradient = UnsafeBufferPointer(rebasing: all[100..<200])
            func problem(_ next: Range<Int>) -> String? {
                LionDirection(momentum: momentum, gradient: gradient, nextMomentum: UnsafeMutableBufferPointer(rebasing: all[next]),
                              beta1: 0.9, beta2: 0.99).problem
            }
            #expect(problem(0..<100) == nil)      // in place
            #expect(problem(100..<200) == nil)    // over the gradient
            #expect(problem(200..<300) == nil)    // separate
            #expect(problem(150..<250) == "nextMomentum overlaps gradient without being it; pass gradient itself or a separate buffer")
            #expect(problem(200..<299)?.hasPrefix("momentum, gradient and nextMomentum have 100, 100 and 99") == true)
        }
    }
}
