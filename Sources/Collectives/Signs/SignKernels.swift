import CVectorOps

/// How the bit planes of a result decode into Δ.
@usableFromInline
enum ResultDecoding: Equatable {
    /// One plane: set → +1, clear → −1.
    case sign
    /// Plane 0 the sign, plane 1 set where the result is non-zero.
    case ternary
    /// `planes` planes holding the count c of +1 votes out of `ranks`: Δ = (2c − N)/N.
    case count(planes: Int, ranks: Int)
    /// `planes` planes holding c = Σ sign + N over `ranks` ternary inputs: Δ = (c − N)/N.
    case ternaryCount(planes: Int, ranks: Int)
}

/// The pack and unpack kernels: a ``SignSource``'s values to sign bits, and result bits to a
/// ``SignSink``, 16 lanes at a time with no per-bit branches.
///
/// The loops are generic over the source, the sink and the plane reader rather than taking
/// closures, so that each specialization (including one for a source or sink defined in
/// another module) inlines completely and the 16-lane vectors stay in registers.
@usableFromInline
enum SignKernels {
    /// Packs the signs of coordinates `coordinates` of `source` into `words` (64 a word;
    /// `coordinates.lowerBound` must be a multiple of 64). Coordinates past the end of the
    /// source pack as exact zeros. `randomKey` seeds the zero policy's coin flips.
    ///
    /// With a `ternaryPlaneStride` above 0, each word packs as two (``SignReduction/ternaryAverage``'s
    /// input): the positive lanes at `words`, the lanes that are not negative (±0 and NaN
    /// included) `ternaryPlaneStride` words further; the zero policy does not apply.
    ///
    /// Returns whether the values the source checks (``NonFiniteInput/skip``) were all finite;
    /// without `checksFinite` the check is compiled out and the result is `true`.
    @inlinable
    static func pack<Source: SignSource>(_ source: Source, coordinates: Range<Int>, into words: UnsafeMutablePointer<UInt64>,
                                         policy: ZeroSignPolicy, randomKey: UInt64, ternaryPlaneStride: Int = 0,
                                         checksFinite: Bool = false) -> Bool {
        if checksFinite {
            var probe = FiniteProbe()
            pack(source, coordinates: coordinates, into: words, policy: policy, randomKey: randomKey,
                 ternaryPlaneStride: ternaryPlaneStride, &probe)
            return probe.allFinite
        }
        var probe = NoProbe()
        pack(source, coordinates: coordinates, into: words, policy: policy, randomKey: randomKey,
             ternaryPlaneStride: ternaryPlaneStride, &probe)
        return true
    }

    @inlinable
    static func pack<Source: SignSource, Probe: ValueProbe>(_ source: Source, coordinates: Range<Int>,
                                                             into words: UnsafeMutablePointer<UInt64>, policy: ZeroSignPolicy,
                                                             randomKey: UInt64, ternaryPlaneStride: Int, _ probe: inout Probe) {
        precondition(coordinates.lowerBound % 64 == 0, "pack: a range must start on a word boundary")
        let start = coordinates.lowerBound
        let wordCount = (coordinates.count + 63) / 64
        let fullWords = max(0, min(wordCount, (source.count - start) / 64))
        let firstWord = start / 64
        for word in 0..<fullWords {
            source.prefetchAhead(start + word * 64)
            packWord(source, from: start + word * 64, valid: 64, index: firstWord + word, into: words + word,
                     policy: policy, randomKey: randomKey, ternaryPlaneStride: ternaryPlaneStride, &probe)
        }
        // A partial word, then pure padding: lanes past the source's end are zeros.
        let end = min(coordinates.upperBound, source.count)
        for word in fullWords..<wordCount {
            let wordStart = start + word * 64
            packWord(source, from: wordStart, valid: max(0, end - wordStart), index: firstWord + word, into: words + word,
                     policy: policy, randomKey: randomKey, ternaryPlaneStride: ternaryPlaneStride, &probe)
        }
    }

    /// Packs the 64 coordinates from `offset`, of which the first `valid` are real, into
    /// `word` (and, ternary, `word[ternaryPlaneStride]`); `index` is the word's index in the
    /// whole vector, for the coin flips.
    @inlinable @inline(__always)
    static func packWord<Source: SignSource, Probe: ValueProbe>(_ source: Source, from offset: Int, valid: Int, index: Int,
                                                                 into word: UnsafeMutablePointer<UInt64>, policy: ZeroSignPolicy,
                                                                 randomKey: UInt64, ternaryPlaneStride: Int, _ probe: inout Probe) {
        // One pass: the sign bits and the lanes without a sign (±0, NaN), each a move-mask.
        // Most words have no signless lane and take the first branch.
        var negative: UInt64 = 0, signless: UInt64 = 0
        for quarter in 0..<4 {
            let values = source.load(offset + quarter * 16, valid: lanes(quarter, of: valid))
            negative |= UInt64(dlion_negative_bits16(values)) << UInt64(quarter * 16)
            signless |= UInt64(dlion_signless_bits16(values)) << UInt64(quarter * 16)
        }
        if ternaryPlaneStride > 0 {
            word.pointee = ~negative & ~signless
            word[ternaryPlaneStride] = ~negative | signless
        } else if signless == 0 {
            word.pointee = ~negative
        } else {
            switch policy {
            case .positive:
                word.pointee = ~(negative & ~signless)
            case .random:
                word.pointee = (~negative & ~signless) | (signless & SignBits.random(key: randomKey, index: index))
            }
        }
        for quarter in 0..<4 { probe.add(source.finish(offset + quarter * 16, valid: lanes(quarter, of: valid))) }
    }

    /// How many of quarter `quarter`'s 16 lanes are among a word's first `valid`. A whole word
    /// (`valid` 64, a constant in the main loops) gives 16 whatever the quarter, so that the
    /// lane loads and stores compile to single vector moves with no partial path.
    @inlinable @inline(__always)
    static func lanes(_ quarter: Int, of valid: Int) -> Int { valid >= 64 ? 16 : min(16, max(0, valid - quarter * 16)) }

    /// Decodes result words `0..<wordCount` of `planes` into `sink`, starting at sink
    /// coordinate `firstCoordinate` (a multiple of 64) and stopping at the sink's end.
    @inlinable
    static func unpack<Sink: SignSink, Planes: PlaneReader>(wordCount: Int, firstCoordinate: Int, decoding: ResultDecoding,
                                                            into sink: Sink, _ planes: Planes) {
        let end = min(sink.count, firstCoordinate + wordCount * 64)
        guard end > firstCoordinate else { return }
        let fullWords = (end - firstCoordinate) / 64
        decodeWords(0..<fullWords, valid: 64, firstCoordinate: firstCoordinate, decoding: decoding, planes, sink)
        let tail = (end - firstCoordinate) % 64
        if tail > 0 {
            decodeWords(fullWords..<fullWords + 1, valid: tail, firstCoordinate: firstCoordinate, decoding: decoding, planes, sink)
        }
        sink.endRun()
    }

    /// Decodes `words`, of which each has its first `valid` coordinates stored, into `sink`.
    @inlinable @inline(__always)
    static func decodeWords<Planes: PlaneReader, Sink: SignSink>(_ words: Range<Int>, valid: Int, firstCoordinate: Int,
                                                                 decoding: ResultDecoding, _ planes: Planes, _ sink: Sink) {
        let plusOne = SIMD16<Int32>(repeating: 0x3F80_0000)  // the bits of +1.0
        let signBit = SIMD16<Int32>(repeating: Int32(bitPattern: 0x8000_0000))
        @inline(__always) func store(_ word: Int, _ quarter: Int, _ delta: SIMD16<Float>) {
            let count = lanes(quarter, of: valid)
            if count > 0 { sink.store(firstCoordinate + word * 64 + quarter * 16, delta, valid: count) }
        }
        switch decoding {
        case .sign:
            // Eight signs a table lookup: 256 entries of 8 floats, 8 KiB, stay in L1.
            SignBits.signTable.withUnsafeBufferPointer { table in
                for word in words {
                    let bits = planes.word(plane: 0, word: word)
                    for quarter in 0..<4 {
                        let low = table[Int(truncatingIfNeeded: bits >> UInt64(quarter * 16)) & 0xFF]
                        let high = table[Int(truncatingIfNeeded: bits >> UInt64(quarter * 16 + 8)) & 0xFF]
                        store(word, quarter, SIMD16(lowHalf: low, highHalf: high))
                    }
                }
            }
        case .ternary:
            for word in words {
                let signs = planes.word(plane: 0, word: word), nonzero = planes.word(plane: 1, word: word)
                for quarter in 0..<4 {
                    let shift = UInt64(quarter * 16)
                    let negative = ~SignBits.lanesSet(signs >> shift) & signBit
                    let value = (plusOne | negative) & SignBits.lanesSet(nonzero >> shift)
                    store(word, quarter, unsafeBitCast(value, to: SIMD16<Float>.self))
                }
            }
        case .count(let planeCount, let ranks):
            let total = SIMD16<Float>(repeating: Float(ranks))
            for word in words {
                for quarter in 0..<4 {
                    let votes = SIMD16<Float>(countLanes(planes, planeCount: planeCount, word: word, quarter: quarter))
                    store(word, quarter, (votes + votes - total) / total)
                }
            }
        case .ternaryCount(let planeCount, let ranks):
            let total = SIMD16<Float>(repeating: Float(ranks))
            for word in words {
                for quarter in 0..<4 {
                    let count = SIMD16<Float>(countLanes(planes, planeCount: planeCount, word: word, quarter: quarter))
                    store(word, quarter, (count - total) / total)
                }
            }
        }
    }
}

extension SignKernels {
    /// The counts held in `planeCount` planes for quarter `quarter` (16 coordinates) of `word`.
    @inlinable @inline(__always)
    static func countLanes<Planes: PlaneReader>(_ planes: Planes, planeCount: Int, word: Int, quarter: Int) -> SIMD16<Int32> {
        var count = SIMD16<Int32>(repeating: 0)
        for plane in 0..<planeCount {
            let set = SignBits.lanesSet(planes.word(plane: plane, word: word) >> UInt64(quarter * 16))
            count &+= set & SIMD16(repeating: Int32(1) << Int32(plane))
        }
        return count
    }
}

/// Looks at the values a pack checks, 16 at a time.
@usableFromInline
protocol ValueProbe {
    mutating func add(_ values: SIMD16<Float>)
}

/// Checks nothing; the compiler removes the calls.
@usableFromInline
struct NoProbe: ValueProbe {
    @inlinable init() {}

    @inlinable @inline(__always)
    mutating func add(_ values: SIMD16<Float>) {}
}

extension FiniteProbe: ValueProbe {}

/// Reads the bit planes of a result.
@usableFromInline
protocol PlaneReader {
    /// Plane `plane`'s bits for word `word`.
    func word(plane: Int, word: Int) -> UInt64
}

/// Planes stored one after another, `stride` words apart.
@usableFromInline
struct ContiguousPlanes: PlaneReader {
    @usableFromInline let base: UnsafePointer<UInt64>
    @usableFromInline let stride: Int

    @inlinable
    init(base: UnsafePointer<UInt64>, stride: Int) {
        self.base = base
        self.stride = stride
    }

    @inlinable @inline(__always)
    func word(plane: Int, word: Int) -> UInt64 { base[plane * stride + word] }
}
