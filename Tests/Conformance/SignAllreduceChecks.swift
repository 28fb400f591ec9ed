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
        let reductions: [SignReduction] = [.majorityVote(.randomTieBreak), .majorityVote(.zero), .average]
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
    /// rank half of the time, so that ties actually occur at even N.
    func input(rank: Int, length: Int) -> [Float] {
        var own = SplitMix64(seed: UInt64(rank * 7919 + length))
        var shared = SplitMix64(seed: UInt64(length))
        return (0..<length).map { index in
            let common = shared.nonzeroFloat()
            let mine = own.nonzeroFloat()
            return index % 3 == 0 ? common : mine
        }
    }

    func check(length: Int, reduction: SignReduction, segmentLength: Int) {
        let call = "sign allreduce \(reduction) segment \(segmentLength)"
        harness.run(call, size: length) {
            let comm = try world.duplicate()
            let collective = SignAllreduce(communicator: comm, reduction: reduction, seed: 42, segmentLength: segmentLength)
            let values = input(rank: world.rank, length: length)
            let result = try collective.allreduce(signsOf: values)
            let votes = values.map { Int32($0 > 0 ? 1 : -1) }
            let sums = try world.allreduce(votes, operation: .sum)
            var wrong = 0
            for index in 0..<length {
                let sum = sums[index]
                let ok: Bool
                switch reduction {
                case .average:
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
            let highest = try world.allreduce(result, operation: .max)
            let lowest = try world.allreduce(result, operation: .min)
            harness.expect(highest == result && lowest == result, "\(call) identical on every rank", size: length)
            // Traffic: the counters match the plan, and the plan is 2(N−1)/N⌈d/8⌉ per result plane up to padding.
            let planes = reduction.resultPlanes(ranks: world.size)
            let ideal = (world.size - 1) * ((length + 7) / 8) * (1 + planes) / world.size
            let segments = length == 0 ? 0 : (length + segmentLength - 1) / segmentLength + 1
            let padding = (world.size - 1) * (1 + planes) * 8 * segments
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

    /// The fused optimizer path against the unfused one.
    func checkFusedLion() {
        let length = 10_007
        harness.run("sign allreduce fused Lion step", size: length) {
            var rng = SplitMix64(seed: UInt64(world.rank + 1))
            var momentum = (0..<length).map { _ in rng.nonzeroFloat() }
            let gradient = (0..<length).map { _ in rng.nonzeroFloat() }
            var parameters = (0..<length).map { _ in rng.nonzeroFloat() }
            // Same on every rank, as in data-parallel training.
            try world.broadcast(&parameters, root: 0)
            let (beta1, beta2, lr, wd): (Float, Float, Float, Float) = (0.9, 0.99, 1e-3, 0.1)
            let direction = zip(momentum, gradient).map { beta1 * $0 + (1 - beta1) * $1 }
            let expectedMomentum = zip(momentum, gradient).map { beta2 * $0 + (1 - beta2) * $1 }
            let collective = SignAllreduce(communicator: world, seed: 3)
            let delta = try collective.allreduce(signsOf: direction)
            let expectedParameters = zip(parameters, delta).map { $0 * (1 - lr * wd) - lr * $1 }
            try momentum.withUnsafeMutableBufferPointer { m in
                try gradient.withUnsafeBufferPointer { g in
                    try parameters.withUnsafeMutableBufferPointer { x in
                        let fused = SignAllreduce(communicator: world, seed: 3)
                        try fused.allreduce(.lionMomentum(momentum: m, gradient: g, beta1: beta1, beta2: beta2),
                                            into: .lionUpdate(parameters: x, learningRate: lr, weightDecay: wd))
                    }
                }
            }
            let parameterError = zip(parameters, expectedParameters).map { abs($0 - $1) }.max() ?? 0
            let momentumError = zip(momentum, expectedMomentum).map { abs($0 - $1) }.max() ?? 0
            harness.expect(parameterError <= 1e-6 && momentumError <= 1e-6, "fused Lion step", size: length,
                           "parameter error \(parameterError), momentum error \(momentumError)")
        }
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
        harness.run("sign allreduce usable after errors") {
            harness.expect(try collective.allreduce(signsOf: [Float](repeating: -2, count: 130)) == [Float](repeating: -1, count: 130),
                           "sign allreduce usable after errors")
        }
    }
}
