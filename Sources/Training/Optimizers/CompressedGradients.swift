#if canImport(Glibc)
import Glibc
#endif
import Collectives

/// Replaces each rank's gradient by the mean over ranks of everyone's compressed gradient:
/// compress, exchange with a compressed allgather, decode and average.
public protocol GradientCompressor: AnyObject {
    /// A short name for logs.
    var name: String { get }
    /// What the compressor keeps on this rank between exchanges (residuals, accumulators).
    var state: OptimizerState { get }
    /// Sets the scalars of ``state`` to saved values.
    func restore(scalars: [String: Int]) throws
    /// Overwrites `gradient` (this rank's) with the mean of all ranks' decoded gradients.
    /// Collective.
    func exchange(_ gradient: UnsafeMutableBufferPointer<Float>, step: Int, communicator: Communicator) throws
}

/// AdamW fed with a compressed, exchanged gradient: the TernGrad and DGC baselines of the
/// Distributed Lion paper. Non-finite gradients on any rank make every rank skip the step.
public final class CompressedGradientAdamW: DistributedOptimizer {
    public var name: String { compressor.name }
    public let communicator: Communicator
    public var communicationRounds: Int { steps }
    /// The compression.
    public let compressor: GradientCompressor
    private let local: AdamW
    private var steps = 0

    /// AdamW for `count` parameters on gradients exchanged through `compressor`.
    public init(count: Int, communicator: Communicator, compressor: GradientCompressor,
                hyperparameters: AdamWHyperparameters = AdamWHyperparameters()) throws {
        self.communicator = communicator
        self.compressor = compressor
        self.local = try AdamW(count: count, hyperparameters: hyperparameters)
    }

    public var state: OptimizerState {
        OptimizerState(scalars: ["exchanges": steps]).merging(local.state, prefix: "adamw").merging(compressor.state, prefix: compressor.name)
    }

    public func restore(scalars: [String: Int]) throws {
        steps = try OptimizerState.scalar("exchanges", in: scalars)
        try local.restore(scalars: OptimizerState.scalars(scalars, under: "adamw"))
        try compressor.restore(scalars: OptimizerState.scalars(scalars, under: compressor.name))
    }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>,
                     learningRate: Float) throws -> Bool {
        guard try allFiniteOnEveryRank(gradients, communicator: communicator) else { return false }
        try compressor.exchange(gradients, step: steps, communicator: communicator)
        steps += 1
        return try local.step(parameters: parameters, gradients: gradients, learningRate: learningRate)
    }
}

/// TernGrad (Wen et al. 2017): per tensor, s = max|g|, and each coordinate becomes
/// s·sign(g)·b with b ~ Bernoulli(|g|/s), unbiased. Sent as 2-bit codes (plane 0: +1,
/// plane 1: −1) plus one float per tensor, with a compressed allgather; every rank decodes
/// all N and averages. Choices: no gradient clipping (the paper's optional 2.5σ clip), one
/// scale per arena tensor (weight or bias), coins from a seeded per-rank generator.
public final class TernGrad: GradientCompressor {
    public let name = "terngrad"
    /// The tensors, as ranges of the flat gradient; each gets its own scale.
    public let tensors: [Range<Int>]
    private var random: SplitMix64

    /// TernGrad over a gradient split into `tensors`; `seed` and `rank` seed the coins.
    public init(tensors: [Range<Int>], seed: UInt64, rank: Int) {
        self.tensors = tensors
        self.random = SplitMix64(seed: seed ^ (UInt64(rank + 1) &* 0x9E37_79B9_7F4A_7C15))
    }

    /// The coin generator's position; no buffers.
    public var state: OptimizerState { OptimizerState(scalars: ["random_state": Int(truncatingIfNeeded: random.state)]) }

    public func restore(scalars: [String: Int]) throws {
        random.state = UInt64(truncatingIfNeeded: try OptimizerState.scalar("random_state", in: scalars))
    }

    public func exchange(_ gradient: UnsafeMutableBufferPointer<Float>, step: Int, communicator: Communicator) throws {
        let count = gradient.count
        var codes = PackedCodes(count: count, bitsPerCode: 2)
        let plane = codes.wordsPerPlane
        var scales = [Float](repeating: 0, count: tensors.count)
        for (t, range) in tensors.enumerated() {
            var largest: Float = 0
            for index in range { largest = max(largest, abs(gradient[index])) }
            scales[t] = largest
            guard largest > 0 else { continue }
            let inverse = 1 / largest
            codes.words.withUnsafeMutableBufferPointer { words in
                for index in range {
                    let g = gradient[index]
                    // b = 1 with probability |g|/s.
                    guard Float(random.next() >> 40) * 0x1p-24 < abs(g) * inverse else { continue }
                    words[(g > 0 ? 0 : plane) + index >> 6] |= 1 << UInt64(index & 63)
                }
            }
        }
        let everyone = try communicator.allgather(codes)
        let everyScale = try communicator.allgather(scales)
        guard let base = gradient.baseAddress else { return }
        base.update(repeating: 0, count: count)
        let share = 1 / Float(communicator.size)
        for (rank, codes) in everyone.enumerated() {
            codes.words.withUnsafeBufferPointer { words in
                for (t, range) in tensors.enumerated() {
                    let value = everyScale[rank * tensors.count + t] * share
                    guard value > 0 else { continue }
                    accumulateTernary(words: words, plane: plane, range: range, value: value, into: base)
                }
            }
        }
    }
}

/// Adds +value where plane 0 is set and −value where plane 1 is set, for `range`, 16 lanes
/// at a time.
private func accumulateTernary(words: UnsafeBufferPointer<UInt64>, plane: Int, range: Range<Int>, value: Float,
                               into output: UnsafeMutablePointer<Float>) {
    let weights = SIMD16<Int32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
    let plus = SIMD16<Int32>(repeating: Int32(bitPattern: value.bitPattern))
    let minus = SIMD16<Int32>(repeating: Int32(bitPattern: (-value).bitPattern))
    /// The 16 bits of `planeStart`'s plane starting at coordinate `index`.
    func bits(_ planeStart: Int, _ index: Int) -> Int32 {
        let word = index >> 6, shift = UInt64(index & 63)
        var value = words[planeStart + word] >> shift
        if shift > 48 && word + 1 < plane { value |= words[planeStart + word + 1] << (64 - shift) }
        return Int32(truncatingIfNeeded: value & 0xFFFF)
    }
    for start in stride(from: range.lowerBound, to: range.upperBound, by: 16) {
        let valid = min(16, range.upperBound - start)
        let positive = (0 &- (SIMD16(repeating: bits(0, start)) & weights)) &>> 31
        let negative = (0 &- (SIMD16(repeating: bits(plane, start)) & weights)) &>> 31
        let decoded = unsafeBitCast((positive & plus) | (negative & minus), to: SIMD16<Float>.self)
        FloatLanes.store(FloatLanes.load(output + start, valid) + decoded, output + start, valid)
    }
}

/// Deep Gradient Compression (Lin et al. 2018): momentum correction u ← μ·u + g, accumulation
/// v ← v + u; the top k = ratio·d coordinates of |v| are sent as (index, value) pairs by a
/// sparse allgather and cleared from u and v (momentum factor masking); the rest stays local.
/// The ratio warms up exponentially from 25 % to `ratio` over `warmupSteps`. Choices: the
/// threshold is the k-th largest |v| of a strided sample of about 10 000 coordinates (as DGC
/// samples), no local gradient clipping, and the mean of the exchanged values feeds AdamW
/// (the paper's DGC feeds momentum SGD, whose momentum the correction replaces).
public final class DGC: GradientCompressor {
    public let name = "dgc"
    /// The fraction of coordinates sent once warmed up, in (0, 1].
    public let ratio: Float
    /// Steps over which the sent fraction falls from 25 % to `ratio`.
    public let warmupSteps: Int
    /// μ of the momentum correction.
    public let momentum: Float
    /// The momentum-corrected gradient u.
    public let corrected: StateBuffer
    /// The accumulated velocity v, whose unsent part stays local.
    public let accumulated: StateBuffer

    /// DGC for `count` coordinates. Throws when `ratio` is outside (0, 1].
    public init(count: Int, ratio: Float, warmupSteps: Int, momentum: Float = 0.9) throws {
        guard ratio > 0 && ratio <= 1 else {
            throw TrainingError.invalidConfiguration("the top-k ratio must be in (0, 1] (got \(ratio))")
        }
        self.ratio = ratio
        self.warmupSteps = warmupSteps
        self.momentum = momentum
        let buffers = try StateBuffer.allocate(["corrected", "accumulated"], count: count)
        (corrected, accumulated) = (buffers[0], buffers[1])
    }

    public var state: OptimizerState { OptimizerState(buffers: [corrected, accumulated]) }

    /// DGC keeps no scalars.
    public func restore(scalars: [String: Int]) throws {}

    /// The fraction sent at `step`.
    public func fraction(at step: Int) -> Float {
        guard step < warmupSteps, ratio < 0.25 else { return ratio }
        return 0.25 * powf(ratio / 0.25, Float(step) / Float(max(1, warmupSteps)))
    }

    public func exchange(_ gradient: UnsafeMutableBufferPointer<Float>, step: Int, communicator: Communicator) throws {
        let count = gradient.count
        guard let g = gradient.baseAddress else { return }
        guard let u = corrected.storage.baseAddress, let v = accumulated.storage.baseAddress else { return }
        let mu = momentum
        Parallel.forEachPiece(count: count) { piece in
            for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
                let valid = min(16, piece.upperBound - start)
                let next = mu * FloatLanes.load(u + start, valid) + FloatLanes.load(g + start, valid)
                FloatLanes.store(next, u + start, valid)
                FloatLanes.store(FloatLanes.load(v + start, valid) + next, v + start, valid)
            }
        }
        let threshold = self.threshold(keeping: fraction(at: step))
        var indices: [UInt32] = []
        var values: [Float] = []
        indices.reserveCapacity(Int(fraction(at: step) * Float(count) * 1.5) + 16)
        values.reserveCapacity(indices.capacity)
        for index in 0..<count where abs(v[index]) >= threshold && v[index] != 0 {
            indices.append(UInt32(index))
            values.append(v[index])
            v[index] = 0
            u[index] = 0
        }
        let everyone = try communicator.allgather(SparseVector(length: count, indices: indices, values: values))
        gradient.update(repeating: 0)
        for sparse in everyone { sparse.accumulate(into: gradient, scale: 1 / Float(communicator.size)) }
    }

    /// The magnitude above which about `fraction` of the accumulated coordinates lie.
    private func threshold(keeping fraction: Float) -> Float {
        let count = accumulated.count
        let stride = max(1, count / 10_000)
        var sample = Swift.stride(from: 0, to: count, by: stride).map { abs(accumulated.storage[$0]) }
        sample.sort(by: >)
        let position = min(sample.count - 1, max(0, Int(fraction * Float(sample.count)) - 1))
        return sample[position]
    }
}
