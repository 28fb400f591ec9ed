#if canImport(Glibc)
import Glibc
#endif

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
        let lines = try differing.map { "\(settings[$0].name) differs (\(try everyRanks(settings[$0].value)))" }
        throw CollectiveError.mismatchAcrossRanks(call: call, reason: lines.joined(separator: "; "))
    }

    /// Throws on every rank unless every rank runs the same executable, byte for byte: hosts
    /// with different builds of one program (a host not yet updated, a debug build on one)
    /// would otherwise exchange buffers whose layout or meaning differ, and fail later, or
    /// never. The error names every rank's executable and its digest. Call it before
    /// ``requireSameSettings(_:)``, whose settings another build may not share.
    ///
    /// Each rank reads its own executable (`/proc/self/exe`, a few milliseconds for 10 MB);
    /// then one `MPI_Allreduce` of its 62-bit digest, and an `MPI_Allgatherv` only when they
    /// differ.
    ///
    /// The corresponding MPI functions are `MPI_Allreduce` and `MPI_Allgatherv`.
    public func requireSameExecutable() throws {
        let call = "requireSameExecutable"
        try MPI.requireRunning(call)
        guard size > 1 else { return }
        let executable = RunningExecutable()
        let range = try rangesAcrossRanks([Int64(bitPattern: executable.digest >> 2)])[0]
        guard range.lowerBound != range.upperBound else { return }
        let described = try everyRanks(executable.description)
        throw CollectiveError.mismatchAcrossRanks(
            call: call, reason: "ranks run different executables (\(described)); install the same build on every host")
    }

    /// "rank 0: A, rank 1: B, …": `value` as each rank passed it, from one `MPI_Allgatherv`.
    private func everyRanks(_ value: String) throws -> String {
        let bytes = Array(value.utf8)
        let (gathered, counts) = try bytes.withUnsafeBufferPointer { try allgatherv($0) }
        var start = 0
        return counts.enumerated().map { rank, count in
            defer { start += count }
            return "rank \(rank): \(String(decoding: gathered[start ..< start + count], as: UTF8.self))"
        }.joined(separator: ", ")
    }
}

/// The program this process runs: its path and a digest of its bytes.
private struct RunningExecutable: CustomStringConvertible {
    /// The executable's resolved path, or `/proc/self/exe` when it cannot be resolved.
    let path: String
    /// The 64-bit FNV-1a hash of the executable's bytes, or of an explanation when unreadable.
    let digest: UInt64
    /// Why the executable could not be read, if it could not.
    let problem: String?

    init() {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &resolved, resolved.count - 1)
        path = length > 0 ? String(decoding: resolved[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "/proc/self/exe"
        var hash: UInt64 = fnv1aOffset
        let file = open("/proc/self/exe", O_RDONLY)
        var failure: Int32 = file < 0 ? errno : 0
        if file >= 0 {
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
                if count < 0 { failure = errno; break }
                if count == 0 { break }
                hash = chunk[..<count].reduce(hash) { ($0 ^ UInt64($1)) &* fnv1aPrime }
            }
            close(file)
        }
        problem = failure == 0 ? nil : "cannot be read: \(String(cString: strerror(failure)))"
        digest = problem.map { fnv1a($0) } ?? hash
    }

    var description: String {
        let hex = String(digest, radix: 16)
        return "\(path) " + (problem ?? "digest " + String(repeating: "0", count: 16 - hex.count) + hex)
    }
}

private let fnv1aOffset: UInt64 = 0xCBF2_9CE4_8422_2325
private let fnv1aPrime: UInt64 = 0x100_0000_01B3

/// The 64-bit FNV-1a hash of `text`'s UTF-8 bytes: the same on every machine and process.
private func fnv1a(_ text: String) -> UInt64 {
    text.utf8.reduce(fnv1aOffset) { ($0 ^ UInt64($1)) &* fnv1aPrime }
}
