import Collectives
import Training

/// Checks the bit-packed sign allreduce against a reference built from MPI's own integer
/// allreduce of the ±1 votes.
struct SignAllreduceChecks {
    let harness: Harness
    var world: Communicator { harness.world }

    func runAll() {
        let n = world.size
        let lengths = [0, 1, 63, 64, 65, 64 * n * 3 + 17, 100_003, 1_000_003]
        let reductions: [SignReduction] = [.majorityVote(.randomTieBreak), .majorityVote(.zero), .average, .ternaryAverage]
        for length in lengths {
            for reduction in reductions {
                check(length: length, reduction: reduction, segmentLength: 1 << 22)
            }
        }
        // Many pipelined segments, the last one partial.
        for reduction in reductions {
            check(length: 64 * n * 5 * 7 + 100, reduction: reduction, segmentLength: 64 * n * 5)
        }
        checkZerosAndNonFinite()
        checkFusedLion()
        checkBadInput()
    }

    /// Rank `rank`'s input: random non-zero values, with some coordinates equal on every
    /// rank half of the time, so that ties actually occur at even N. With `zeros`, one
    /// coordinate in five is ±0 or NaN instead (a ternary input's zeros), on some ranks only.
    func input(rank: Int, length: Int, zeros: Bool = false) -> [Float] {
        var own = SplitMix64(seed: UInt64(rank * 7919 + length))
        var shared = SplitMix64(seed: UInt64(length))
        let signless: [Float] = [0, -0.0, .nan]
        return (0..<length).map { index in
            let common = shared.nonzeroFloat()
            let mine = own.nonzeroFloat()
            if zeros && index % 5 == 1 && (index / 5 + rank) % 2 == 0 { return signless[index % 3] }
            return index % 3 == 0 ? common : mine
        }
    }

    func check(length: Int, reduction: SignReduction, segmentLength: Int) {
        let call = "sign allreduce \(reduction) segment \(segmentLength)"
        harness.run(call, size: length) {
            let comm = try world.duplicate()
            let collective = SignAllreduce(communicator: comm, reduction: reduction, seed: 42, segmentLength: segmentLength)
            let values = input(rank: world.rank, length: length, zeros: reduction == .ternaryAverage)
            let result = try collective.allreduce(signsOf: values)
            let votes = values.map { Int32($0 > 0 ? 1 : reduction == .ternaryAverage && !($0 < 0) ? 0 : -1) }
            let sums = try world.allreduce(votes, operation: .sum)
            var wrong = 0
            for index in 0..<length {
                let sum = sums[index]
                let ok: Bool
                switch reduction {
                case .average, .ternaryAverage:
                    ok = result[index] == Float(sum) / Float(world.size)
                case .majorityVote(let ties):
                    if sum != 0 {
                        ok = result[index] == (sum > 0 ? 1 : -1)
                    } else {
                        ok = ties == .zero ? result[index] == 0 : abs(result[index]) == 1
                    }
                }
                if !ok { wrong += 1 }
            }
            harness.expect(wrong == 0, call, size: length, "\(wrong) coordinates differ from MPI_Allreduce of the votes")
            // Every rank holds the same result, tie-breaks included.
            harness.expect(try identicalOnEveryRank(result, world: world), "\(call) identical on every rank", size: length)
            // Traffic: the counters match the plan, and the plan is (N−1)/N⌈d/8⌉ per plane out and back, up to padding.
            let planes = reduction.inputPlanes + reduction.resultPlanes(ranks: world.size)
            let ideal = (world.size - 1) * ((length + 7) / 8) * planes / world.size
            let segments = length == 0 ? 0 : (length + segmentLength - 1) / segmentLength + 1
            let padding = (world.size - 1) * planes * 8 * segments
            harness.expect(comm.traffic.bytesSent == collective.bytesPerRank(count: length)
                           && comm.traffic.bytesReceived == comm.traffic.bytesSent,
                           "\(call) bytes counted", size: length, "\(comm.traffic) vs planned \(collective.bytesPerRank(count: length))")
            harness.expect(abs(comm.traffic.bytesSent - ideal) <= padding, "\(call) bytes near 2(N-1)/N d/8",
                           size: length, "sent \(comm.traffic.bytesSent), ideal \(ideal), padding allowance \(padding)")
        }
    }

    /// Exact zeros, NaN and ±Inf: with `.positive` zeros and NaN vote +1, ±Inf its sign; with
    /// `.random` a coordinate that is zero on every rank comes out ±1 at about even odds.
    func checkZerosAndNonFinite() {
        let length = 4096
        harness.run("sign allreduce zeros, NaN, Inf") {
            let special: [Float] = [0, -0.0, .nan, .infinity, -.infinity]
            let values = (0..<length).map { special[$0 % special.count] }
            let positive = SignAllreduce(communicator: world, reduction: .average, zeroPolicy: .positive)
            let result = try positive.allreduce(signsOf: values)
            let expected = (0..<length).map { $0 % 5 == 4 ? Float(-1) : 1 }
            harness.expect(result == expected, "zero policy positive: 0, -0, NaN vote +1; Inf its sign")
            let random = SignAllreduce(communicator: world, reduction: .majorityVote, zeroPolicy: .random, seed: 7)
            let zeros = try random.allreduce(signsOf: [Float](repeating: 0, count: 1 << 16))
            let plus = zeros.filter { $0 == 1 }.count
            harness.expect(zeros.allSatisfy { abs($0) == 1 } && abs(plus - (1 << 15)) < 1024,
                           "zero policy random is unbiased", "\(plus) of \(1 << 16) came out +1")
        }
    }

    /// Where a fused Lion step writes its new momentum.
    enum MomentumDestination: CaseIterable {
        case inPlace, overGradient, separate
    }

    /// The fused optimizer path against the unfused one, for every momentum destination, with
    /// and without the non-finite check, in one segment and in several.
    func checkFusedLion() {
        let length = 10_007
        let (beta1, beta2, lr, wd): (Float, Float, Float, Float) = (0.9, 0.99, 1e-3, 0.1)
        for segmentLength in [1 << 22, 64 * world.size * 7] {
            for destination in MomentumDestination.allCases {
                for nonFinite in [NonFiniteInput.vote, .skip] {
                    let call = "sign allreduce fused Lion step \(destination) \(nonFinite) segment \(segmentLength)"
                    harness.run(call, size: length) {
                        var rng = SplitMix64(seed: UInt64(world.rank + 1))
                        let momentum = (0..<length).map { _ in rng.nonzeroFloat() }
                        let gradient = (0..<length).map { _ in rng.nonzeroFloat() }
                        var parameters = (0..<length).map { _ in rng.nonzeroFloat() }
                        // Same on every rank, as in data-parallel training.
                        try world.broadcast(&parameters, root: 0)
                        let direction = zip(momentum, gradient).map { beta1 * $0 + (1 - beta1) * $1 }
                        let expectedMomentum = zip(momentum, gradient).map { beta2 * $0 + (1 - beta2) * $1 }
                        let delta = try SignAllreduce(communicator: world, seed: 3).allreduce(signsOf: direction)
                        let expectedParameters = zip(parameters, delta).map { $0 * (1 - lr * wd) - lr * $1 }
                        let comm = try world.duplicate()
                        let fused = SignAllreduce(communicator: comm, seed: 3, segmentLength: segmentLength)
                        let (applied, next) = try fusedLionStep(fused, momentum: momentum, gradient: gradient, parameters: &parameters,
                                                                destination: destination, nonFinite: nonFinite, lr: lr, wd: wd,
                                                                beta1: beta1, beta2: beta2)
                        let parameterError = zip(parameters, expectedParameters).map { abs($0 - $1) }.max() ?? 0
                        let momentumError = zip(next, expectedMomentum).map { abs($0 - $1) }.max() ?? 0
                        harness.expect(applied && parameterError <= 1e-6 && momentumError <= 1e-6, call, size: length,
                                       "applied \(applied), parameter error \(parameterError), momentum error \(momentumError)")
                        let planned = fused.bytesPerRank(count: length, nonFinite: nonFinite)
                        harness.expect(comm.traffic.bytesSent == planned, "\(call) bytes counted", size: length,
                                       "\(comm.traffic) vs planned \(planned)")
                    }
                }
            }
        }
        checkFusedLionSkipsNonFinite()
    }

    /// With `.skip`, a NaN or an infinity in the last rank's gradient makes every rank return
    /// false and leave its parameters alone, whatever the momentum destination.
    func checkFusedLionSkipsNonFinite() {
        let length = 5000
        for bad in [Float.nan, .infinity, -.infinity] {
            for destination in MomentumDestination.allCases {
                let call = "sign allreduce fused Lion step skips \(bad) \(destination)"
                harness.run(call, size: length) {
                    var gradient = [Float](repeating: 0.5, count: length)
                    if world.rank == world.size - 1 { gradient[4321] = bad }
                    let momentum = [Float](repeating: -0.25, count: length)
                    let original = [Float](repeating: 1, count: length)
                    var parameters = original
                    let fused = SignAllreduce(communicator: world, seed: 3, segmentLength: 64 * world.size * 3)
                    let (applied, _) = try fusedLionStep(fused, momentum: momentum, gradient: gradient, parameters: &parameters,
                                                         destination: destination, nonFinite: .skip, lr: 0.1, wd: 0.1,
                                                         beta1: 0.9, beta2: 0.99)
                    harness.expect(!applied && parameters == original, call, size: length, "applied \(applied)")
                    // The collective is usable right after a skipped call.
                    let signs = try fused.allreduce(signsOf: [Float](repeating: -2, count: length))
                    harness.expect(signs == [Float](repeating: -1, count: length), "\(call), then usable", size: length)
                }
            }
        }
    }

    /// One fused Lion step with the new momentum written to `destination`; returns whether it
    /// was applied and the new momentum.
    func fusedLionStep(_ collective: SignAllreduce, momentum: [Float], gradient: [Float], parameters: inout [Float],
                       destination: MomentumDestination, nonFinite: NonFiniteInput,
                       lr: Float, wd: Float, beta1: Float, beta2: Float) throws -> (Bool, [Float]) {
        var momentum = momentum, gradient = gradient
        var separate = [Float](repeating: .nan, count: momentum.count)
        let applied = try momentum.withUnsafeMutableBufferPointer { m in
            try gradient.withUnsafeMutableBufferPointer { g in
                try separate.withUnsafeMutableBufferPointer { s in
                    try parameters.withUnsafeMutableBufferPointer { x in
                        let next = switch destination { case .inPlace: m; case .overGradient: g; case .separate: s }
                        return try collective.allreduce(
                            LionDirection(momentum: UnsafeBufferPointer(m), gradient: UnsafeBufferPointer(g), nextMomentum: next,
                                          beta1: beta1, beta2: beta2),
                            into: LionUpdate(parameters: x, learningRate: lr, weightDecay: wd), nonFinite: nonFinite)
                    }
                }
            }
        }
        let next = switch destination { case .inPlace: momentum; case .overGradient: gradient; case .separate: separate }
        return (applied, next)
    }

    func checkBadInput() {
        let n = world.size
        let last = n - 1
        let collective = SignAllreduce(communicator: world)
        if n > 1 {
            let length = world.rank == last ? 1001 : 1000
            harness.expectThrows("sign allreduce mismatched lengths", .mismatchAcrossRanks(
                call: "SignAllreduce.allreduce",
                reason: "the coordinate count ranges from 1000 to 1001 across ranks (this rank: \(length))")) {
                _ = try collective.allreduce(signsOf: [Float](repeating: 1, count: length))
            }
        }
        let outputCount = world.rank == last ? 99 : 100
        let expected: CollectiveError = world.rank == last
            ? .invalidArgument(call: "SignAllreduce.allreduce", reason: "the source has 100 coordinates but the sink has 99; they must match")
            : .rejectedOnOtherRank(call: "SignAllreduce.allreduce", rank: last)
        harness.expectThrows("sign allreduce output of the wrong size", expected) {
            let input = [Float](repeating: 1, count: 100)
            var output = [Float](repeating: 0, count: outputCount)
            try input.withUnsafeBufferPointer { i in
                try output.withUnsafeMutableBufferPointer { try collective.allreduce(signsOf: i, into: $0) }
            }
        }
        if n > 1 {
            let policy: NonFiniteInput = world.rank == last ? .skip : .vote
            harness.expectThrows("sign allreduce mismatched non-finite policies", .mismatchAcrossRanks(
                call: "SignAllreduce.allreduce",
                reason: "the non-finite policy (1 vote, 2 skip) ranges from 1 to 2 across ranks (this rank: \(policy == .skip ? 2 : 1))")) {
                let input = [Float](repeating: 1, count: 100)
                var output = [Float](repeating: 0, count: 100)
                try input.withUnsafeBufferPointer { i in
                    try output.withUnsafeMutableBufferPointer { _ = try collective.allreduce(FloatSource(i), into: FloatSink($0), nonFinite: policy) }
                }
            }
        }
        // A new momentum that half-overlaps the gradient is refused on the rank that passes it.
        let overlapReason = "nextMomentum overlaps gradient without being it; pass gradient itself or a separate buffer"
        harness.expectThrows("sign allreduce overlapping momentum buffers", world.rank == last
                             ? .invalidArgument(call: "SignAllreduce.allreduce", reason: overlapReason)
                             : .rejectedOnOtherRank(call: "SignAllreduce.allreduce", rank: last)) {
            var storage = [Float](repeating: 1, count: 300)
            var parameters = [Float](repeating: 0, count: 100)
            try storage.withUnsafeMutableBufferPointer { all in
                try parameters.withUnsafeMutableBufferPointer { x in
                    let gradient = UnsafeBufferPointer(rebasing: all[100..<200])
                    let next = UnsafeMutableBufferPointer(rebasing: all[(world.rank == last ? 150 : 200)..<(world.rank == last ? 250 : 300)])
                    try collective.allreduce(LionDirection(momentum: UnsafeBufferPointer(rebasing: all[0..<100]), gradient: gradient,
                                                           nextMomentum: next, beta1: 0.9, beta2: 0.99),
                                             into: LionUpdate(parameters: x, learningRate: 0.1, weightDecay: 0))
                }
            }
        }
        harness.run("sign allreduce usable after errors") {
            harness.expect(try collective.allreduce(signsOf: [Float](repeating: -2, count: 130)) == [Float](repeating: -1, count: 130),
                           "sign allreduce usable after errors")
        }
    }
}
