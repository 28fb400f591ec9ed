import CMPI

/// Blocking collectives on typed Swift buffers. Counts and datatypes come from the buffers;
/// every call agrees its arguments across ranks first (``verifiesArguments``) and counts its
/// bytes in ``traffic``.
extension Communicator {
    /// Combines `send` from every rank element-wise with `operation`; every rank receives
    /// the result in `receive`, which must have the same count as `send`.
    ///
    /// The corresponding MPI function is `MPI_Allreduce`.
    public func allreduce<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>,
        operation: ReductionOperation
    ) throws {
        let problem = send.count != receive.count
            ? "send has \(send.count) elements but receive has \(receive.count); they must match"
            : reductionProblem(operation, T.self) ?? countProblem(send.count, "send")
        try perform("allreduce", agreeing: Agreement(problem: problem, values: [AgreedValue(name: "element count", value: send.count)]),
                    payload: allreducePayload(bytes: send.count * MemoryLayout<T>.stride)) {
            try check(MPI_Allreduce(send.baseAddress, receive.baseAddress, Int32(send.count),
                                    T.mpiDatatype, operation.mpiOperation, handle), "MPI_Allreduce")
        }
    }

    /// Combines `buffer` from every rank element-wise with `operation`, in place.
    ///
    /// The corresponding MPI function is `MPI_Allreduce` with `MPI_IN_PLACE`.
    public func allreduce<T: MPIScalar>(
        inPlace buffer: UnsafeMutableBufferPointer<T>, operation: ReductionOperation
    ) throws {
        let problem = reductionProblem(operation, T.self) ?? countProblem(buffer.count, "buffer")
        try perform("allreduce(inPlace:)",
                    agreeing: Agreement(problem: problem, values: [AgreedValue(name: "element count", value: buffer.count)]),
                    payload: allreducePayload(bytes: buffer.count * MemoryLayout<T>.stride)) {
            try check(MPI_Allreduce(MPI_IN_PLACE, buffer.baseAddress, Int32(buffer.count),
                                    T.mpiDatatype, operation.mpiOperation, handle), "MPI_Allreduce")
        }
    }

    /// Returns `values` combined element-wise across ranks with `operation`.
    ///
    /// The corresponding MPI function is `MPI_Allreduce`.
    public func allreduce<T: MPIScalar>(_ values: [T], operation: ReductionOperation) throws -> [T] {
        var result = values
        try result.withUnsafeMutableBufferPointer { try allreduce(inPlace: $0, operation: operation) }
        return result
    }

    /// Whether `condition` holds on every rank: every rank gets the same answer, from one
    /// 4-byte `MPI_Allreduce` (`MPI_MIN`) with no argument check, as nothing can mismatch.
    /// A single rank answers without calling MPI.
    ///
    /// The corresponding MPI function is `MPI_Allreduce`.
    public func holdsOnEveryRank(_ condition: Bool) throws -> Bool {
        guard size > 1 else {
            try MPI.requireRunning("holdsOnEveryRank")
            return condition
        }
        var flag: Int32 = condition ? 1 : 0
        try perform("holdsOnEveryRank", agreeing: nil, payload: allreducePayload(bytes: 4)) {
            try check(MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT32_T, MPI_MIN, handle), "MPI_Allreduce")
        }
        return flag == 1
    }

    /// Copies `buffer` on rank `root` into `buffer` on every other rank. Every rank passes a
    /// buffer of the same count.
    ///
    /// The corresponding MPI function is `MPI_Bcast`.
    public func broadcast<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        let problem = (0..<size).contains(root)
            ? countProblem(buffer.count, "buffer") : "root \(root) is not a rank of this \(size)-rank communicator"
        let bytes = size > 1 ? buffer.count * MemoryLayout<T>.stride : 0
        try perform("broadcast",
                    agreeing: Agreement(problem: problem, values: [AgreedValue(name: "element count", value: buffer.count),
                                                                   AgreedValue(name: "root", value: root)]),
                    payload: rank == root ? Payload(sent: bytes, received: 0) : Payload(sent: 0, received: bytes)) {
            try check(MPI_Bcast(buffer.baseAddress, Int32(buffer.count), T.mpiDatatype, Int32(root), handle), "MPI_Bcast")
        }
    }

    /// Copies `values` on rank `root` into `values` on every other rank.
    ///
    /// The corresponding MPI function is `MPI_Bcast`.
    public func broadcast<T: MPIScalar>(_ values: inout [T], root: Int) throws {
        try values.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Gathers `send` from every rank, in rank order, into `receive` on every rank.
    /// `receive` must hold `size × send.count` elements; every rank sends the same count.
    ///
    /// The corresponding MPI function is `MPI_Allgather`.
    public func allgather<T: MPIScalar>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>) throws {
        try allgather(send, into: receive, agreeing: Agreement(problem: allgatherProblem(send: send.count, receive: receive.count),
                                                              values: [AgreedValue(name: "element count", value: send.count)]))
    }

    /// Returns `values` from every rank concatenated in rank order.
    ///
    /// The corresponding MPI function is `MPI_Allgather`.
    public func allgather<T: MPIScalar>(_ values: [T]) throws -> [T] {
        try allgather(values, agreeing: Agreement(problem: countProblem(values.count, "values"),
                                                  values: [AgreedValue(name: "element count", value: values.count)]))
    }

    /// ``allgather(_:)`` with the agreement given (`nil`: agreed already by the caller).
    func allgather<T: MPIScalar>(_ values: [T], agreeing agreement: Agreement?) throws -> [T] {
        var result = [T](unsafeUninitializedCapacity: values.count * size) { _, count in count = values.count * size }
        try values.withUnsafeBufferPointer { send in
            try result.withUnsafeMutableBufferPointer { try allgather(send, into: $0, agreeing: agreement) }
        }
        return result
    }

    private func allgather<T: MPIScalar>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>,
                                         agreeing agreement: Agreement?) throws {
        try perform("allgather", agreeing: agreement, payload: .symmetric((size - 1) * send.count * MemoryLayout<T>.stride)) {
            try check(MPI_Allgather(send.baseAddress, Int32(send.count), T.mpiDatatype,
                                    receive.baseAddress, Int32(send.count), T.mpiDatatype, handle), "MPI_Allgather")
        }
    }

    /// Gathers a buffer of any length from every rank: returns them concatenated in rank
    /// order, with each rank's count. The counts are exchanged first, so no rank needs to
    /// know the others' lengths.
    ///
    /// The corresponding MPI functions are `MPI_Allgather` (of the counts) and `MPI_Allgatherv`.
    public func allgatherv<T: MPIScalar>(_ send: UnsafeBufferPointer<T>) throws -> (values: [T], counts: [Int]) {
        try allgatherv(send, agreeing: Agreement(problem: countProblem(send.count, "send")))
    }

    /// ``allgatherv(_:)`` with the agreement given (`nil`: agreed already by the caller).
    func allgatherv<T: MPIScalar>(_ send: UnsafeBufferPointer<T>, agreeing agreement: Agreement?) throws -> (values: [T], counts: [Int]) {
        let call = "allgatherv"
        let stride = MemoryLayout<T>.stride
        return try perform(call, agreeing: agreement, payload: { gathered in
            Payload(sent: (self.size - 1) * send.count * stride, received: (gathered.values.count - send.count) * stride)
        }) {
            var counts = [Int32](repeating: 0, count: size)
            var ownCount = Int32(send.count)
            try counts.withUnsafeMutableBufferPointer { counts in
                try check(MPI_Allgather(&ownCount, 1, MPI_INT32_T, counts.baseAddress, 1, MPI_INT32_T, handle), "MPI_Allgather")
            }
            let (displacements, total) = try exclusivePrefixSums(counts, call: call)
            var result = [T](unsafeUninitializedCapacity: total) { _, count in count = total }
            try result.withUnsafeMutableBufferPointer { receive in
                try check(MPI_Allgatherv(send.baseAddress, ownCount, T.mpiDatatype, receive.baseAddress,
                                         counts, displacements, T.mpiDatatype, handle), "MPI_Allgatherv")
            }
            return (result, counts.map(Int.init))
        }
    }

    /// Sends chunk j of `send` to rank j and receives rank j's chunk for this rank into chunk j
    /// of `receive`. `send.count` must be a multiple of `size` and equal `receive.count`.
    ///
    /// The corresponding MPI function is `MPI_Alltoall`.
    public func alltoall<T: MPIScalar>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>) throws {
        let chunk = send.count / size
        try perform("alltoall",
                    agreeing: Agreement(problem: alltoallProblem(send: send.count, receive: receive.count),
                                        values: [AgreedValue(name: "element count", value: send.count)]),
                    payload: .symmetric((size - 1) * chunk * MemoryLayout<T>.stride)) {
            try check(MPI_Alltoall(send.baseAddress, Int32(chunk), T.mpiDatatype,
                                   receive.baseAddress, Int32(chunk), T.mpiDatatype, handle), "MPI_Alltoall")
        }
    }

    /// Returns, in rank order, the chunk every rank addressed to this one: chunk j of
    /// `values` goes to rank j.
    ///
    /// The corresponding MPI function is `MPI_Alltoall`.
    public func alltoall<T: MPIScalar>(_ values: [T]) throws -> [T] {
        var result = [T](unsafeUninitializedCapacity: values.count) { _, count in count = values.count }
        try values.withUnsafeBufferPointer { send in
            try result.withUnsafeMutableBufferPointer { try alltoall(send, into: $0) }
        }
        return result
    }

    /// Sends the next `sendCounts[j]` elements of `send` to rank j, in rank order, and returns
    /// what every rank sent to this one, in rank order, with the count from each. The counts
    /// are exchanged first, so no rank needs to know what it will receive.
    ///
    /// The corresponding MPI functions are `MPI_Alltoall` (of the counts) and `MPI_Alltoallv`.
    public func alltoallv<T: MPIScalar>(_ send: UnsafeBufferPointer<T>, sendCounts: [Int]) throws -> (values: [T], counts: [Int]) {
        let call = "alltoallv"
        let problem: String?
        if sendCounts.count != size {
            problem = "sendCounts has \(sendCounts.count) entries; it needs one per rank (\(size))"
        } else if let negative = sendCounts.firstIndex(where: { $0 < 0 }) {
            problem = "sendCounts[\(negative)] is \(sendCounts[negative]); counts cannot be negative"
        } else if sendCounts.reduce(0, +) != send.count {
            problem = "sendCounts add up to \(sendCounts.reduce(0, +)) but send has \(send.count) elements"
        } else {
            problem = countProblem(send.count, "send")
        }
        let stride = MemoryLayout<T>.stride
        return try perform(call, agreeing: Agreement(problem: problem), payload: { received in
            Payload(sent: (send.count - sendCounts[self.rank]) * stride,
                    received: (received.values.count - received.counts[self.rank]) * stride)
        }) {
            let sendCounts32 = sendCounts.map { Int32($0) }
            var receiveCounts = [Int32](repeating: 0, count: size)
            try receiveCounts.withUnsafeMutableBufferPointer { receiveCounts in
                try check(MPI_Alltoall(sendCounts32, 1, MPI_INT32_T, receiveCounts.baseAddress, 1, MPI_INT32_T, handle), "MPI_Alltoall")
            }
            let (sendDisplacements, _) = try exclusivePrefixSums(sendCounts32, call: call)
            let (receiveDisplacements, total) = try exclusivePrefixSums(receiveCounts, call: call)
            var result = [T](unsafeUninitializedCapacity: total) { _, count in count = total }
            try result.withUnsafeMutableBufferPointer { receive in
                try check(MPI_Alltoallv(send.baseAddress, sendCounts32, sendDisplacements, T.mpiDatatype,
                                        receive.baseAddress, receiveCounts, receiveDisplacements, T.mpiDatatype,
                                        handle), "MPI_Alltoallv")
            }
            return (result, receiveCounts.map(Int.init))
        }
    }

    /// Combines `send` across ranks element-wise with `operation` and leaves block `rank` of
    /// the result in `receive`: `send.count` must be `size × receive.count`.
    ///
    /// The corresponding MPI function is `MPI_Reduce_scatter_block`.
    public func reduceScatterBlock<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>,
        operation: ReductionOperation
    ) throws {
        let problem = send.count != receive.count * size
            ? "send has \(send.count) elements but must hold \(size) ranks × \(receive.count) = \(size * receive.count)"
            : reductionProblem(operation, T.self) ?? countProblem(receive.count, "receive")
        try perform("reduceScatterBlock",
                    agreeing: Agreement(problem: problem, values: [AgreedValue(name: "block size", value: receive.count)]),
                    payload: .symmetric((size - 1) * receive.count * MemoryLayout<T>.stride)) {
            try check(MPI_Reduce_scatter_block(send.baseAddress, receive.baseAddress, Int32(receive.count),
                                               T.mpiDatatype, operation.mpiOperation, handle), "MPI_Reduce_scatter_block")
        }
    }

    private func reductionProblem<T: MPIScalar>(_ operation: ReductionOperation, _ type: T.Type) -> String? {
        operation.isDefined(for: type) ? nil : "\(operation) is not defined for \(T.self)"
    }

    /// Displacements for a v-collective, and the total, checked against `Int32`.
    private func exclusivePrefixSums(_ counts: [Int32], call: String) throws -> ([Int32], Int) {
        var displacements = [Int32](repeating: 0, count: counts.count)
        var total = 0
        for (index, count) in counts.enumerated() {
            guard let displacement = Int32(exactly: total) else {
                throw CollectiveError.invalidArgument(call: call, reason: "the total of \(total)+ elements exceeds what one MPI call can address")
            }
            displacements[index] = displacement
            total += Int(count)
        }
        return (displacements, total)
    }
}
