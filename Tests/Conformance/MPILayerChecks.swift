import Collectives

/// Checks every wrapped MPI call against values each rank computes on its own.
struct MPILayerChecks {
    let harness: Harness
    var world: Communicator { harness.world }

    func runAll() {
        for size in conformanceSizes {
            checkAllreduce(Float.self, size: size)
            checkAllreduce(Double.self, size: size)
            checkAllreduce(Int32.self, size: size)
            checkAllreduce(Int64.self, size: size)
            checkAllreduce(UInt8.self, size: size)
            checkBitwise(UInt32.self, size: size)
            checkBitwise(UInt64.self, size: size)
            checkBroadcast(size: size)
            checkAllgather(size: size)
            checkAllgatherv(size: size)
            checkAlltoall(size: size)
            checkAlltoallv(size: size)
            checkReduceScatterBlock(size: size)
            checkSendReceive(size: size)
            checkNonblocking(size: size)
        }
        checkCommunicators()
        checkTrafficCounters()
    }

    func checkAllreduce<T: TestScalar>(_ type: T.Type, size: Int) {
        let call = "allreduce<\(T.self)>"
        let mine = (0..<size).map { contribution(T.self, rank: world.rank, index: $0) }
        let all = (0..<world.size).map { r in (0..<size).map { contribution(T.self, rank: r, index: $0) } }
        for operation in [ReductionOperation.sum, .max, .min] {
            let expected = (0..<size).map { i -> T in
                let column = all.map { $0[i] }
                switch operation {
                case .sum: return column.reduce(0, +)
                case .max: return column.max()!
                default: return column.min()!
                }
            }
            harness.run("\(call) \(operation)", size: size) {
                let result = try world.allreduce(mine, operation: operation)
                harness.expect(result == expected, "\(call) \(operation) in place", size: size)
                var separate = [T](repeating: 0, count: size)
                try mine.withUnsafeBufferPointer { send in
                    try separate.withUnsafeMutableBufferPointer {
                        try world.allreduce(send, into: $0, operation: operation)
                    }
                }
                harness.expect(separate == expected, "\(call) \(operation) into", size: size)
            }
        }
    }

    func checkBitwise<T: TestScalar & FixedWidthInteger>(_ type: T.Type, size: Int) {
        let bit = { (rank: Int, index: Int) -> T in T(1) << T((rank + index) % T.bitWidth) }
        let mine = (0..<size).map { bit(world.rank, $0) | T(1) }
        let expectedOr = (0..<size).map { i in (0..<world.size).reduce(T(1)) { $0 | bit($1, i) } }
        let expectedAnd = (0..<size).map { i in (0..<world.size).reduce(~T(0)) { $0 & (bit($1, i) | T(1)) } }
        harness.run("allreduce<\(T.self)> bitwise", size: size) {
            harness.expect(try world.allreduce(mine, operation: .bitwiseOr) == expectedOr, "allreduce<\(T.self)> bitwise or", size: size)
            harness.expect(try world.allreduce(mine, operation: .bitwiseAnd) == expectedAnd, "allreduce<\(T.self)> bitwise and", size: size)
        }
    }

    func checkBroadcast(size: Int) {
        let root = world.size - 1
        let expected = (0..<size).map { contribution(Float.self, rank: root, index: $0) }
        harness.run("broadcast", size: size) {
            var values = world.rank == root ? expected : [Float](repeating: -1, count: size)
            try world.broadcast(&values, root: root)
            harness.expect(values == expected, "broadcast", size: size)
        }
    }

    func checkAllgather(size: Int) {
        let mine = (0..<size).map { contribution(Int32.self, rank: world.rank, index: $0) }
        let expected = (0..<world.size).flatMap { r in (0..<size).map { contribution(Int32.self, rank: r, index: $0) } }
        harness.run("allgather", size: size) {
            harness.expect(try world.allgather(mine) == expected, "allgather", size: size)
        }
    }

    func checkAllgatherv(size: Int) {
        let count = { (rank: Int) in rank % 2 == 0 ? size : size / 2 + rank }
        let values = { (rank: Int) in (0..<count(rank)).map { contribution(Double.self, rank: rank, index: $0) } }
        let expected = (0..<world.size).flatMap(values)
        harness.run("allgatherv", size: size) {
            let (result, counts) = try values(world.rank).withUnsafeBufferPointer { try world.allgatherv($0) }
            harness.expect(result == expected, "allgatherv values", size: size)
            harness.expect(counts == (0..<world.size).map(count), "allgatherv counts", size: size)
        }
    }

    func checkAlltoall(size: Int) {
        // Chunk j of rank r holds contribution(r, j * size + i).
        let chunk = size
        let mine = (0..<world.size * chunk).map { contribution(UInt64.self, rank: world.rank, index: $0) }
        let expected = (0..<world.size).flatMap { r in
            (0..<chunk).map { contribution(UInt64.self, rank: r, index: world.rank * chunk + $0) }
        }
        harness.run("alltoall", size: size) {
            harness.expect(try world.alltoall(mine) == expected, "alltoall", size: size)
        }
    }

    func checkAlltoallv(size: Int) {
        // Rank r sends (r + j) % 3 * size / 2 elements to rank j.
        let count = { (from: Int, to: Int) in (from + to) % 3 * size / 2 }
        let chunk = { (from: Int, to: Int) in (0..<count(from, to)).map { contribution(Int64.self, rank: from, index: to * 1000 + $0) } }
        let mine = (0..<world.size).flatMap { chunk(world.rank, $0) }
        let expected = (0..<world.size).flatMap { chunk($0, world.rank) }
        harness.run("alltoallv", size: size) {
            let (values, counts) = try mine.withUnsafeBufferPointer {
                try world.alltoallv($0, sendCounts: (0..<world.size).map { count(world.rank, $0) })
            }
            harness.expect(values == expected, "alltoallv values", size: size)
            harness.expect(counts == (0..<world.size).map { count($0, world.rank) }, "alltoallv counts", size: size)
        }
    }

    func checkReduceScatterBlock(size: Int) {
        let mine = (0..<world.size * size).map { contribution(Float.self, rank: world.rank, index: $0) }
        let expected = (0..<size).map { i in
            (0..<world.size).reduce(Float(0)) { $0 + contribution(Float.self, rank: $1, index: world.rank * size + i) }
        }
        harness.run("reduceScatterBlock", size: size) {
            var block = [Float](repeating: 0, count: size)
            try mine.withUnsafeBufferPointer { send in
                try block.withUnsafeMutableBufferPointer { try world.reduceScatterBlock(send, into: $0, operation: .sum) }
            }
            harness.expect(block == expected, "reduceScatterBlock", size: size)
        }
    }

    func checkSendReceive(size: Int) {
        let partner = world.rank ^ 1
        guard partner < world.size else { return }
        let mine = (0..<size).map { contribution(Int32.self, rank: world.rank, index: $0) }
        let expected = (0..<size).map { contribution(Int32.self, rank: partner, index: $0) }
        harness.run("send/receive", size: size) {
            var received = [Int32](repeating: -1, count: size + 3)
            let status = try received.withUnsafeMutableBufferPointer { buffer -> ReceiveStatus in
                if world.rank % 2 == 0 {
                    try world.send(mine, to: partner, tag: 7)
                    return try world.receive(into: buffer, from: partner, tag: 7)
                }
                let status = try world.receive(into: buffer, from: partner, tag: 7)
                try world.send(mine, to: partner, tag: 7)
                return status
            }
            harness.expect(Array(received.prefix(size)) == expected, "send/receive values", size: size)
            harness.expect(status == ReceiveStatus(source: partner, tag: 7, count: size), "send/receive status", size: size, "\(status)")
        }
    }

    func checkNonblocking(size: Int) {
        let n = world.size
        let send = MessageBuffer((0..<n * size).map { contribution(UInt64.self, rank: world.rank, index: $0) })
        let receive = MessageBuffer<UInt64>(repeating: 0, count: n * size)
        let expected = (0..<n).flatMap { r in (0..<size).map { contribution(UInt64.self, rank: r, index: world.rank * size + $0) } }
        let gatherSend = MessageBuffer((0..<size).map { contribution(Float.self, rank: world.rank, index: $0) })
        let gatherReceive = MessageBuffer<Float>(repeating: 0, count: n * size)
        let gathered = (0..<n).flatMap { r in (0..<size).map { contribution(Float.self, rank: r, index: $0) } }
        harness.run("startAlltoall/startAllgather", size: size) {
            let exchange = try world.startAlltoall(send, into: receive)
            var gather = try world.startAllgather(gatherSend, into: gatherReceive)
            _ = try gather.test()
            try exchange.wait()
            try gather.wait()
            harness.expect(receive.elements == expected, "startAlltoall", size: size)
            harness.expect(gatherReceive.elements == gathered, "startAllgather", size: size)
        }
        harness.run("dropped request completes", size: size) {
            do { _ = try world.startAllgather(gatherSend, into: MessageBuffer<Float>(repeating: 0, count: n * size)) }
            // The request's deinit has waited; a collective that follows must match up.
            harness.expect(try world.allreduce([Int32(1)], operation: .sum) == [Int32(n)], "dropped request completes", size: size)
        }
    }

    func checkCommunicators() {
        harness.run("communicators") {
            try world.barrier()
            let t0 = try MPI.wallTime()
            try world.barrier()
            harness.expect(try MPI.wallTime() >= t0, "wallTime")
            let copy = try world.duplicate()
            harness.expect(copy.rank == world.rank && copy.size == world.size, "duplicate")
            harness.expect(try copy.allreduce([Int64(copy.rank)], operation: .sum) == [Int64(world.size * (world.size - 1) / 2)], "duplicate allreduce")
            let parity = try world.split(color: world.rank % 2, key: -world.rank)
            let members = (0..<world.size).filter { $0 % 2 == world.rank % 2 }
            harness.expect(parity?.size == members.count, "split size")
            harness.expect(parity?.rank == members.reversed().firstIndex(of: world.rank), "split rank ordered by key")
            let alone = try world.split(color: world.rank == 0 ? 0 : -1)
            harness.expect((alone != nil) == (world.rank == 0) && (alone?.size ?? 1) == 1, "split undefined color")
        }
    }

    func checkTrafficCounters() {
        harness.run("traffic counters") {
            let counted = try world.duplicate()
            let n = world.size
            _ = try counted.allreduce([Float](repeating: 1, count: 1000), operation: .sum)
            let ring = 2 * (n - 1) * 4000 / n
            harness.expect(counted.traffic == TrafficCounters(bytesSent: ring, bytesReceived: ring, calls: 1),
                           "traffic allreduce", "\(counted.traffic)")
            counted.resetTraffic()
            _ = try counted.allgather([UInt64](repeating: 1, count: 10))
            harness.expect(counted.traffic.bytesSent == (n - 1) * 80 && counted.traffic.bytesReceived == (n - 1) * 80,
                           "traffic allgather", "\(counted.traffic)")
        }
    }
}
