import Collectives

/// TernGrad (Wen et al. 2017) as the paper runs it. Per tensor:
///
/// 1. gradient clipping: g ← clamp(g, −c·σ, c·σ), σ the standard deviation of the tensor's
///    gradient on this rank, c = ``clipSigmas`` (2.5; `nil` turns clipping off, and a
///    constant tensor, σ = 0, is not clipped);
/// 2. scaler sharing: s = the largest |g| over every rank, one `MPI_MAX` allreduce of one
///    float per tensor;
/// 3. ternarizing: tᵢ = sign(gᵢ)·bᵢ with bᵢ ~ Bernoulli(|gᵢ|/s), so s·tᵢ is an unbiased
///    estimate of the clipped gᵢ;
/// 4. every rank receives s·k/N, k = Σ over ranks of t ∈ [−N, N].
///
/// Because the scale is shared, k is an integer that ``Exchange/reduceScatter`` sends as the
/// sign allreduce's ``SignReduction/ternaryAverage`` does: two bits out and ⌈log2(2N+1)⌉
/// back per coordinate, (N−1)/N·(2 + ⌈log2(2N+1)⌉) bits in all (7.5 at N = 16).
/// ``Exchange/allgather`` instead sends every rank's 2-bit codes to every rank,
/// (N−1)·2 bits (30 at N = 16, but 2 against 2.5 at N = 2), and each rank adds all N. Both
/// give the same bits.
///
/// The coins come from a counter-based generator keyed by the seed, the rank, the step and the
/// coordinate, so a resumed run draws the same coins as the uninterrupted one and there is no
/// state to save.
public final class TernGrad: GradientCompressor {
    /// How the ternary codes travel.
    public enum Exchange: String, Sendable, CaseIterable {
        /// The sum of codes through the sign allreduce's reduce-scatter and allgather.
        case reduceScatter = "reduce-scatter"
        /// Every rank's codes to every rank, added where they land.
        case allgather
    }

    public let name = "terngrad"
    /// The tensors, as ranges that tile the flat gradient in order; each gets its own scale.
    public let tensors: [Range<Int>]
    /// c of the ±c·σ clipping, or `nil` for none.
    public let clipSigmas: Float?
    /// How the codes travel.
    public let exchange: Exchange
    private let seed: UInt64
    private let rank: Int
    /// The coordinates the tensors cover.
    private let count: Int
    private var sums: SignAllreduce?

    /// TernGrad over a gradient split into `tensors` (ranges that tile `0..<count` in order);
    /// `seed` and `rank` key the coins. Throws when the tensors do not tile a range from 0,
    /// or `clipSigmas` is not a positive finite number.
    public init(tensors: [Range<Int>], seed: UInt64, rank: Int, clipSigmas: Float? = 2.5,
                exchange: Exchange = .reduceScatter) throws {
        for (previous, next) in zip([0..<0] + tensors, tensors) where next.lowerBound != previous.upperBound {
            throw TrainingError.invalidConfiguration(
                "TernGrad's tensors must tile the gradient in order, but \(next) follows \(previous)")
        }
        if let clipSigmas, !(clipSigmas > 0 && clipSigmas.isFinite) {
            throw TrainingError.invalidConfiguration("TernGrad's clipping must be a positive number of σ (got \(clipSigmas))")
        }
        self.tensors = tensors
        self.count = tensors.last?.upperBound ?? 0
        self.clipSigmas = clipSigmas
        self.exchange = exchange
        self.seed = seed
        self.rank = rank
    }

    /// Nothing: the coins are keyed by the step.
    public var state: OptimizerState { OptimizerState() }

    /// TernGrad keeps no scalars.
    public func restore(scalars: [String: Int]) throws {}

    public func exchange(_ gradient: UnsafeMutableBufferPointer<Float>, step: Int, communicator: Communicator) throws {
        guard gradient.count == count else {
            throw TrainingError.invalidConfiguration("TernGrad's tensors cover \(count) coordinates but the gradient has \(gradient.count)")
        }
        guard let base = gradient.baseAddress else { return }
        let local = tensors.map { clip(UnsafeMutableBufferPointer(rebasing: gradient[$0])) }
        let scales = try communicator.allreduce(local, operation: .max)
        ternarize(base, scales: scales, key: coinKey(step: step))
        // Both forms leave the count's mean, k/N; the scale comes last, as in the paper's s·k/N.
        switch exchange {
        case .reduceScatter:
            try sumsOfCodes(on: communicator).allreduce(FloatSource(UnsafeBufferPointer(gradient)), into: FloatSink(gradient))
        case .allgather:
            try gatherCodes(gradient, communicator: communicator)
        }
        forEachTensorRun { tensor, run in
            let scale = scales[tensor]
            for index in run { base[index] *= scale }
        }
    }

    /// Clips `values` in place to ±``clipSigmas``·σ; returns the largest magnitude left.
    private func clip(_ values: UnsafeMutableBufferPointer<Float>) -> Float {
        var largest: Float = 0, sum = 0.0, squares = 0.0
        for value in values {
            largest = max(largest, abs(value))
            sum += Double(value)
            squares += Double(value) * Double(value)
        }
        guard let clipSigmas, values.count > 1 else { return largest }
        let mean = sum / Double(values.count)
        let sigma = Float((max(0, squares / Double(values.count) - mean * mean)).squareRoot())
        let bound = clipSigmas * sigma
        guard bound > 0, bound < largest else { return largest }
        for index in values.indices { values[index] = min(max(values[index], -bound), bound) }
        return bound
    }

    /// Replaces each coordinate g by sign(g)·Bernoulli(|g|/s), s its tensor's shared scale.
    private func ternarize(_ base: UnsafeMutablePointer<Float>, scales: [Float], key: UInt64) {
        forEachTensorRun { tensor, run in
            let scale = scales[tensor]
            guard scale > 0 else {
                (base + run.lowerBound).update(repeating: 0, count: run.count)
                return
            }
            let inverse = 1 / scale
            for index in run {
                let g = base[index]
                var coins = SplitMix64(seed: key &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
                let uniform = Float(coins.next() >> 40) * 0x1p-24
                base[index] = uniform < abs(g) * inverse ? (g > 0 ? 1 : -1) : 0
            }
        }
    }

    /// The coins' key for `step` on this rank.
    private func coinKey(step: Int) -> UInt64 {
        var keys = SplitMix64(seed: seed ^ UInt64(rank + 1) &* 0xD1B5_4A32_D192_ED03)
        keys.state &+= UInt64(truncatingIfNeeded: step) &* 0xBF58_476D_1CE4_E5B9
        return keys.next()
    }

    /// Calls `body` with each tensor's part of each of ``Parallel``'s pieces of the gradient.
    private func forEachTensorRun(_ body: (Int, Range<Int>) -> Void) {
        Parallel.forEachPiece(count: count) { piece in
            for (tensor, range) in tensors.enumerated() where range.overlaps(piece) {
                body(tensor, max(range.lowerBound, piece.lowerBound) ..< min(range.upperBound, piece.upperBound))
            }
        }
    }

    /// The sign allreduce that sums the codes on `communicator`, made on first use.
    private func sumsOfCodes(on communicator: Communicator) -> SignAllreduce {
        if let sums, sums.communicator === communicator { return sums }
        let fresh = SignAllreduce(communicator: communicator, reduction: .ternaryAverage)
        sums = fresh
        return fresh
    }

    /// Replaces the ternary codes in `gradient` by the mean over ranks of everyone's codes,
    /// sent as 2-bit codes (plane 0: +1, plane 1: −1) in a compressed allgather.
    private func gatherCodes(_ gradient: UnsafeMutableBufferPointer<Float>, communicator: Communicator) throws {
        var codes = PackedCodes(count: gradient.count, bitsPerCode: 2)
        let plane = codes.wordsPerPlane
        codes.words.withUnsafeMutableBufferPointer { words in
            for (index, code) in gradient.enumerated() where code != 0 {
                words[(code > 0 ? 0 : plane) + index >> 6] |= 1 << UInt64(index & 63)
            }
        }
        let everyone = try communicator.allgather(codes)
        guard let base = gradient.baseAddress else { return }
        base.update(repeating: 0, count: gradient.count)
        for codes in everyone {
            codes.words.withUnsafeBufferPointer { accumulateTernary(words: $0, plane: plane, count: gradient.count, into: base) }
        }
        // Divided, not scaled by 1/N, so the bits are those of the reduce-scatter's (c − N)/N.
        let ranks = Float(communicator.size)
        for index in gradient.indices { gradient[index] /= ranks }
    }
}

/// Adds +1 where plane 0 is set and −1 where plane 1 is set to the first `count` floats of
/// `output`, 16 lanes at a time.
private func accumulateTernary(words: UnsafeBufferPointer<UInt64>, plane: Int, count: Int, into output: UnsafeMutablePointer<Float>) {
    let weights = SIMD16<Int32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
    /// The 16 bits of the plane starting at word `planeStart`, from coordinate `index` (a multiple of 16).
    func lanes(_ planeStart: Int, _ index: Int) -> SIMD16<Float> {
        let bits = Int32(truncatingIfNeeded: words[planeStart + index >> 6] >> UInt64(index & 63) & 0xFFFF)
        let set = (0 &- (SIMD16(repeating: bits) & weights)) &>> 31
        return SIMD16<Float>(0 &- set)
    }
    for start in stride(from: 0, to: count, by: 16) {
        let valid = min(16, count - start)
        FloatLanes.store(FloatLanes.load(output + start, valid) + lanes(0, start) - lanes(plane, start), output + start, valid)
    }
}
