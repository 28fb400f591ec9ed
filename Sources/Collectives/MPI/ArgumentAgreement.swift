import CMPI

extension Communicator {
    /// Makes every rank throw when any rank's arguments to `call` are bad.
    ///
    /// Each rank passes the problem it found locally (or `nil`) and the values that must be
    /// equal on every rank. With ``verifiesArguments`` on, one `MPI_Allreduce` (`MPI_MAX`
    /// over `Int64`) tells every rank the lowest rank with a problem (a rank with a
    /// problem of its own throws that instead) and each value's range;
    /// with it off, only this rank's own problem is thrown.
    ///
    /// The corresponding MPI function is `MPI_Allreduce`.
    func agree(_ call: String, _ agreement: Agreement) throws {
        let (localProblem, values) = (agreement.problem, agreement.values)
        guard verifiesArguments, size > 1 else {
            if let localProblem { throw CollectiveError.invalidArgument(call: call, reason: localProblem) }
            return
        }
        var summary = [Int64](repeating: 0, count: 1 + 2 * values.count)
        summary[0] = localProblem == nil ? 0 : Int64(size - rank)
        for (index, agreed) in values.enumerated() {
            summary[1 + 2 * index] = Int64(agreed.value)
            summary[2 + 2 * index] = -Int64(agreed.value)
        }
        try summary.withUnsafeMutableBufferPointer { buffer in
            try check(MPI_Allreduce(MPI_IN_PLACE, buffer.baseAddress, Int32(buffer.count),
                                    MPI_INT64_T, MPI_MAX, handle), "MPI_Allreduce")
        }
        if let localProblem { throw CollectiveError.invalidArgument(call: call, reason: localProblem) }
        if summary[0] > 0 { throw CollectiveError.rejectedOnOtherRank(call: call, rank: size - Int(summary[0])) }
        for (index, agreed) in values.enumerated() {
            let largest = summary[1 + 2 * index]
            let smallest = -summary[2 + 2 * index]
            if largest != smallest {
                throw CollectiveError.mismatchAcrossRanks(
                    call: call,
                    reason: "the \(agreed.name) ranges from \(smallest) to \(largest) across ranks (this rank: \(agreed.value))")
            }
        }
    }
}

/// The problem with an element count, if any: MPI counts are `Int32`.
func countProblem(_ count: Int, _ what: String) -> String? {
    count > Int(Int32.max) ? "\(what) has \(count) elements, more than one MPI call can carry (\(Int32.max)); split it" : nil
}

extension Communicator {
    /// The problem with alltoall buffers, if any: equal counts, a multiple of the ranks.
    func alltoallProblem(send: Int, receive: Int) -> String? {
        if send % size != 0 { return "send has \(send) elements, not a multiple of the \(size) ranks" }
        if receive != send { return "send has \(send) elements but receive has \(receive); they must match" }
        return countProblem(send / size, "each chunk")
    }

    /// The problem with allgather buffers, if any: room for every rank's chunk.
    func allgatherProblem(send: Int, receive: Int) -> String? {
        if receive != send * size {
            return "receive has \(receive) elements but must hold \(size) ranks × \(send) = \(size * send)"
        }
        return countProblem(send, "send")
    }
}
