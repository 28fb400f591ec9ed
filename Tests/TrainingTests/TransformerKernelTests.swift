import CVectorOps
import Foundation
import Testing
@testable import Training

/// The C kernels (whichever clone this CPU runs) against float64.
@Suite struct TransformerKernelTests {
    /// Inputs from −100 to 100, dense near 0, and the clamps' edges; 6 008 of them, so that the
    /// kernels' partial last group runs too.
    static let inputs: [Float] = {
        let wide: [Float] = (0..<4000).map { Float($0 - 2000) / 20 }
        let nearZero: [Float] = (0..<2000).map { Float($0 - 1000) * 1e-4 }
        let edges: [Float] = [-87.3, 88.3, 88.7, -87.4, -1e-30, 1e-30, 0, -0.0]
        return wide + nearZero + edges
    }()

    @Test func expIsWithinFourUlpAndSumsWhatItWrites() {
        var out = [Float](repeating: 0, count: Self.inputs.count)
        let sum = dlion_exp_shifted(&out, Self.inputs, 1.5, Self.inputs.count)
        for (x, y) in zip(Self.inputs, out) {
            let reference = Foundation.exp(Double(min(max(x - 1.5, -87.3), 88.3)))
            #expect(abs(Double(y) - reference) <= 4 * Double(Float(reference).ulp), "exp(\(x) − 1.5) = \(y), reference \(reference)")
        }
        // The float sum overflows there; softmax's arguments are ≤ 0, as with a shift of 100.
        #expect(sum == .infinity)
        let softmaxSum = dlion_exp_shifted(&out, Self.inputs, 100, Self.inputs.count)
        let total = out.reduce(0.0) { $0 + Double($1) }
        #expect(abs(Double(softmaxSum) - total) <= 1e-5 * total && total > 1)
    }

    @Test func nonFiniteInputsGiveNaN() {
        let x: [Float] = [.nan, .infinity, -.infinity, 1, 2, 3, 4, 5, 6, .nan]
        var e = x, gelu = x, derivative = x
        _ = dlion_exp_shifted(&e, x, 0, x.count)
        GELU.forward(out: &gelu, inp: x, count: x.count)
        GELU.backward(dinp: &derivative, inp: x, dout: [Float](repeating: 1, count: x.count), count: x.count)
        for result in [e, gelu, derivative] {
            #expect(result[0].isNaN && result[1].isNaN && result[2].isNaN && result[9].isNaN && result[3...8].allSatisfy(\.isFinite))
        }
    }

    @Test(arguments: [(1, 1), (7, 7), (8, 8), (21, 21), (13, 40), (64, 64)])
    func softmaxMatchesFloat64AndZeroesTheHiddenTail(visible: Int, count: Int) {
        // Large logits, with the maximum last, so that an unshifted exp or a missed lane shows.
        let x: [Float] = (0..<count).map { 80 + Float(($0 * 37) % 23) / 3 + ($0 == visible - 1 ? 20 : 0) }
        var out = [Float](repeating: .nan, count: count)
        dlion_softmax(&out, x, visible, count)
        let largest = x.prefix(visible).map(Double.init).max() ?? 0
        let e = x.prefix(visible).map { Foundation.exp(Double($0) - largest) }
        let total = e.reduce(0, +)
        for index in 0..<visible {
            #expect(abs(Double(out[index]) - e[index] / total) <= 1e-6, "softmax[\(index)] of \(visible)")
        }
        #expect(out[visible...].allSatisfy { $0 == 0 })
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { dlion_softmax($0.baseAddress, $0.baseAddress, visible, count) }
        #expect(inPlace == out)
    }

    /// Finite inputs far past the clamps: exp's clamp must not cancel them to 0 (e⁰ = 1).
    @Test func hugeFiniteInputsStayInTheirLimits() {
        var e = [Float](repeating: .nan, count: 4)
        _ = dlion_exp_shifted(&e, [-1e30, -1e10, 1e10, 1e30], 0, 4)
        #expect(e[0] < 1e-37 && e[1] < 1e-37 && e[2] > 1e38 && e[3] > 1e38, "exp of ±1e10, ±1e30: \(e)")
        var row: [Float] = [1e30, 0, 1, 2]
        dlion_softmax(&row, row, 4, 4)
        #expect(row[0] == 1 && row[1...].allSatisfy { $0 < 1e-37 }, "softmax of a 1e30 gap: \(row)")
        let x: [Float] = [-1e4, -1e3, 1e3, 1e4]
        var gelu = x, derivative = x
        GELU.forward(out: &gelu, inp: x, count: 4)
        GELU.backward(dinp: &derivative, inp: x, dout: [1, 1, 1, 1], count: 4)
        #expect(abs(gelu[0]) < 1e-30 && abs(gelu[1]) < 1e-30 && gelu[2] == 1e3 && gelu[3] == 1e4, "gelu: \(gelu)")
        #expect(abs(derivative[0]) < 1e-20 && abs(derivative[1]) < 1e-20 && derivative[2] == 1 && derivative[3] == 1, "gelu′: \(derivative)")
    }

    @Test func softmaxOfANaNIsNaN() {
        var x: [Float] = (0..<12).map(Float.init)
        x[9] = .nan
        x.withUnsafeMutableBufferPointer { dlion_softmax($0.baseAddress, $0.baseAddress, 12, 12) }
        #expect(x.allSatisfy { $0.isNaN })
    }

    @Test func softmaxIsStableForLargeLogits() {
        var row: [Float] = [1000, 1001, 999, 5000]
        dlion_softmax(&row, row, 3, 4)
        #expect(row[3] == 0 && abs(row[0] + row[1] + row[2] - 1) < 1e-6 && row[1] > row[0] && row[0] > row[2])
    }

    @Test(arguments: [1, 2, 3, 5, 16, 17, 40, 48, 49, 64], [true, false])
    func attentionSoftmaxIsEachRowsSoftmax(positions T: Int, causal: Bool) {
        // Large scores, and garbage where a causal row hides them, which must not leak in.
        let scores: [Float] = (0..<T * T).map { 60 + Float(($0 * 29) % 31) / 2 + (causal && $0 % T > $0 / T ? 1e4 : 0) }
        var att = scores
        dlion_attention_softmax(&att, T, causal ? 1 : 0)
        for t in 0..<T {
            let visible = causal ? t + 1 : T
            var row = [Float](repeating: .nan, count: T)
            dlion_softmax(&row, Array(scores[t * T ..< (t + 1) * T]), visible, T)
            for c in 0..<T {
                #expect(abs(att[t * T + c] - row[c]) <= 2e-7, "row \(t) of \(T), column \(c): \(att[t * T + c]) against \(row[c])")
            }
            #expect(att[t * T + visible ..< (t + 1) * T].allSatisfy { $0 == 0 })
        }
    }

    /// The kernels compute rows side by side; each row's bits must not depend on its
    /// neighbours or on its place among them. Row t is computed in a matrix whose other rows
    /// hold other numbers, and without the causal mask one row further down (so that it sits
    /// elsewhere in its group of rows).
    @Test(arguments: [3, 17, 49, 64], [true, false])
    func attentionSoftmaxRowsAreIndependentBitForBit(positions T: Int, causal: Bool) {
        let scores: [Float] = (0..<T * T).map { Float(($0 * 29) % 31) / 3 - 5 }
        let gradient: [Float] = (0..<T * T).map { Float(($0 * 17) % 13) / 5 - 1 }
        var att = scores, d = gradient
        dlion_attention_softmax(&att, T, causal ? 1 : 0)
        dlion_attention_softmax_backward(&d, att, T, causal ? 1 : 0)
        for t in 0..<T {
            let row = t * T ..< (t + 1) * T, place = causal ? t : (t + 1) % T, there = place * T ..< (place + 1) * T
            var alone = scores.map { $0 * 0.5 + 7 }
            alone[there] = scores[row]
            dlion_attention_softmax(&alone, T, causal ? 1 : 0)
            #expect(Array(alone[there]) == Array(att[row]), "row \(t) of \(T): its softmax depends on the other rows")
            var aloneAtt = att.map { $0 * 0.5 }, aloneGradient = gradient.map { 2 - $0 }
            aloneAtt[there] = att[row]
            aloneGradient[there] = gradient[row]
            dlion_attention_softmax_backward(&aloneGradient, aloneAtt, T, causal ? 1 : 0)
            #expect(Array(aloneGradient[there]) == Array(d[row]), "row \(t) of \(T): its backward depends on the other rows")
        }
    }

    @Test func attentionSoftmaxOfANaNIsNaNInItsRowOnly() {
        var att: [Float] = (0..<20 * 20).map { Float($0 % 7) }
        att[5 * 20 + 3] = .nan
        dlion_attention_softmax(&att, 20, 1)
        #expect(att[5 * 20 ..< 5 * 20 + 6].allSatisfy(\.isNaN) && att[5 * 20 + 6 ..< 6 * 20].allSatisfy { $0 == 0 })
        #expect(att[0 ..< 5 * 20].allSatisfy(\.isFinite) && att[6 * 20 ..< 400].allSatisfy(\.isFinite))
    }

    @Test(arguments: [1, 2, 3, 5, 16, 17, 40, 48, 49, 64], [true, false])
    func attentionSoftmaxBackwardMatchesFloat64(positions T: Int, causal: Bool) {
        let scores: [Float] = (0..<T * T).map { Float(($0 * 29) % 31) / 7 }
        var att = scores
        dlion_attention_softmax(&att, T, causal ? 1 : 0)
        // Large values where a causal row hides them, which must not leak in.
        let gradient: [Float] = (0..<T * T).map { Float(($0 * 17) % 13) / 5 - 1 + (causal && $0 % T > $0 / T ? 1e4 : 0) }
        var d = gradient
        dlion_attention_softmax_backward(&d, att, T, causal ? 1 : 0)
        for t in 0..<T {
            let visible = causal ? t + 1 : T, row = t * T
            let dot = (0..<visible).reduce(0.0) { $0 + Double(att[row + $1]) * Double(gradient[row + $1]) }
            for c in 0..<visible {
                let reference = Double(att[row + c]) * (Double(gradient[row + c]) - dot)
                #expect(abs(Double(d[row + c]) - reference) <= 1e-6, "row \(t) of \(T), column \(c): \(d[row + c]) against \(reference)")
            }
            #expect(d[row + visible ..< row + T].allSatisfy { $0 == 0 }, "row \(t) of \(T): its hidden part is not 0")
        }
    }

    @Test(arguments: [(5, 64), (7, 37), (3, 5)])
    func geluBackwardWithColumnSumsIsBothApart(rows: Int, columns: Int) {
        let x = Array(Self.inputs.prefix(rows * columns)), g = x.map { 1.5 - $0 / 7 }
        var fused = [Float](repeating: .nan, count: x.count), sums = [Float](repeating: .nan, count: columns)
        GELU.backward(dinp: &fused, inp: x, dout: g, rows: rows, columns: columns, columnSums: &sums)
        var apart = [Float](repeating: .nan, count: x.count), bias = [Float](repeating: .nan, count: columns)
        GELU.backward(dinp: &apart, inp: x, dout: g, count: x.count)
        Linear.biasGradient(dbias: &bias, dout: apart, batch: rows, outputs: columns)
        #expect(fused == apart)
        #expect(sums == bias)
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
            // Where gelu is tiny (x well below 0) it keeps its relative accuracy too.
            if v < 0 && v > -6 && abs(reference) > 1e-30 {
                #expect(abs(Double(out[index]) - reference) <= 4e-6 * abs(reference), "gelu(\(v)) relative")
            }
        }
    }
}
