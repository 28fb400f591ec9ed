import PropertyBased
import Testing
@testable import Collectives

/// Random floats, a third of them awkward, in arrays whose lengths cross word boundaries.
let floatArrays = zip(Gen.int(in: 0...(3 * awkwardFloats.count - 1)), Gen<Float>.float(in: -2...2))
    .map { pick, value in pick < awkwardFloats.count ? awkwardFloats[pick] : value }
    .array(of: 0...300)

@Suite struct SignKernelTests {
    @Test func packMatchesScalarSignsWithPositivePolicy() async {
        await propertyCheck(input: floatArrays) { values in
            let packed = PackedSigns(signsOf: values, zeroPolicy: .positive)
            let expected = values.map { ScalarReference.sign($0) ?? true }
            #expect(ScalarReference.bits(packed.words, count: values.count) == expected)
        }
    }

    @Test func packKeepsSignsAndFlipsReproducibleCoinsForZeros() async {
        await propertyCheck(input: floatArrays, Gen.uint64(in: 0...1000)) { values, seed in
            let packed = PackedSigns(signsOf: values, zeroPolicy: .random, seed: seed)
            let bits = ScalarReference.bits(packed.words, count: values.count)
            for (value, bit) in zip(values, bits) {
                if let sign = ScalarReference.sign(value) { #expect(bit == sign) }
            }
            #expect(PackedSigns(signsOf: values, zeroPolicy: .random, seed: seed) == packed)
        }
    }

    @Test func randomZeroPolicyIsUnbiased() {
        let packed = PackedSigns(signsOf: [Float](repeating: 0, count: 1 << 16), zeroPolicy: .random, seed: 9)
        let plus = packed.words.reduce(0) { $0 + $1.nonzeroBitCount }
        // 65536 fair coins: the standard deviation is 128.
        #expect(abs(plus - (1 << 15)) < 640)
    }

    @Test func unpackGivesPlusOrMinusOne() async {
        await propertyCheck(input: floatArrays) { values in
            let packed = PackedSigns(signsOf: values, zeroPolicy: .positive)
            let expected = values.map { (ScalarReference.sign($0) ?? true) ? Float(1) : -1 }
            #expect(packed.unpacked() == expected)
        }
    }

    @Test func ternaryUnpackZeroesWhereNonzeroIsClear() async {
        await propertyCheck(input: Gen<Float>.float(in: -1...1).array(of: 0...200), Gen<Float>.float(in: -1...1).array(of: 200)) { signs, mask in
            let packedSigns = PackedSigns(signsOf: signs, zeroPolicy: .positive)
            let nonzero = PackedSigns(signsOf: Array(mask.prefix(signs.count)), zeroPolicy: .positive)
            var output = [Float](repeating: 7, count: signs.count)
            output.withUnsafeMutableBufferPointer { packedSigns.unpack(into: $0, nonzero: nonzero) }
            let expected = zip(signs, mask).map { sign, keep -> Float in keep < 0 ? 0 : (sign < 0 ? -1 : 1) }
            #expect(output == expected)
        }
    }

    @Test func packReportsNonFiniteValuesWhenAskedAnywhereInTheVector() async {
        // Lengths cross whole words and the zero-padded tail; the bad value lands anywhere.
        await propertyCheck(input: Gen.int(in: 1...300), Gen.int(in: 0...299), Gen.int(in: 0...2)) { length, position, kind in
            var values = [Float](repeating: 0.5, count: length)
            let words = (length + 63) / 64
            func pack() -> (checked: Bool, unchecked: Bool) {
                var output = [UInt64](repeating: 0, count: words)
                return values.withUnsafeBufferPointer { v in
                    output.withUnsafeMutableBufferPointer { o in
                        (SignKernels.pack(FloatSource(v), coordinates: 0..<length, into: o.baseAddress!, policy: .positive,
                                          randomKey: 0, checksFinite: true),
                         SignKernels.pack(FloatSource(v), coordinates: 0..<length, into: o.baseAddress!, policy: .positive,
                                          randomKey: 0))
                    }
                }
            }
            #expect(pack() == (true, true))
            values[position % length] = [Float.nan, .infinity, -.infinity][kind]
            #expect(pack() == (false, true))
        }
    }

    @Test func ternaryPackWritesPositiveAndNotNegativePlanes() async {
        await propertyCheck(input: floatArrays) { values in
            let words = (values.count + 63) / 64
            var planes = [UInt64](repeating: 0, count: 2 * max(words, 1))
            values.withUnsafeBufferPointer { v in
                planes.withUnsafeMutableBufferPointer { p in
                    _ = SignKernels.pack(FloatSource(v), coordinates: 0..<values.count, into: p.baseAddress!,
                                         policy: .positive, randomKey: 0, ternaryPlaneStride: max(words, 1))
                }
            }
            let positive = ScalarReference.bits(Array(planes.prefix(words)), count: values.count)
            let notNegative = ScalarReference.bits(Array(planes.suffix(from: max(words, 1))), count: values.count)
            #expect(positive == values.map { ScalarReference.sign($0) == true })
            #expect(notNegative == values.map { ScalarReference.sign($0) != false })
        }
    }

    @Test func ternaryCountDecodingGivesTheMeanTernaryCode() async {
        await propertyCheck(input: Gen.int(in: 1...40), Gen.int(in: 0...1000).array(of: 1...130)) { ranks, seeds in
            let counts = seeds.map { $0 % (2 * ranks + 1) }
            let planes = SignReduction.ternaryAverage.resultPlanes(ranks: ranks)
            let output = Self.decoded(counts, planes: planes, decoding: .ternaryCount(planes: planes, ranks: ranks))
            #expect(output == counts.map { Float($0 - ranks) / Float(ranks) })
        }
    }

    @Test func countDecodingGivesTheAverageVote() async {
        await propertyCheck(input: Gen.int(in: 1...40), Gen.int(in: 0...1000).array(of: 1...130)) { ranks, seeds in
            let counts = seeds.map { $0 % (ranks + 1) }
            let planes = SignReduction.average.countPlanes(ranks: ranks)
            let output = Self.decoded(counts, planes: planes, decoding: .count(planes: planes, ranks: ranks))
            #expect(output == counts.map { Float(2 * $0 - ranks) / Float(ranks) })
        }
    }

    /// `counts` written as `planes` bit planes, then unpacked with `decoding`.
    static func decoded(_ counts: [Int], planes: Int, decoding: ResultDecoding) -> [Float] {
        let words = (counts.count + 63) / 64
        var planeWords = [UInt64](repeating: 0, count: planes * words)
        for (index, count) in counts.enumerated() {
            for plane in 0..<planes where count >> plane & 1 == 1 {
                planeWords[plane * words + index / 64] |= 1 << UInt64(index % 64)
            }
        }
        var output = [Float](repeating: 0, count: counts.count)
        planeWords.withUnsafeBufferPointer { planeBuffer in
            output.withUnsafeMutableBufferPointer { out in
                SignKernels.unpack(wordCount: words, firstCoordinate: 0, decoding: decoding,
                                   into: FloatSink(out), ContiguousPlanes(base: planeBuffer.baseAddress!, stride: words))
            }
        }
        return output
    }
}
