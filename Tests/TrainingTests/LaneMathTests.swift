import Foundation
import Collectives
import Testing
@testable import Training

/// The vector exponential and tanh against float64 references over float's useful range.
@Suite struct LaneMathTests {
    /// Inputs from −100 to 100, dense near 0, and the clamps' edges.
    static let inputs: [Float] = {
        let wide: [Float] = (0..<4000).map { Float($0 - 2000) / 20 }
        let nearZero: [Float] = (0..<2000).map { Float($0 - 1000) * 1e-4 }
        let edges: [Float] = [-87.3, 88.3, 88.7, -87.4, -1e-30, 1e-30, 0, -0.0]
        return wide + nearZero + edges
    }()

    static func lanes(_ body: (SIMD16<Float>) -> SIMD16<Float>) -> [Float] {
        stride(from: 0, to: inputs.count, by: 16).flatMap { start -> [Float] in
            let valid = min(16, inputs.count - start)
            let out = inputs.withUnsafeBufferPointer { body(FloatLanes.load($0.baseAddress! + start, valid)) }
            return (0..<valid).map { out[$0] }
        }
    }

    @Test func expIsWithinFourUlpWhereTheResultIsNormal() {
        let results = Self.lanes(LaneMath.exp)
        for (x, y) in zip(Self.inputs, results) {
            let reference = Foundation.exp(Double(min(max(x, -87.3), 88.3)))
            #expect(abs(Double(y) - reference) <= 4 * Double(Float(reference).ulp), "exp(\(x)) = \(y), reference \(reference)")
        }
        #expect(Self.lanes(LaneMath.exp).allSatisfy { $0.isFinite && $0 > 0 })
    }

    @Test func tanhIsWithinTwoMillionthsAndReachesItsLimits() {
        for (x, y) in zip(Self.inputs, Self.lanes(LaneMath.tanh)) {
            #expect(abs(Double(y) - Foundation.tanh(Double(x))) <= 2e-7, "tanh(\(x)) = \(y)")
        }
        let limits = LaneMath.tanh(SIMD16<Float>(repeating: 50)), negative = LaneMath.tanh(SIMD16<Float>(repeating: -50))
        #expect(limits[0] == 1 && negative[0] == -1)
    }

    @Test func nonFiniteInputsGiveNaN() {
        var x = SIMD16<Float>(repeating: 1)
        (x[0], x[1], x[2]) = (.nan, .infinity, -.infinity)
        for result in [LaneMath.exp(x), LaneMath.tanh(x)] {
            #expect(result[0].isNaN && result[1].isNaN && result[2].isNaN && result[3].isFinite)
        }
    }

    @Test func geluMatchesTheScalarFormula() {
        let x = Self.inputs
        var out = [Float](repeating: 0, count: x.count), derivative = out
        GELU.forward(out: &out, inp: x, count: x.count)
        GELU.backward(dinp: &derivative, inp: x, dout: [Float](repeating: 1, count: x.count), count: x.count)
        for index in x.indices {
            let v = Double(x[index]), t = Foundation.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))
            let reference = 0.5 * v * (1 + t)
            let referenceDerivative = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v)
            #expect(abs(Double(out[index]) - reference) <= 1e-6 * max(1, abs(reference)), "gelu(\(v))")
            #expect(abs(Double(derivative[index]) - referenceDerivative) <= 2e-6 * max(1, abs(referenceDerivative)), "gelu′(\(v))")
        }
    }
}
