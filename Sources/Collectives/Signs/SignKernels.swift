/// Where the signs of a sign allreduce come from.
public enum SignSource {
    /// δ = sign(values[i]).
    case values(UnsafeBufferPointer<Float>)
    /// Lion's update direction δ = sign(β1·m + (1−β1)·g), and in the same pass Lion's momentum
    /// update m ← β2·m + (1−β2)·g: no intermediate float array is written.
    case lionMomentum(momentum: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, beta1: Float, beta2: Float)

    /// The number of coordinates.
    public var count: Int {
        switch self {
        case .values(let values): return values.count
        case .lionMomentum(let momentum, let gradient, _, _): return min(momentum.count, gradient.count)
        }
    }

    /// Why the source's buffers are unusable, if they are.
    var problem: String? {
        if case .lionMomentum(let momentum, let gradient, _, _) = self, momentum.count != gradient.count {
            return "momentum has \(momentum.count) elements but gradient has \(gradient.count); they must match"
        }
        return nil
    }
}

/// Where the result of a sign allreduce goes.
public enum SignSink {
    /// Δ written as floats: ±1 (majority vote), −1/0/+1 (ties kept as zero) or
    /// (2·count − N)/N (average).
    case values(UnsafeMutableBufferPointer<Float>)
    /// Δ applied straight to the parameters with Lion's decoupled weight decay:
    /// x ← x − η·(Δ + λ·x).
    case lionUpdate(parameters: UnsafeMutableBufferPointer<Float>, learningRate: Float, weightDecay: Float)

    /// The number of coordinates.
    public var count: Int {
        switch self {
        case .values(let values): return values.count
        case .lionUpdate(let parameters, _, _): return parameters.count
        }
    }
}

/// How the bit planes of a result decode into Δ.
enum ResultDecoding: Equatable {
    /// One plane: set → +1, clear → −1.
    case sign
    /// Plane 0 the sign, plane 1 set where the result is non-zero.
    case ternary
    /// `planes` planes holding the count c of +1 votes out of `ranks`: Δ = (2c − N)/N.
    case count(planes: Int, ranks: Int)

    var planes: Int {
        switch self {
        case .sign: return 1
        case .ternary: return 2
        case .count(let planes, _): return planes
        }
    }
}

/// The pack and unpack kernels: floats to sign bits and result bits to floats, 16 lanes at a
/// time with no per-bit branches.
enum SignKernels {
    /// Packs the signs of coordinates `coordinates` of `source` into `words` (64 a word;
    /// `coordinates.lowerBound` must be a multiple of 64). Coordinates past the end of the
    /// source pack as exact zeros. `randomKey` seeds the zero policy's coin flips.
    static func pack(_ source: SignSource, coordinates: Range<Int>, into words: UnsafeMutablePointer<UInt64>,
                     policy: ZeroSignPolicy, randomKey: UInt64) {
        precondition(coordinates.lowerBound % 64 == 0, "pack: a range must start on a word boundary")
        let wordCount = (coordinates.count + 63) / 64
        let fullWords = max(0, min(wordCount, (source.count - coordinates.lowerBound) / 64))
        let firstWord = coordinates.lowerBound / 64
        switch source {
        case .values(let values):
            let base = UnsafeRawPointer(values.baseAddress! + coordinates.lowerBound)
            packWords(fullWords, firstWord: firstWord, into: words, policy: policy, randomKey: randomKey) { offset in
                base.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
            }
        case .lionMomentum(let momentum, let gradient, let beta1, let beta2):
            let m = UnsafeMutableRawPointer(momentum.baseAddress! + coordinates.lowerBound)
            let g = UnsafeRawPointer(gradient.baseAddress! + coordinates.lowerBound)
            let b1 = SIMD16<Float>(repeating: beta1), c1 = SIMD16<Float>(repeating: 1 - beta1)
            let b2 = SIMD16<Float>(repeating: beta2), c2 = SIMD16<Float>(repeating: 1 - beta2)
            packWords(fullWords, firstWord: firstWord, into: words, policy: policy, randomKey: randomKey) { offset in
                let mv = m.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
                let gv = g.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
                m.storeBytes(of: b2 * mv + c2 * gv, toByteOffset: offset * 4, as: SIMD16<Float>.self)
                return b1 * mv + c1 * gv
            }
        }
        // The remaining words (a partial one, then pure padding) go through a zero-padded copy.
        for word in fullWords..<wordCount {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { lanes in
                lanes.initialize(repeating: 0)
                let start = coordinates.lowerBound + word * 64
                for lane in 0..<64 where start + lane < min(coordinates.upperBound, source.count) {
                    lanes[lane] = scalarSignInput(source, start + lane)
                }
                let base = UnsafeRawPointer(lanes.baseAddress!)
                packWords(1, firstWord: firstWord + word, into: words + word, policy: policy, randomKey: randomKey) { offset in
                    base.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
                }
            }
        }
    }

    /// The value whose sign coordinate `index` votes, updating momentum where the source does.
    private static func scalarSignInput(_ source: SignSource, _ index: Int) -> Float {
        switch source {
        case .values(let values):
            return values[index]
        case .lionMomentum(let momentum, let gradient, let beta1, let beta2):
            let m = momentum[index], g = gradient[index]
            momentum[index] = beta2 * m + (1 - beta2) * g
            return beta1 * m + (1 - beta1) * g
        }
    }

    /// Packs `wordCount` words; `load(offset)` returns the 16 floats starting at `offset`
    /// (a multiple of 16, relative to the first word).
    @inline(__always)
    private static func packWords(_ wordCount: Int, firstWord: Int, into words: UnsafeMutablePointer<UInt64>,
                                  policy: ZeroSignPolicy, randomKey: UInt64,
                                  load: (Int) -> SIMD16<Float>) {
        let zero = SIMD16<Float>(repeating: 0)
        switch policy {
        case .positive:
            for word in 0..<wordCount {
                var negative: UInt64 = 0
                for quarter in 0..<4 {
                    negative |= SignBits.moveMask(load(word * 64 + quarter * 16) .< zero) << UInt64(quarter * 16)
                }
                words[word] = ~negative
            }
        case .random:
            for word in 0..<wordCount {
                var positive: UInt64 = 0
                var negative: UInt64 = 0
                for quarter in 0..<4 {
                    let v = load(word * 64 + quarter * 16)
                    positive |= SignBits.moveMask(v .> zero) << UInt64(quarter * 16)
                    negative |= SignBits.moveMask(v .< zero) << UInt64(quarter * 16)
                }
                let noSign = ~(positive | negative)
                words[word] = positive | (noSign & SignBits.random(key: randomKey, index: firstWord + word))
            }
        }
    }

    /// Decodes result words `0..<wordCount` of a segment into `sink`, starting at sink
    /// coordinate `firstCoordinate` and stopping at the sink's end.
    ///
    /// `planeWord(p, w)` returns plane `p`'s bits for segment word `w`.
    static func unpack(wordCount: Int, firstCoordinate: Int, decoding: ResultDecoding, into sink: SignSink,
                       planeWord: (Int, Int) -> UInt64) {
        let end = min(sink.count, firstCoordinate + wordCount * 64)
        guard end > firstCoordinate else { return }
        let fullWords = (end - firstCoordinate) / 64
        switch sink {
        case .values(let output):
            let base = UnsafeMutableRawPointer(output.baseAddress! + firstCoordinate)
            decodeWords(fullWords, decoding: decoding, planeWord: planeWord) { offset, delta in
                base.storeBytes(of: delta, toByteOffset: offset * 4, as: SIMD16<Float>.self)
            }
        case .lionUpdate(let parameters, let learningRate, let weightDecay):
            let base = UnsafeMutableRawPointer(parameters.baseAddress! + firstCoordinate)
            let decay = SIMD16<Float>(repeating: 1 - learningRate * weightDecay)
            let step = SIMD16<Float>(repeating: learningRate)
            decodeWords(fullWords, decoding: decoding, planeWord: planeWord) { offset, delta in
                let x = base.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
                base.storeBytes(of: x * decay - step * delta, toByteOffset: offset * 4, as: SIMD16<Float>.self)
            }
        }
        // A final partial word, lane by lane.
        let tailStart = firstCoordinate + fullWords * 64
        guard tailStart < end else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { lanes in
            let base = UnsafeMutableRawPointer(lanes.baseAddress!)
            decodeWords(1, decoding: decoding, planeWord: { planeWord($0, fullWords + $1) }) { offset, delta in
                base.storeBytes(of: delta, toByteOffset: offset * 4, as: SIMD16<Float>.self)
            }
            for index in tailStart..<end {
                let delta = lanes[index - tailStart]
                switch sink {
                case .values(let output):
                    output[index] = delta
                case .lionUpdate(let parameters, let learningRate, let weightDecay):
                    parameters[index] = parameters[index] * (1 - learningRate * weightDecay) - learningRate * delta
                }
            }
        }
    }

    /// Decodes `wordCount` words, handing each 16 lanes of Δ to `store(offset, Δ)`.
    @inline(__always)
    private static func decodeWords(_ wordCount: Int, decoding: ResultDecoding, planeWord: (Int, Int) -> UInt64,
                                    store: (Int, SIMD16<Float>) -> Void) {
        let plus = SIMD16<Float>(repeating: 1), minus = SIMD16<Float>(repeating: -1)
        let zero = SIMD16<Float>(repeating: 0)
        switch decoding {
        case .sign:
            for word in 0..<wordCount {
                let bits = planeWord(0, word)
                for quarter in 0..<4 {
                    let positive = SignBits.lanesSet(bits >> UInt64(quarter * 16))
                    store(word * 64 + quarter * 16, minus.replacing(with: plus, where: positive))
                }
            }
        case .ternary:
            for word in 0..<wordCount {
                let signs = planeWord(0, word), nonzero = planeWord(1, word)
                for quarter in 0..<4 {
                    let shift = UInt64(quarter * 16)
                    let signed = minus.replacing(with: plus, where: SignBits.lanesSet(signs >> shift))
                    store(word * 64 + quarter * 16, zero.replacing(with: signed, where: SignBits.lanesSet(nonzero >> shift)))
                }
            }
        case .count(let planes, let ranks):
            let total = SIMD16<Float>(repeating: Float(ranks))
            for word in 0..<wordCount {
                for quarter in 0..<4 {
                    var count = SIMD16<Float>(repeating: 0)
                    for plane in 0..<planes {
                        let set = SignBits.lanesSet(planeWord(plane, word) >> UInt64(quarter * 16))
                        count = count.replacing(with: count + SIMD16<Float>(repeating: Float(1 << plane)), where: set)
                    }
                    store(word * 64 + quarter * 16, (count + count - total) / total)
                }
            }
        }
    }
}
