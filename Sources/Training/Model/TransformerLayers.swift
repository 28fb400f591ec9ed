import Collectives
import CVectorOps
#if canImport(Glibc)
import Glibc
#endif

// The transformer's layers, in the manner of Layers.swift (and llm.c): one forward and one
// backward each, shapes in the signature, row-major buffers; backward overwrites the
// gradients it produces. `rows` is batch × positions.

/// Token plus learned position embedding: out[b, t] = wte[tokens[b, t]] + wpe[t].
public enum Embedding {
    /// Writes `out` (batch × positions × channels) from `tokens` (batch × positions), the token
    /// table `wte` (vocabulary × channels) and the position table `wpe` (≥ positions × channels).
    public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                               wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>,
                               batch: Int, positions: Int, channels: Int) {
        for b in 0..<batch {
            for t in 0..<positions {
                let row = out + (b * positions + t) * channels
                let token = wte + Int(tokens[b * positions + t]) * channels, position = wpe + t * channels
                for c in 0..<channels { row[c] = token[c] + position[c] }
            }
        }
    }

    /// `dwte` (vocabulary × channels) and `dwpe` (positions × channels) from `dout`: each
    /// position's gradient summed into its token's and its position's row.
    public static func backward(dwte: UnsafeMutablePointer<Float>, vocabulary: Int, dwpe: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                                batch: Int, positions: Int, channels: Int) {
        dwte.update(repeating: 0, count: vocabulary * channels)
        dwpe.update(repeating: 0, count: positions * channels)
        for b in 0..<batch {
            for t in 0..<positions {
                let gradient = dout + (b * positions + t) * channels
                let token = dwte + Int(tokens[b * positions + t]) * channels, position = dwpe + t * channels
                for c in 0..<channels {
                    token[c] += gradient[c]
                    position[c] += gradient[c]
                }
            }
        }
    }
}

/// Layer normalization over the channels of each row: out = (x − mean)/√(var + 1e-5) · weight + bias.
public enum LayerNorm {
    /// Writes `out` (rows × channels) and each row's `mean` and reciprocal standard deviation
    /// `rstd` (rows), which backward needs (`dlion_layernorm_forward`).
    public static func forward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                               inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                               rows: Int, channels: Int) {
        dlion_layernorm_forward(out, mean, rstd, inp, weight, bias, rows, channels)
    }

    /// `dinp` (rows × channels), `dweight` and `dbias` (channels) from `dout`. With a
    /// `residual` (rows × channels), `dinp` is residual + the gradient: a residual connection's
    /// sum, fused (`dlion_layernorm_backward`).
    public static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, channels: Int,
                                residual: UnsafePointer<Float>? = nil) {
        dlion_layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, residual, rows, channels)
    }
}

/// Multi-head scaled dot-product self-attention over a fused QKV buffer (batch × positions ×
/// 3·channels: all queries, then keys, then values, each `heads` heads of channels/heads).
/// Causal attention lets position t see positions ≤ t (GPT); bidirectional sees all (ViT).
/// Each head's products are `cblas_sgemm` calls on strided views of the QKV buffer.
public enum Attention {
    /// Writes `out` (batch × positions × channels, heads side by side) and `att` (batch ×
    /// heads × positions × positions, the softmax weights backward needs). The (sequence,
    /// head) pairs are shared out over the rank's threads (``BLAS/concurrently(tasks:maxPieces:_:)``).
    public static func forward(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
                               batch: Int, positions: Int, channels: Int, heads: Int, causal: Bool) {
        let (T, C, size) = (positions, channels, channels / heads)
        let scale = 1 / sqrtf(Float(size))
        BLAS.concurrently(tasks: batch * heads, maxPieces: sharedOut(positions: T, size: size)) { _, pairs in
            for (b, h) in pairs.lazy.map({ $0.quotientAndRemainder(dividingBy: heads) }) {
                let q = qkv + b * T * 3 * C + h * size, k = q + C, v = q + 2 * C
                let weights = att + (b * heads + h) * T * T
                BLAS.sgemm(m: T, n: T, k: size, q, lda: 3 * C, k, transposeB: true, ldb: 3 * C, into: weights, alpha: scale)
                dlion_attention_softmax(weights, T, causal ? 1 : 0)
                BLAS.sgemm(m: T, n: size, k: T, weights, v, ldb: 3 * C, into: out + b * T * C + h * size, ldc: C)
            }
        }
    }

    /// `dqkv` (batch × positions × 3·channels) from `dout` (batch × positions × channels), for
    /// the `causal` or bidirectional forward that wrote `att`; `scratch` holds `threads` ×
    /// positions × positions floats, one square for each of up to `threads` pieces of the
    /// (sequence, head) pairs that run at once.
    public static func backward(dqkv: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, threads: Int,
                                dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>, att: UnsafePointer<Float>,
                                batch: Int, positions: Int, channels: Int, heads: Int, causal: Bool) {
        let (T, C, size) = (positions, channels, channels / heads)
        let scale = 1 / sqrtf(Float(size))
        BLAS.concurrently(tasks: batch * heads, maxPieces: min(threads, sharedOut(positions: T, size: size))) { piece, pairs in
            let scratch = scratch + piece * T * T
            for (b, h) in pairs.lazy.map({ $0.quotientAndRemainder(dividingBy: heads) }) {
                let offset = b * T * 3 * C + h * size
                let q = qkv + offset, k = q + C, v = q + 2 * C
                let dq = dqkv + offset, dk = dq + C, dv = dq + 2 * C
                let weights = att + (b * heads + h) * T * T, g = dout + b * T * C + h * size
                // dV = attᵀ · dO;  datt = dO · Vᵀ
                BLAS.sgemm(m: T, n: size, k: T, weights, transposeA: true, g, ldb: C, into: dv, ldc: 3 * C)
                BLAS.sgemm(m: T, n: T, k: size, g, lda: C, v, transposeB: true, ldb: 3 * C, into: scratch)
                // Through the softmax: dpre = att ⊙ (datt − Σ att·datt), row by row (`dlion_attention_softmax_backward`).
                dlion_attention_softmax_backward(scratch, weights, T, causal ? 1 : 0)
                // dQ = scale · dpre · K;  dK = scale · dpreᵀ · Q
                BLAS.sgemm(m: T, n: size, k: T, scratch, k, ldb: 3 * C, into: dq, ldc: 3 * C, alpha: scale)
                BLAS.sgemm(m: T, n: size, k: T, scratch, transposeA: true, q, ldb: 3 * C, into: dk, ldc: 3 * C, alpha: scale)
            }
        }
    }

    /// How many threads may share out the heads: any number while each head's products are
    /// small enough for the BLAS to run on one thread, else 1 (the BLAS splits each product).
    static func sharedOut(positions T: Int, size: Int) -> Int {
        T * T * size < BLAS.singleThreadedMultiplyAdds ? .max : 1
    }
}

/// Non-overlapping square patches of single-channel images, each flattened row-major and
/// projected to the model's width, plus a learned position embedding (ViT's stem):
/// out[b, p] = weight · patch(b, p) + bias + wpe[p], patches numbered row by row.
public enum PatchEmbedding {
    /// Writes `patches` (batch × positions × size², kept for backward) gathered from `images`
    /// (batch × height × width, row-major) and `out` (batch × positions × channels), where
    /// positions = (height / size) · (width / size); `weight` is channels × size², `wpe`
    /// positions × channels. `size` divides both sides.
    public static func forward(out: UnsafeMutablePointer<Float>, patches: UnsafeMutablePointer<Float>, images: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, wpe: UnsafePointer<Float>,
                               batch: Int, height: Int, width: Int, size: Int, channels: Int) {
        precondition(height % size == 0 && width % size == 0, "PatchEmbedding: \(size) does not divide \(height)×\(width)")
        let (across, positions, patchFloats) = (width / size, (height / size) * (width / size), size * size)
        for b in 0..<batch {
            let image = images + b * height * width
            for p in 0..<positions {
                let corner = image + (p / across) * size * width + (p % across) * size
                let patch = patches + (b * positions + p) * patchFloats
                // Element by element: rows are a few floats, too short for a memmove call each.
                for row in 0..<size {
                    for column in 0..<size { patch[row * size + column] = corner[row * width + column] }
                }
            }
        }
        Linear.forward(out: out, inp: patches, weight: weight, bias: bias, batch: batch * positions, inputs: patchFloats, outputs: channels)
        for b in 0..<batch { add(out + b * positions * channels, wpe, count: positions * channels) }
    }

    /// `dweight` (channels × size²), `dbias` (channels) and `dwpe` (positions × channels) from
    /// `dout` (batch × positions × channels); the images need no gradient.
    public static func backward(dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, patches: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                batch: Int, positions: Int, size: Int, channels: Int) {
        Linear.backward(dinp: nil, dweight: dweight, dbias: dbias, dout: dout, inp: patches, weight: weight,
                        batch: batch * positions, inputs: size * size, outputs: channels)
        dwpe.update(from: dout, count: positions * channels)
        for b in 1..<max(1, batch) { add(dwpe, dout + b * positions * channels, count: positions * channels) }
    }
}

/// The mean over positions: out[b, c] = (1/positions) Σₜ inp[b, t, c] (a ViT's pooling
/// before its classification head).
public enum MeanPool {
    /// Writes `out` (batch × channels) from `inp` (batch × positions × channels).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, batch: Int, positions: Int, channels: Int) {
        let inverse = 1 / Float(positions)
        for b in 0..<batch {
            let row = out + b * channels
            row.update(from: inp + b * positions * channels, count: channels)
            for t in 1..<positions { add(row, inp + (b * positions + t) * channels, count: channels) }
            for c in 0..<channels { row[c] *= inverse }
        }
    }

    /// `dinp` (batch × positions × channels): each position gets dout[b] / positions.
    public static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, batch: Int, positions: Int, channels: Int) {
        let inverse = 1 / Float(positions)
        for b in 0..<batch {
            for t in 0..<positions {
                let row = dinp + (b * positions + t) * channels
                for c in 0..<channels { row[c] = dout[b * channels + c] * inverse }
            }
        }
    }
}
