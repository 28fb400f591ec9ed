import Collectives

/// Checks that bad arguments make every rank throw a clear error, and that the
/// communicator stays usable afterwards.
struct BadInputChecks {
    let harness: Harness
    var world: Communicator { harness.world }

    func runAll() {
        let last = world.size - 1
        let n = world.size

        // A count that differs on one rank.
        let count = world.rank == last && n > 1 ? 11 : 10
        let countMismatch: CollectiveError = n > 1
            ? .mismatchAcrossRanks(call: "allreduce(inPlace:)", reason: "the element count ranges from 10 to 11 across ranks (this rank: \(count))")
            : .mismatchAcrossRanks(call: "unused", reason: "")
        if n > 1 {
            harness.expectThrows("mismatched allreduce counts", countMismatch) {
                _ = try world.allreduce([Float](repeating: 1, count: count), operation: .sum)
            }
        }

        // Settings: the same everywhere pass; a value that differs on the last rank is named,
        // with every rank's value, on every rank.
        harness.run("same settings pass") {
            try world.requireSameSettings([("--seed", "7"), ("--lr", "0.1")])
            harness.expect(true, "same settings pass")
        }
        if n > 1 {
            let values = (0..<n).map { $0 == last ? "rank \($0): 0.2" : "rank \($0): 0.1" }.joined(separator: ", ")
            harness.expectThrows("differing settings are named", .mismatchAcrossRanks(
                call: "requireSameSettings", reason: "--lr differs (\(values))")) {
                try world.requireSameSettings([("--seed", "7"), ("--lr", world.rank == last ? "0.2" : "0.1")])
            }
        }

        // A receive buffer too small for an allgather on the last rank only.
        let small = world.rank == last ? n * 4 - 1 : n * 4
        let tooSmall: CollectiveError = world.rank == last
            ? .invalidArgument(call: "allgather", reason: "receive has \(small) elements but must hold \(n) ranks × 4 = \(n * 4)")
            : .rejectedOnOtherRank(call: "allgather", rank: last)
        harness.expectThrows("allgather receive too small", tooSmall) {
            let send = [Int32](repeating: 1, count: 4)
            var receive = [Int32](repeating: 0, count: small)
            try send.withUnsafeBufferPointer { s in try receive.withUnsafeMutableBufferPointer { try world.allgather(s, into: $0) } }
        }

        // A negative count on rank 0.
        let negative: CollectiveError = world.rank == 0
            ? .invalidArgument(call: "alltoallv", reason: "sendCounts[0] is -1; counts cannot be negative")
            : .rejectedOnOtherRank(call: "alltoallv", rank: 0)
        harness.expectThrows("alltoallv negative count", negative) {
            var counts = [Int](repeating: 0, count: n)
            if world.rank == 0 { counts[0] = -1 }
            _ = try [Float]().withUnsafeBufferPointer { try world.alltoallv($0, sendCounts: counts) }
        }

        harness.expectThrows("bitwise or on Float", .invalidArgument(call: "allreduce(inPlace:)", reason: "bitwise or is not defined for Float")) {
            _ = try world.allreduce([Float(1)], operation: .bitwiseOr)
        }
        harness.expectThrows("broadcast bad root", .invalidArgument(call: "broadcast", reason: "root \(n) is not a rank of this \(n)-rank communicator")) {
            var values: [Float] = [1]
            try world.broadcast(&values, root: n)
        }
        harness.expectThrows("alltoall indivisible", n > 1
            ? .invalidArgument(call: "alltoall", reason: "send has \(n + 1) elements, not a multiple of the \(n) ranks")
            : .invalidArgument(call: "unused", reason: "")) {
            if n == 1 { throw CollectiveError.invalidArgument(call: "unused", reason: "") }
            _ = try world.alltoall([Float](repeating: 0, count: n + 1))
        }
        harness.expectThrows("send to a missing rank", .invalidArgument(call: "send", reason: "rank \(n) is not in this \(n)-rank communicator")) {
            try world.send([Float(1)], to: n)
        }

        // After all of that the communicator still works.
        harness.run("usable after errors") {
            harness.expect(try world.allreduce([Int32(1)], operation: .sum) == [Int32(n)], "usable after errors")
        }
    }
}
