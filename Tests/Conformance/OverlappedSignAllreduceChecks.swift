import Collectives
import Training

/// Checks the overlapped sign allreduce (``SignAllreduce/allreduce(_:into:nonFinite:whileFilling:)``)
/// against the plain one: the same result bit for bit, the same bytes, the same verdict.
struct OverlappedSignAllreduceChecks {
    let harness: Harness
    var world: Communicator { harness.world }

    func runAll() {
        let n = world.size
        let reductions: [SignReduction] = [.majorityVote(.randomTieBreak), .majorityVote(.zero), .average, .ternaryAverage]
        for length in [0, 1, 65, 64 * n * 3 + 17, 100_003] {
            for reduction in reductions {
                for bucketLength in [64 * n, 64 * n * 5, 1 << 18] {
                    check(length: length, reduction: reduction, bucketLength: bucketLength)
                }
            }
        }
        checkFusedLion()
        checkBadInput()
    }

    /// The source's values are written only inside `fill`, piece by piece from the end, as a
    /// backward pass writes gradients; before that the buffer holds NaN, so a bucket packed
    /// before it was declared ready would vote differently.
    func check(length: Int, reduction: SignReduction, bucketLength: Int) {
        let call = "overlapped sign allreduce \(reduction) bucket \(bucketLength)"
        harness.run(call, size: length) {
            let values = SignAllreduceChecks(harness: harness).input(rank: world.rank, length: length,
                                                                      zeros: reduction == .ternaryAverage)
            let plainComm = try world.duplicate(), overlappedComm = try world.duplicate()
            let plain = SignAllreduce(communicator: plainComm, reduction: reduction, seed: 42, segmentLength: bucketLength)
            let overlapped = SignAllreduce(communicator: overlappedComm, reduction: reduction, seed: 42, bucketLength: bucketLength)
            var expected = [Float](repeating: 0, count: length), result = [Float](repeating: 0, count: length)
            var source = [Float](repeating: .nan, count: length)
            for round in 0..<2 {  // the second call reuses the buffers and draws new coins
                _ = try values.withUnsafeBufferPointer { input in
                    try expected.withUnsafeMutableBufferPointer { try plain.allreduce(FloatSource(input), into: FloatSink($0)) }
                }
                source.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
                let returned = try source.withUnsafeMutableBufferPointer { filled in
                    try result.withUnsafeMutableBufferPointer { output in
                        try overlapped.allreduce(FloatSource(UnsafeBufferPointer(filled)), into: FloatSink(output)) { ready in
                            try fillFromTheEnd(filled, with: values, declaringLast: round == 0, ready: ready)
                        }
                    }
                }
                let differing = zip(result, expected).filter { $0.bitPattern != $1.bitPattern }.count
                harness.expect(returned && differing == 0, "\(call) call \(round + 1) equals the plain call", size: length,
                               "returned \(returned), \(differing) coordinates differ")
            }
            harness.expect(overlappedComm.traffic == plainComm.traffic, "\(call) bytes as the plain call's", size: length,
                           "\(overlappedComm.traffic) vs \(plainComm.traffic)")
        }
    }

    /// Writes `values` into `buffer` in pieces from the end, calling `ready` after each with
    /// the piece's first coordinate (one watermark repeated, most not on a word boundary);
    /// without `declaringLast`, the first piece is left for the collective to find final.
    func fillFromTheEnd(_ buffer: UnsafeMutableBufferPointer<Float>, with values: [Float], declaringLast: Bool,
                        ready: (Int) throws -> Void) throws {
        let count = buffer.count
        let cuts = [count, count * 3 / 4, count / 2 + 37, count / 2 + 37, count / 5, 0].map { min($0, count) }
        for (upper, lower) in zip(cuts, cuts.dropFirst()) where lower <= upper {
            for index in lower..<upper { buffer[index] = values[index] }
            if lower > 0 || declaringLast { try ready(lower) }
        }
    }

    /// Distributed Lion's fused step, overlapped: the same parameters and momentum bit for bit
    /// as the plain step, and with `.skip`, a NaN on the last rank skips it on every rank.
    func checkFusedLion() {
        let length = 10_007
        for poisoned in [false, true] {
            let call = "overlapped fused Lion step\(poisoned ? " skips a NaN on the last rank" : "")"
            harness.run(call, size: length) {
                var rng = SplitMix64(seed: UInt64(world.rank + 1))
                let momentum = (0..<length).map { _ in rng.nonzeroFloat() }
                var gradient = (0..<length).map { _ in rng.nonzeroFloat() }
                if poisoned && world.rank == world.size - 1 { gradient[77] = .nan }
                var start = (0..<length).map { _ in rng.nonzeroFloat() }
                try world.broadcast(&start, root: 0)
                let bucketLength = 64 * world.size * 7
                let plain = try step(momentum: momentum, gradient: gradient, parameters: start,
                                     SignAllreduce(communicator: world.duplicate(), seed: 3, segmentLength: bucketLength), overlapped: false)
                let overlapped = try step(momentum: momentum, gradient: gradient, parameters: start,
                                          SignAllreduce(communicator: world.duplicate(), seed: 3, bucketLength: bucketLength), overlapped: true)
                harness.expect(overlapped.applied == !poisoned && plain.applied == !poisoned, call, size: length,
                               "applied: overlapped \(overlapped.applied), plain \(plain.applied)")
                harness.expect(overlapped.parameters.map(\.bitPattern) == plain.parameters.map(\.bitPattern)
                               && (poisoned || overlapped.momentum.map(\.bitPattern) == plain.momentum.map(\.bitPattern)),
                               "\(call): parameters and momentum as the plain step's", size: length)
                if poisoned { harness.expect(overlapped.parameters == start, "\(call): parameters untouched", size: length) }
            }
        }
    }

    /// One fused Lion step writing the new momentum over the gradient (as on an arena); with
    /// `overlapped`, the gradient is written only inside the fill, from the end.
    func step(momentum: [Float], gradient: [Float], parameters: [Float], _ collective: SignAllreduce,
              overlapped: Bool) throws -> (applied: Bool, parameters: [Float], momentum: [Float]) {
        var parameters = parameters
        var storage = overlapped ? [Float](repeating: .nan, count: gradient.count) : gradient
        let applied = try momentum.withUnsafeBufferPointer { m in
            try storage.withUnsafeMutableBufferPointer { g in
                try parameters.withUnsafeMutableBufferPointer { x in
                    let direction = LionDirection(momentum: m, gradient: UnsafeBufferPointer(g), nextMomentum: g, beta1: 0.9, beta2: 0.99)
                    let update = LionUpdate(parameters: x, learningRate: 1e-3, weightDecay: 0.1)
                    guard overlapped else { return try collective.allreduce(direction, into: update, nonFinite: .skip) }
                    return try collective.allreduce(direction, into: update, nonFinite: .skip) { ready in
                        try fillFromTheEnd(g, with: gradient, declaringLast: true, ready: ready)
                    }
                }
            }
        }
        return (applied, parameters, storage)
    }

    func checkBadInput() {
        guard world.size > 1 else { return }
        let last = world.size - 1
        let bucketLength = world.rank == last ? 1 << 12 : 1 << 13
        let collective = SignAllreduce(communicator: world, bucketLength: bucketLength)
        var filled = false
        harness.expectThrows("overlapped sign allreduce mismatched bucket lengths", .mismatchAcrossRanks(
            call: "SignAllreduce.allreduce (overlapped)",
            reason: "the bucket length ranges from 4096 to 8192 across ranks (this rank: \(bucketLength))")) {
            let input = [Float](repeating: 1, count: 100)
            var output = [Float](repeating: 0, count: 100)
            try input.withUnsafeBufferPointer { i in
                try output.withUnsafeMutableBufferPointer {
                    _ = try collective.allreduce(FloatSource(i), into: FloatSink($0)) { _ in filled = true }
                }
            }
        }
        harness.expect(!filled, "overlapped sign allreduce: a rejected call does not run its fill")
        harness.run("overlapped sign allreduce usable after errors") {
            var output = [Float](repeating: 0, count: 130)
            let input = [Float](repeating: -2, count: 130)
            let same = SignAllreduce(communicator: world, bucketLength: 1 << 12)
            try input.withUnsafeBufferPointer { i in
                try output.withUnsafeMutableBufferPointer { o in
                    _ = try same.allreduce(FloatSource(i), into: FloatSink(o)) { ready in try ready(0) }
                }
            }
            harness.expect(output == [Float](repeating: -1, count: 130), "overlapped sign allreduce usable after errors")
        }
    }
}
