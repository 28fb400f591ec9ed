/// Allgathers of compressed payloads: the building blocks of the TernGrad and DGC baselines.
extension Communicator {
    /// Gathers every rank's k-bit codes; returns them in rank order. Only the packed planes
    /// travel: (N−1)·k·⌈count/64⌉·8 bytes each way per rank. Every rank must pass the same
    /// `count` and `bitsPerCode` (checked when ``verifiesArguments`` is on).
    ///
    /// The corresponding MPI function is `MPI_Allgather`.
    public func allgather(_ codes: PackedCodes) throws -> [PackedCodes] {
        let gathered = try perform("allgather(PackedCodes)", agreeing: Agreement(values: [
            AgreedValue(name: "code count", value: codes.count), AgreedValue(name: "bits per code", value: codes.bitsPerCode),
        ]), payload: nil) { try allgather(codes.words, agreeing: nil) }
        let stride = codes.words.count
        return (0..<size).map { rank in
            PackedCodes(count: codes.count, bitsPerCode: codes.bitsPerCode, words: gathered[rank * stride ..< (rank + 1) * stride])
        }
    }

    /// Gathers every rank's sign vector; returns them in rank order, 1 bit per coordinate on
    /// the wire. Every rank must pass the same count.
    ///
    /// The corresponding MPI function is `MPI_Allgather`.
    public func allgather(_ signs: PackedSigns) throws -> [PackedSigns] {
        let gathered = try perform("allgather(PackedSigns)",
                                   agreeing: Agreement(values: [AgreedValue(name: "coordinate count", value: signs.count)]),
                                   payload: nil) { try allgather(signs.words, agreeing: nil) }
        let stride = signs.words.count
        return (0..<size).map { rank in
            var received = PackedSigns(count: signs.count)
            received.words = Array(gathered[rank * stride ..< (rank + 1) * stride])
            return received
        }
    }

    /// Gathers every rank's sparse vector, whatever its number of entries; returns them in
    /// rank order. Each (index, value) pair travels as one 64-bit word; the entry counts are
    /// exchanged first. Every rank must pass the same dense `length`, and every index must be
    /// below it.
    ///
    /// The corresponding MPI functions are `MPI_Allgather` and `MPI_Allgatherv`.
    public func allgather(_ sparse: SparseVector) throws -> [SparseVector] {
        let outOfRange = sparse.indices.first { Int($0) >= sparse.length }
        let pairs = zip(sparse.indices, sparse.values).map { UInt64($0) << 32 | UInt64($1.bitPattern) }
        let (gathered, counts) = try perform("allgather(SparseVector)", agreeing: Agreement(
            problem: outOfRange.map { "index \($0) is outside the vector's length \(sparse.length)" },
            values: [AgreedValue(name: "dense length", value: sparse.length)]), payload: nil) {
            try pairs.withUnsafeBufferPointer { try allgatherv($0, agreeing: nil) }
        }
        var start = 0
        return counts.map { count in
            let slice = gathered[start ..< start + count]
            start += count
            return SparseVector(length: sparse.length,
                                indices: slice.map { UInt32(truncatingIfNeeded: $0 >> 32) },
                                values: slice.map { Float(bitPattern: UInt32(truncatingIfNeeded: $0)) })
        }
    }
}
