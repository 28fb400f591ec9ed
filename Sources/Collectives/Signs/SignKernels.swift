import CVectorOps

/// Where the signs of a sign allreduce come from.
public enum SignSource {
    /// δ = sign(values[i]).
    case values(UnsafeBufferPointer<Float>)
    /// Lion's update direction δ = sign(β1·m + (1−β1)·g), and in the same pass Lion's new
    /// momentum β2·m + (1−β2)·g written to `nextMomentum`: no intermediate float array is
    /// written. `nextMomentum` may be `momentum` itself (an update in place), `gradient` itself
    /// (the gradient's storage reused, its values being dead after the step), or a buffer
    /// overlapping neither.
    case lionMomentum(momentum: UnsafeBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
                      nextMomentum: UnsafeMutableBufferPointer<Float>, beta1: Float, beta2: Float)

    /// The number of coordinates.
    public var count: Int {
        switch self {
        case .values(let values): return values.count
        case .lionMomentum(let momentum, let gradient, let next, _, _): return min(momentum.count, gradient.count, next.count)
        }
    }

    /// Why the source's buffers are unusable, if they are.
    var problem: String? {
        guard case .lionMomentum(let momentum, let gradient, let next, _, _) = self else { return nil }
        if momentum.count != gradient.count || next.count != gradient.count {
            return "momentum, gradient and nextMomentum have \(momentum.count), \(gradient.count) and \(next.count) elements; they must match"
        }
        let target = UnsafeBufferPointer(next)
        for (name, other) in [("momentum", momentum), ("gradient", gradient)]
        where target.baseAddress != other.baseAddress && target.overlaps(other) {
            return "nextMomentum overlaps \(name) without being it; pass \(name) itself or a separate buffer"
        }
        return nil
    }
}

extension UnsafeBufferPointer {
    /// Whether the two buffers share any element.
    func overlaps(_ other: UnsafeBufferPointer) -> Bool {
        guard let base = baseAddress, let otherBase = other.baseAddress, count > 0, other.count > 0 else { return false }
        return base < otherBase + other.count && otherBase < base + count
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
///
/// The loops are generic over small lane loaders and storers rather than closures, so that
/// each specialization inlines completely and the 16-lane vectors stay in registers.
enum SignKernels {
    /// Runs of at least this many words (256 KiB of floats) are written with non-temporal
    /// stores; shorter ones are likely still in cache when read.
    static let streamingThreshold = 1024

    /// Packs the signs of coordinates `coordinates` of `source` into `words` (64 a word;
    /// `coordinates.lowerBound` must be a multiple of 64). Coordinates past the end of the
    /// source pack as exact zeros. `randomKey` seeds the zero policy's coin flips.
    ///
    /// Returns whether the values the source checks (``NonFiniteInput/skip``) were all finite;
    /// without `checksFinite` the check is compiled out and the result is `true`.
    @discardableResult
    static func pack(_ source: SignSource, coordinates: Range<Int>, into words: UnsafeMutablePointer<UInt64>,
                     policy: ZeroSignPolicy, randomKey: UInt64, checksFinite: Bool = false) -> Bool {
        if checksFinite {
            var probe = FiniteProbe()
            pack(source, coordinates: coordinates, into: words, policy: policy, randomKey: randomKey, &probe)
            return probe.allFinite
        }
        var probe = NoProbe()
        pack(source, coordinates: coordinates, into: words, policy: policy, randomKey: randomKey, &probe)
        return true
    }

    private static func pack<Probe: ValueProbe>(_ source: SignSource, coordinates: Range<Int>, into words: UnsafeMutablePointer<UInt64>,
                                                policy: ZeroSignPolicy, randomKey: UInt64, _ probe: inout Probe) {
        precondition(coordinates.lowerBound % 64 == 0, "pack: a range must start on a word boundary")
        let wordCount = (coordinates.count + 63) / 64
        let fullWords = max(0, min(wordCount, (source.count - coordinates.lowerBound) / 64))
        let firstWord = coordinates.lowerBound / 64
        packWords(of: source, from: coordinates.lowerBound, count: fullWords, firstWord: firstWord, into: words,
                  policy: policy, randomKey: randomKey, &probe)
        // The remaining words (a partial one, then pure padding) go through a zero-padded copy.
        for word in fullWords..<wordCount {
            let start = coordinates.lowerBound + word * 64
            let valid = max(0, min(coordinates.upperBound, source.count) - start)
            withZeroPaddedWord(of: source, from: start, valid: valid) { padded in
                packWords(of: padded, from: 0, count: 1, firstWord: firstWord + word, into: words + word,
                          policy: policy, randomKey: randomKey, &probe)
            }
        }
    }

    /// Packs `count` whole words of `source` starting at coordinate `offset`.
    private static func packWords<Probe: ValueProbe>(of source: SignSource, from offset: Int, count: Int, firstWord: Int,
                                                     into words: UnsafeMutablePointer<UInt64>, policy: ZeroSignPolicy,
                                                     randomKey: UInt64, _ probe: inout Probe) {
        switch source {
        case .values(let values):
            let loader = ValueLanes(base: UnsafeRawPointer(values.baseAddress! + offset))
            packWords(count, firstWord: firstWord, into: words, policy: policy, randomKey: randomKey, loader, &probe)
        case .lionMomentum(let momentum, let gradient, let next, let beta1, let beta2):
            let loader = LionDirectionLanes(momentum: UnsafeRawPointer(momentum.baseAddress! + offset),
                                            gradient: UnsafeRawPointer(gradient.baseAddress! + offset),
                                            nextMomentum: UnsafeMutableRawPointer(next.baseAddress! + offset),
                                            beta1: beta1, beta2: beta2)
            packWords(count, firstWord: firstWord, into: words, policy: policy, randomKey: randomKey, loader, &probe)
        }
    }

    /// Runs `body` on a copy of the 64 coordinates of `source` from `start`, of which the first
    /// `valid` are real and the rest zero, and writes back what `body` wrote (the new momentum).
    private static func withZeroPaddedWord(of source: SignSource, from start: Int, valid: Int, _ body: (SignSource) -> Void) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 128) { padded in
            padded.initialize(repeating: 0)
            let first = UnsafeMutableBufferPointer(rebasing: padded[0..<64])
            switch source {
            case .values(let values):
                for lane in 0..<valid { first[lane] = values[start + lane] }
                body(.values(UnsafeBufferPointer(first)))
            case .lionMomentum(let momentum, let gradient, let next, let beta1, let beta2):
                let second = UnsafeMutableBufferPointer(rebasing: padded[64..<128])
                for lane in 0..<valid {
                    first[lane] = momentum[start + lane]
                    second[lane] = gradient[start + lane]
                }
                body(.lionMomentum(momentum: UnsafeBufferPointer(first), gradient: UnsafeBufferPointer(second),
                                   nextMomentum: first, beta1: beta1, beta2: beta2))
                for lane in 0..<valid { next[start + lane] = first[lane] }
            }
        }
    }

    @inline(__always)
    private static func packWords<Lanes: LaneLoader, Probe: ValueProbe>(_ wordCount: Int, firstWord: Int, into words: UnsafeMutablePointer<UInt64>,
                                                                       policy: ZeroSignPolicy, randomKey: UInt64, _ lanes: Lanes,
                                                                       _ probe: inout Probe) {
        for word in 0..<wordCount {
            // One pass: the sign bits and the lanes without a sign (±0, NaN), each a move-mask.
            // Most words have no signless lane and take the first branch.
            lanes.prefetchAhead(word * 64)
            var negative: UInt64 = 0, signless: UInt64 = 0
            for quarter in 0..<4 {
                let values = lanes.load(word * 64 + quarter * 16)
                negative |= UInt64(dlion_negative_bits16(values)) << UInt64(quarter * 16)
                signless |= UInt64(dlion_signless_bits16(values)) << UInt64(quarter * 16)
            }
            if signless == 0 {
                words[word] = ~negative
            } else {
                switch policy {
                case .positive:
                    words[word] = ~(negative & ~signless)
                case .random:
                    words[word] = (~negative & ~signless) | (signless & SignBits.random(key: randomKey, index: firstWord + word))
                }
            }
            for quarter in 0..<4 { probe.add(lanes.finish(word * 64 + quarter * 16)) }
        }
    }

    /// Decodes result words `0..<wordCount` of `planes` into `sink`, starting at sink
    /// coordinate `firstCoordinate` and stopping at the sink's end.
    static func unpack<Planes: PlaneReader>(wordCount: Int, firstCoordinate: Int, decoding: ResultDecoding,
                                            into sink: SignSink, _ planes: Planes) {
        let end = min(sink.count, firstCoordinate + wordCount * 64)
        guard end > firstCoordinate else { return }
        let fullWords = (end - firstCoordinate) / 64
        decodeWords(fullWords, firstCoordinate: firstCoordinate, decoding: decoding, into: sink, planes)
        // A final partial word goes through a zero-padded copy of the sink.
        let tailStart = firstCoordinate + fullWords * 64
        guard tailStart < end else { return }
        let valid = end - tailStart
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { padded in
            padded.initialize(repeating: 0)
            let tail = OffsetPlanes(planes: planes, firstWord: fullWords)
            switch sink {
            case .values(let output):
                decodeWords(1, firstCoordinate: 0, decoding: decoding, into: .values(padded), tail)
                for lane in 0..<valid { output[tailStart + lane] = padded[lane] }
            case .lionUpdate(let parameters, let learningRate, let weightDecay):
                for lane in 0..<valid { padded[lane] = parameters[tailStart + lane] }
                decodeWords(1, firstCoordinate: 0, decoding: decoding,
                            into: .lionUpdate(parameters: padded, learningRate: learningRate, weightDecay: weightDecay), tail)
                for lane in 0..<valid { parameters[tailStart + lane] = padded[lane] }
            }
        }
    }

    /// Decodes `wordCount` whole words into `sink` from coordinate `firstCoordinate`, with
    /// non-temporal stores for long runs into a float output.
    private static func decodeWords<Planes: PlaneReader>(_ wordCount: Int, firstCoordinate: Int, decoding: ResultDecoding,
                                                         into sink: SignSink, _ planes: Planes) {
        switch sink {
        case .values(let output):
            let start = output.baseAddress! + firstCoordinate
            if Int(bitPattern: start) % 16 == 0 && wordCount >= streamingThreshold {
                decodeWords(wordCount, decoding: decoding, planes, StreamingValueStore(base: start))
                dlion_stream_fence()
            } else {
                decodeWords(wordCount, decoding: decoding, planes, ValueStore(base: UnsafeMutableRawPointer(start)))
            }
        case .lionUpdate(let parameters, let learningRate, let weightDecay):
            let lanes = LionUpdateStore(base: UnsafeMutableRawPointer(parameters.baseAddress! + firstCoordinate),
                                        decay: 1 - learningRate * weightDecay, learningRate: learningRate)
            decodeWords(wordCount, decoding: decoding, planes, lanes)
        }
    }

    @inline(__always)
    private static func decodeWords<Planes: PlaneReader, Lanes: LaneStorer>(_ wordCount: Int, decoding: ResultDecoding,
                                                                           _ planes: Planes, _ lanes: Lanes) {
        let plusOne = SIMD16<Int32>(repeating: 0x3F80_0000)  // the bits of +1.0
        let signBit = SIMD16<Int32>(repeating: Int32(bitPattern: 0x8000_0000))
        switch decoding {
        case .sign:
            // Eight signs a table lookup: 256 entries of 8 floats, 8 KiB, stay in L1.
            SignBits.signTable.withUnsafeBufferPointer { table in
                for word in 0..<wordCount {
                    let bits = planes.word(plane: 0, word: word)
                    for quarter in 0..<4 {
                        let low = table[Int(truncatingIfNeeded: bits >> UInt64(quarter * 16)) & 0xFF]
                        let high = table[Int(truncatingIfNeeded: bits >> UInt64(quarter * 16 + 8)) & 0xFF]
                        lanes.store(word * 64 + quarter * 16, SIMD16(lowHalf: low, highHalf: high))
                    }
                }
            }
        case .ternary:
            for word in 0..<wordCount {
                let signs = planes.word(plane: 0, word: word), nonzero = planes.word(plane: 1, word: word)
                for quarter in 0..<4 {
                    let shift = UInt64(quarter * 16)
                    let negative = ~SignBits.lanesSet(signs >> shift) & signBit
                    let value = (plusOne | negative) & SignBits.lanesSet(nonzero >> shift)
                    lanes.store(word * 64 + quarter * 16, unsafeBitCast(value, to: SIMD16<Float>.self))
                }
            }
        case .count(let planeCount, let ranks):
            let total = SIMD16<Float>(repeating: Float(ranks))
            for word in 0..<wordCount {
                for quarter in 0..<4 {
                    var count = SIMD16<Int32>(repeating: 0)
                    for plane in 0..<planeCount {
                        let set = SignBits.lanesSet(planes.word(plane: plane, word: word) >> UInt64(quarter * 16))
                        count &+= set & SIMD16(repeating: Int32(1) << Int32(plane))
                    }
                    let votes = SIMD16<Float>(count)
                    lanes.store(word * 64 + quarter * 16, (votes + votes - total) / total)
                }
            }
        }
    }
}

/// Supplies 16 floats at a time to the pack loop.
protocol LaneLoader {
    /// The 16 values starting `offset` floats after the loader's start; no side effects.
    func load(_ offset: Int) -> SIMD16<Float>
    /// Called once per 16 lanes after they are packed, for the source's own updates; returns
    /// the lanes a non-finite check looks at.
    func finish(_ offset: Int) -> SIMD16<Float>
    /// Prefetches the values a fixed distance (`DLION_PREFETCH_DISTANCE`) past `offset`;
    /// called once per 64 lanes.
    func prefetchAhead(_ offset: Int)
}

/// Loads plain values.
struct ValueLanes: LaneLoader {
    let base: UnsafeRawPointer

    @inline(__always)
    func load(_ offset: Int) -> SIMD16<Float> { base.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self) }

    @inline(__always)
    func finish(_ offset: Int) -> SIMD16<Float> { load(offset) }

    @inline(__always)
    func prefetchAhead(_ offset: Int) { dlion_prefetch_ahead(base.assumingMemoryBound(to: Float.self) + offset) }
}

/// Computes Lion's direction β1·m + (1−β1)·g; once packed, writes the new momentum
/// β2·m + (1−β2)·g to `nextMomentum` (which may be either input: each 16 lanes are read
/// before they are written).
struct LionDirectionLanes: LaneLoader {
    let momentum: UnsafeRawPointer
    let gradient: UnsafeRawPointer
    let nextMomentum: UnsafeMutableRawPointer
    let beta1: Float
    let beta2: Float

    @inline(__always)
    func load(_ offset: Int) -> SIMD16<Float> {
        let m = momentum.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
        let g = gradient.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
        return beta1 * m + (1 - beta1) * g
    }

    @inline(__always)
    func prefetchAhead(_ offset: Int) {
        dlion_prefetch_ahead(momentum.assumingMemoryBound(to: Float.self) + offset)
        dlion_prefetch_ahead(gradient.assumingMemoryBound(to: Float.self) + offset)
    }

    @inline(__always)
    func finish(_ offset: Int) -> SIMD16<Float> {
        let m = momentum.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
        let g = gradient.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
        let next = beta2 * m + (1 - beta2) * g
        nextMomentum.storeBytes(of: next, toByteOffset: offset * 4, as: SIMD16<Float>.self)
        return next
    }
}

/// Looks at the values a pack checks, 16 at a time.
protocol ValueProbe {
    mutating func add(_ values: SIMD16<Float>)
}

/// Checks nothing; the compiler removes the calls.
struct NoProbe: ValueProbe {
    @inline(__always)
    mutating func add(_ values: SIMD16<Float>) {}
}

extension FiniteProbe: ValueProbe {}

/// Receives 16 decoded Δ values at a time from the unpack loop.
protocol LaneStorer {
    /// Takes the Δ of the 16 coordinates starting `offset` floats after the storer's start.
    func store(_ offset: Int, _ delta: SIMD16<Float>)
}

/// Writes Δ.
struct ValueStore: LaneStorer {
    let base: UnsafeMutableRawPointer

    @inline(__always)
    func store(_ offset: Int, _ delta: SIMD16<Float>) {
        base.storeBytes(of: delta, toByteOffset: offset * 4, as: SIMD16<Float>.self)
    }
}

/// Writes Δ with non-temporal stores: the output is written once and read later, so reading
/// each line before overwriting it (as a cached store must) would double the memory traffic.
/// `base` must be 16-byte aligned; call ``dlion_stream_fence()`` when done.
struct StreamingValueStore: LaneStorer {
    let base: UnsafeMutablePointer<Float>

    @inline(__always)
    func store(_ offset: Int, _ delta: SIMD16<Float>) {
        let destination = base + offset
        dlion_stream_store4(destination, delta.lowHalf.lowHalf)
        dlion_stream_store4(destination + 4, delta.lowHalf.highHalf)
        dlion_stream_store4(destination + 8, delta.highHalf.lowHalf)
        dlion_stream_store4(destination + 12, delta.highHalf.highHalf)
    }
}

/// Applies x ← x·(1 − ηλ) − η·Δ, prefetching x ahead.
struct LionUpdateStore: LaneStorer {
    let base: UnsafeMutableRawPointer
    let decay: Float
    let learningRate: Float

    @inline(__always)
    func store(_ offset: Int, _ delta: SIMD16<Float>) {
        if offset % 64 == 0 { dlion_prefetch_ahead(base.assumingMemoryBound(to: Float.self) + offset) }
        let x = base.loadUnaligned(fromByteOffset: offset * 4, as: SIMD16<Float>.self)
        base.storeBytes(of: x * decay - learningRate * delta, toByteOffset: offset * 4, as: SIMD16<Float>.self)
    }
}

/// Reads the bit planes of a result.
protocol PlaneReader {
    /// Plane `plane`'s bits for word `word`.
    func word(plane: Int, word: Int) -> UInt64
}

/// Planes stored one after another, `stride` words apart.
struct ContiguousPlanes: PlaneReader {
    let base: UnsafePointer<UInt64>
    let stride: Int

    @inline(__always)
    func word(plane: Int, word: Int) -> UInt64 { base[plane * stride + word] }
}

/// Another reader's planes seen from word `firstWord` on.
struct OffsetPlanes<Planes: PlaneReader>: PlaneReader {
    let planes: Planes
    let firstWord: Int

    @inline(__always)
    func word(plane: Int, word: Int) -> UInt64 { planes.word(plane: plane, word: firstWord + word) }
}
