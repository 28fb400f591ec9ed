extension Communicator {
    /// Throws on every rank unless every rank passed the same `settings` (names and values in
    /// the same order): a program's parsed configuration, say, which ranks launched with
    /// different flags (`mpirun`'s MPMD form, a hostfile with another binary's wrapper) would
    /// otherwise train on silently, or hang on. The error names each setting that differs and
    /// every rank's value of it.
    ///
    /// One `MPI_Allreduce` of a 62-bit digest per setting (its range over the ranks); only
    /// when some differ, one `MPI_Allgatherv` per differing setting to name the values.
    ///
    /// The corresponding MPI functions are `MPI_Allreduce` and `MPI_Allgatherv`.
    public func requireSameSettings(_ settings: [(name: String, value: String)]) throws {
        let call = "requireSameSettings"
        try MPI.requireRunning(call)
        guard size > 1 else { return }
        let ranges = try rangesAcrossRanks(settings.map { Int64(bitPattern: fnv1a("\($0.name)=\($0.value)") >> 2) })
        let differing = settings.indices.filter { ranges[$0].lowerBound != ranges[$0].upperBound }
        guard !differing.isEmpty else { return }
        var lines: [String] = []
        for index in differing {
            let bytes = Array(settings[index].value.utf8)
            let (gathered, counts) = try bytes.withUnsafeBufferPointer { try allgatherv($0) }
            var start = 0
            let values = counts.enumerated().map { rank, count in
                defer { start += count }
                return "rank \(rank): \(String(decoding: gathered[start ..< start + count], as: UTF8.self))"
            }
            lines.append("\(settings[index].name) differs (\(values.joined(separator: ", ")))")
        }
        throw CollectiveError.mismatchAcrossRanks(call: call, reason: lines.joined(separator: "; "))
    }
}

/// The 64-bit FNV-1a hash of `text`'s UTF-8 bytes: the same on every machine and process.
private func fnv1a(_ text: String) -> UInt64 {
    text.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
}
