#if canImport(Glibc)
import Glibc
#endif
import Collectives
import CVectorOps

/// The layers: one forward and one backward per layer, shapes in the signature, buffers
/// row-major (llm.c's layout). Backward functions overwrite the gradients they produce.

/// A fully connected layer: out[B×O] = inp[B×I] · weightᵀ + bias, weight O×I.
public enum Linear {
    /// Computes `out` (batch × outputs) from `inp` (batch × inputs), plus `residual` (batch ×
    /// outputs) when given: a residual connection's sum, fused into the product.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                               batch: Int, inputs: Int, outputs: Int, residual: UnsafePointer<Float>? = nil) {
        dlion_fill_rows(out, bias, residual, batch, outputs)
        BLAS.sgemm(m: batch, n: outputs, k: inputs, inp, weight, transposeB: true, into: out, beta: 1)
    }

    /// From `dout` (batch × outputs): `dweight` = doutᵀ · inp, `dbias` = column sums of
    /// `dout`, and `dinp` = dout · weight unless `dinp` is nil (the first layer needs none).
    public static func backward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
                                dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                batch: Int, inputs: Int, outputs: Int) {
        backward(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: inp, weight: weight,
                 batch: batch, inputs: inputs, outputs: outputs, rowsPerBlock: outputs, rowsReady: { _ in })
    }

    /// ``backward(dinp:dweight:dbias:dout:inp:weight:batch:inputs:outputs:)`` with `dweight`
    /// computed in blocks of `rowsPerBlock` rows (outputs), from the last block to the first,
    /// after `dbias`: after each block, `rowsReady(r)` says that rows `r…` of `dweight`, and all
    /// of `dbias`, are final. Each element is the same dot product over the batch either way.
    /// `dinp` comes last.
    public static func backward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
                                dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                batch: Int, inputs: Int, outputs: Int,
                                rowsPerBlock: Int, rowsReady: (_ firstFinalRow: Int) throws -> Void) rethrows {
        biasGradient(dbias: dbias, dout: dout, batch: batch, outputs: outputs)
        let block = max(1, rowsPerBlock)
        for first in stride(from: (outputs - 1) / block * block, through: 0, by: -block) {
            weightGradient(rows: first ..< min(first + block, outputs), dweight: dweight, dout: dout, inp: inp, batch: batch, inputs: inputs, outputs: outputs)
            try rowsReady(first)
        }
        if let dinp { inputGradient(dinp: dinp, dout: dout, weight: weight, batch: batch, inputs: inputs, outputs: outputs) }
    }

    /// The input's part of backward alone: `dinp` (batch × inputs) = dout · weight.
    public static func inputGradient(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     batch: Int, inputs: Int, outputs: Int) {
        BLAS.sgemm(m: batch, n: inputs, k: outputs, dout, weight, into: dinp)
    }

    /// The weight's part of backward alone: `dweight` (outputs × inputs) = doutᵀ · inp.
    public static func weightGradient(dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                      batch: Int, inputs: Int, outputs: Int) {
        weightGradient(rows: 0..<outputs, dweight: dweight, dout: dout, inp: inp, batch: batch, inputs: inputs, outputs: outputs)
    }

    /// `rows` (a range of outputs) of ``weightGradient(dweight:dout:inp:batch:inputs:outputs:)``.
    private static func weightGradient(rows: Range<Int>, dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                       batch: Int, inputs: Int, outputs: Int) {
        BLAS.sgemm(m: rows.count, n: inputs, k: batch, dout + rows.lowerBound, transposeA: true, lda: outputs, inp,
                   into: dweight + rows.lowerBound * inputs)
    }

    /// The bias's part of backward alone: `dbias` (outputs) = the column sums of `dout`
    /// (batch × outputs), row by row in order (`dlion_column_sums`).
    public static func biasGradient(dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, batch: Int, outputs: Int) {
        dlion_column_sums(dbias, dout, batch, outputs)
    }
}

/// The rectified linear unit, max(0, x).
public enum ReLU {
    /// out = max(0, inp), element-wise over `count` values.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        for start in stride(from: 0, to: count, by: 16) {
            let valid = min(16, count - start)
            let bits = unsafeBitCast(FloatLanes.load(inp + start, valid), to: SIMD16<Int32>.self)
            FloatLanes.store(unsafeBitCast(bits & ~(bits &>> 31), to: SIMD16<Float>.self), out + start, valid)
        }
    }

    /// dinp = dout where inp > 0, else 0. `dinp` may be `dout`.
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count: Int) {
        for start in stride(from: 0, to: count, by: 16) {
            let valid = min(16, count - start)
            let bits = unsafeBitCast(FloatLanes.load(inp + start, valid), to: SIMD16<Int32>.self)
            let positive = ((0 &- bits) & ~bits) &>> 31
            let gradient = unsafeBitCast(FloatLanes.load(dout + start, valid), to: SIMD16<Int32>.self) & positive
            FloatLanes.store(unsafeBitCast(gradient, to: SIMD16<Float>.self), dinp + start, valid)
        }
    }
}

/// The Gaussian error linear unit, tanh approximation (as GPT-2 and llm.c):
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
public enum GELU {
    /// out = gelu(inp), element-wise over `count` values (`dlion_gelu_forward`).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        Parallel.forEachPiece(count: count) { piece in
            dlion_gelu_forward(out + piece.lowerBound, inp + piece.lowerBound, piece.count)
        }
    }

    /// dinp = gelu′(inp) · dout (`dlion_gelu_backward`). `dinp` may be `dout`.
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count: Int) {
        Parallel.forEachPiece(count: count) { piece in
            dlion_gelu_backward(dinp + piece.lowerBound, inp + piece.lowerBound, dout + piece.lowerBound, piece.count)
        }
    }

    /// ``backward(dinp:inp:dout:count:)`` over `rows` × `columns` values, and `columnSums`
    /// (columns) = the column sums of `dinp`, the rows added in order: the gradient of a bias
    /// before the GELU, fused (`dlion_gelu_backward_rows`; the same bits as
    /// ``Linear/biasGradient(dbias:dout:batch:outputs:)`` of `dinp`). One thread.
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>,
                                rows: Int, columns: Int, columnSums: UnsafeMutablePointer<Float>) {
        dlion_gelu_backward_rows(dinp, inp, dout, rows, columns, columnSums)
    }
}

/// Softmax over classes followed by the cross-entropy with integer labels, fused.
public enum SoftmaxCrossEntropy {
    /// Writes `probs` (batch × classes) and returns the summed loss and the number of rows
    /// whose largest logit is the label.
    public static func forward(probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                               labels: UnsafePointer<Int32>, batch: Int, classes: Int) -> (lossSum: Double, correct: Int) {
        var lossSum = 0.0
        var correct = 0
        for row in 0..<batch {
            let z = logits + row * classes, p = probs + row * classes
            var largest = z[0]
            var argmax = 0
            for c in 1..<classes where z[c] > largest { largest = z[c]; argmax = c }
            dlion_softmax(p, z, classes, classes)
            let label = Int(labels[row])
            lossSum -= Double(logf(max(p[label], .leastNormalMagnitude)))
            if argmax == label { correct += 1 }
        }
        return (lossSum, correct)
    }

    /// dlogits = (probs − onehot(labels)) / `normalizer`: the gradient of the loss summed
    /// over the batch and divided by `normalizer` (the batch size, for a mean).
    public static func backward(dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
                                labels: UnsafePointer<Int32>, batch: Int, classes: Int, normalizer: Int) {
        let inverse = 1 / Float(normalizer)
        for row in 0..<batch {
            for c in 0..<classes { dlogits[row * classes + c] = probs[row * classes + c] * inverse }
            dlogits[row * classes + Int(labels[row])] -= inverse
        }
    }
}
