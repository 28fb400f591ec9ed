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
        _ = try agree(call, agreement, alsoMaximizing: [])
    }

    /// ``agree(_:_:)``, and in the same `MPI_Allreduce`, the maximum over every rank of each
    /// of `extra` (returned): one round trip for a check and a verdict. With
    /// ``verifiesArguments`` off, the maxima take an `MPI_Allreduce` of their own.
    func agree(_ call: String, _ agreement: Agreement, alsoMaximizing extra: [Int64]) throws -> [Int64] {
        let (localProblem, values) = (agreement.problem, agreement.values)
        guard verifiesArguments, size > 1 else {
            if let localProblem { throw CollectiveError.invalidArgument(call: call, reason: localProblem) }
            return size > 1 && !extra.isEmpty ? try allreduce(extra, operation: .max) : extra
        }
        // The first range's top is N − (the lowest rank with a problem), or 0 when none has one.
        let ranges = try rangesAcrossRanks([localProblem == nil ? 0 : Int64(size - rank)] + values.map { Int64($0.value) } + extra)
        if let localProblem { throw CollectiveError.invalidArgument(call: call, reason: localProblem) }
        if ranges[0].upperBound > 0 { throw CollectiveError.rejectedOnOtherRank(call: call, rank: size - Int(ranges[0].upperBound)) }
        for (agreed, range) in zip(values, ranges.dropFirst()) where range.lowerBound != range.upperBound {
            throw CollectiveError.mismatchAcrossRanks(
                call: call,
                reason: "the \(agreed.name) ranges from \(range.lowerBound) to \(range.upperBound) across ranks (this rank: \(agreed.value))")
        }
        return ranges.suffix(extra.count).map(\.upperBound)
    }

    /// The smallest and largest of each of `values` over every rank, from one `MPI_Allreduce`
    /// (`MPI_MAX` of each value and its negation); control traffic, not counted. No value may
    /// be `Int64.min`.
    ///
    /// The corresponding MPI function is `MPI_Allreduce`.
    func rangesAcrossRanks(_ values: [Int64]) throws -> [ClosedRange<Int64>] {
        var extremes = values.flatMap { [$0, -$0] }
        try extremes.withUnsafeMutableBufferPointer { buffer in
            try check(MPI_Allreduce(MPI_IN_PLACE, buffer.baseAddress, Int32(buffer.count), MPI_INT64_T, MPI_MAX, handle), "MPI_Allreduce")
        }
        return values.indices.map { -extremes[2 * $0 + 1] ... extremes[2 * $0] }
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
