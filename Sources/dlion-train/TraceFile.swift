import Collectives
import Training
#if canImport(Glibc)
import Glibc
#endif

/// `--trace FILE`: every rank's ``Timeline`` of the run, gathered to rank 0 and written there
/// as one Chrome trace-event file, one process per rank.
final class TraceFile {
    let path: String
    /// What every rank records: its steps, its optimizer's calls and its own collectives.
    let timeline = Timeline()
    /// Rank 0's open file; nil elsewhere.
    private let file: UnsafeMutablePointer<FILE>?

    /// Opens `path` on rank 0 (so that a path that cannot be written fails before training,
    /// not after it); throws when it cannot be created.
    init(path: String, rank: Int) throws {
        self.path = path
        if rank == 0 {
            guard let file = fopen(path, "w") else {
                throw TrainingError.invalidConfiguration("cannot create the trace file \(path): \(String(cString: strerror(errno)))")
            }
            self.file = file
        } else {
            file = nil
        }
    }

    deinit { if let file { fclose(file) } }

    /// Gathers every rank's spans over `world` and writes them on rank 0. Collective; a write
    /// that fails on rank 0 throws on every rank.
    func write(over world: Communicator) throws {
        let events = Array(timeline.chromeTraceEvents(rank: world.rank).utf8)
        let (gathered, counts) = try events.withUnsafeBufferPointer { try world.allgatherv($0) }
        try world.agreeOnSuccess("writing the trace \(path)") {
            guard let file else { return }
            var start = 0
            let ranks = counts.map { count in
                defer { start += count }
                return String(decoding: gathered[start ..< start + count], as: UTF8.self)
            }
            errno = 0
            guard fputs(Timeline.chromeTrace(joining: ranks), file) >= 0, fflush(file) == 0 else {
                throw TrainingError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
        }
    }
}
