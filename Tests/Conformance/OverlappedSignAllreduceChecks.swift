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
        // Node-aware: nodes of the smallest size above 1 that divides the ranks, and nodes as MPI sees them.
        let ranksPerNode = (2...max(2, n)).first { n % $0 == 0 } ?? 1
        for shape in [ExchangeShape.nodeAware(ranksPerNode: ranksPerNode), .nodeAware()] {
            for length in [1, 64 * n * 3 + 17, 100_003] {
                for reduction in reductions {
                    check(length: length, reduction: reduction, bucketLength: 64 * n * 5, shape: shape)
                }
            }
        }
        checkFusedLion()
        checkBadInput()
        checkArgumentsThatChangeAfterAgreeing()
    }

    /// The source's values are written only inside `fill`, piece by piece from the end, as a
    /// backward pass writes gradients; before that the buffer holds NaN, so a bucket packed
    /// before it was declared ready would vote differently.
    ///
    /// With a node-aware `shape`, the overlapped call is node-aware and the plain one flat:
    /// the same results still, and the bytes of a plain call of the same shape.
    func check(length: Int, reduction: SignReduction, bucketLength: Int, shape: ExchangeShape = .flat) {
        let call = "overlapped sign allreduce \(reduction) bucket \(bucketLength)\(shape == .flat ? "" : " \(shape)")"
        harness.run(call, size: length) {
            let values = SignAllreduceChecks(harness: harness).input(rank: world.rank, length: length,
                                                                      zeros: reduction == .ternaryAverage)
            let plainComm = try world.duplicate(), overlappedComm = try world.duplicate()
            let plain = SignAllreduce(communicator: plainComm, reduction: reduction, seed: 42, segmentLength: bucketLength)
            let overlapped = SignAllreduce(communicator: overlappedComm, reduction: reduction, seed: 42, bucketLength: bucketLength,
                                           shape: shape)
            // The bytes to expect: a plain call's of the overlapped one's shape (the same groups made the same way).
            let sameShapeComm = shape == .flat ? plainComm : try world.duplicate()
            let sameShape = shape == .flat ? plain
                : SignAllreduce(communicator: sameShapeComm, reduction: reduction, seed: 42, segmentLength: bucketLength, shape: shape)
            var expected = [Float](repeating: 0, count: length), result = [Float](repeating: 0, count: length)
            var source = [Float](repeating: .nan, count: length)
            for round in 0..<2 {  // the second call reuses the buffers and draws new coins
                _ = try values.withUnsafeBufferPointer { input in
                    try expected.withUnsafeMutableBufferPointer { try plain.allreduce(FloatSource(input), into: FloatSink($0)) }
                }
                if shape != .flat { _ = try sameShape.allreduce(signsOf: values) }
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
            harness.expect(overlappedComm.traffic == sameShapeComm.traffic,
                           "\(call) bytes as the plain call's", size: length,
                           "\(overlappedComm.traffic) vs \(sameShapeComm.traffic)")
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
        guard let communicator = try? world.duplicate() else { return harness.expect(false, "duplicate for the bad-input checks") }
        let collective = SignAllreduce(communicator: communicator, bucketLength: bucketLength)
        var output = [Float](repeating: 0, count: 100)
        harness.expectThrows("overlapped sign allreduce mismatched bucket lengths", .mismatchAcrossRanks(
            call: "SignAllreduce.allreduce (overlapped)",
            reason: "the bucket length ranges from 4096 to 8192 across ranks (this rank: \(bucketLength))")) {
            let input = [Float](repeating: 1, count: 100)
            try input.withUnsafeBufferPointer { i in
                try output.withUnsafeMutableBufferPointer { o in
                    _ = try collective.allreduce(FloatSource(i), into: FloatSink(o)) { ready in
                        for watermark in [64, 0] { try ready(watermark) }
                    }
                }
            }
        }
        harness.expect(output == [Float](repeating: 0, count: 100) && collective.calls == 0 && communicator.traffic.bytesSent == 0,
                       "overlapped sign allreduce: a rejected call sends nothing and writes nothing",
                       "calls \(collective.calls), \(communicator.traffic)")
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

    /// After calls that agreed, a rank whose count or sink changes: the exchange runs in the
    /// agreed shape, then every rank throws, no sink is written, and the next call agrees
    /// afresh and works.
    func checkArgumentsThatChangeAfterAgreeing() {
        let last = world.size - 1
        guard let communicator = try? world.duplicate() else { return harness.expect(false, "duplicate for the changing-arguments checks") }
        let collective = SignAllreduce(communicator: communicator, bucketLength: 64 * world.size)
        func call(count: Int, sinkCount: Int, nonFinite: NonFiniteInput = .vote) throws -> [Float] {
            let input = (0..<count).map { Float($0 % 7) - 3.5 }
            var output = [Float](repeating: 9, count: sinkCount)
            try input.withUnsafeBufferPointer { i in
                try output.withUnsafeMutableBufferPointer { o in
                    _ = try collective.allreduce(FloatSource(i), into: FloatSink(o), nonFinite: nonFinite) { ready in
                        for watermark in [count / 2, 0] { try ready(watermark) }
                    }
                }
            }
            return output
        }
        let expected: [Float] = (0..<1000).map { Float($0 % 7) - 3.5 < 0 ? -1 : 1 }
        guard world.size > 1 else {  // one rank has no one to disagree with: a new count is just a new call
            return harness.run("overlapped sign allreduce on one rank, count after count") {
                let results = try [1000, 1001, 64].map { try call(count: $0, sinkCount: $0) }
                harness.expect(results.map(\.count) == [1000, 1001, 64] && results.allSatisfy { $0 == Array((expected + [1])[..<$0.count]) },
                               "overlapped sign allreduce on one rank, count after count")
            }
        }
        harness.run("overlapped sign allreduce agrees, then calls again") {
            let first = try call(count: 1000, sinkCount: 1000), second = try call(count: 1000, sinkCount: 1000)
            harness.expect(first == expected && second == expected, "overlapped sign allreduce agrees, then calls again")
        }
        let count = world.rank == last ? 1001 : 1000
        var untouched = true
        harness.expectThrows("overlapped sign allreduce: a count that changes on one rank after agreeing", .mismatchAcrossRanks(
            call: "SignAllreduce.allreduce (overlapped)",
            reason: "the coordinate count ranges from 1000 to 1001 across ranks (this rank: \(count))")) {
            _ = try call(count: count, sinkCount: count)
            untouched = false
        }
        let sinkCount = world.rank == last ? 999 : 1000
        harness.expectThrows("overlapped sign allreduce: a sink that changes on one rank after agreeing", world.rank == last
                             ? .invalidArgument(call: "SignAllreduce.allreduce (overlapped)",
                                                reason: "the source has 1000 coordinates but the sink has 999; they must match")
                             : .rejectedOnOtherRank(call: "SignAllreduce.allreduce (overlapped)", rank: last)) {
            _ = try call(count: 1000, sinkCount: 1000)  // agrees again, after the error
            _ = try call(count: 1000, sinkCount: sinkCount)
            untouched = false
        }
        harness.run("overlapped sign allreduce works after arguments changed") {
            let before = communicator.traffic.bytesSent
            let result = try call(count: 1000, sinkCount: 1000)
            harness.expect(untouched && result == expected && communicator.traffic.bytesSent > before,
                           "overlapped sign allreduce works after arguments changed")
        }
        if world.size > 1 {
            let policy: NonFiniteInput = world.rank == last ? .skip : .vote
            harness.expectThrows("overlapped sign allreduce: a non-finite policy that changes on one rank after agreeing", .mismatchAcrossRanks(
                call: "SignAllreduce.allreduce (overlapped)",
                reason: "the non-finite policy (1 vote, 2 skip) ranges from 1 to 2 across ranks (this rank: \(policy == .skip ? 2 : 1))")) {
                _ = try call(count: 1000, sinkCount: 1000)
                _ = try call(count: 1000, sinkCount: 1000, nonFinite: policy)
            }
        }
    }
}
