import Collectives
#if canImport(Glibc)
import Glibc
#endif

extension BLAS {
    /// Runs `body(piece, tasks)` on up to `maxPieces` contiguous ranges of `0..<tasks`, on
    /// the rank's threads at once (``Parallel/forEachShare(of:maxPieces:_:)``), each piece's
    /// `sgemm` calls on one BLAS thread (``withThreads(_:_:)``): for work made of many GEMMs
    /// too small for the BLAS to split well (attention's per-head products, a transformer's
    /// sequences; see ``singleThreadedMultiplyAdds``). Inside a piece it runs `body(0, 0..<tasks)`
    /// on the calling thread. ``record(_:)`` and ``timing`` see the pieces apart: the
    /// recording keeps each piece's calls, and ``gemmSeconds`` grows by the slowest piece's.
    public static func concurrently(tasks: Int, maxPieces: Int = .max, _ body: (_ piece: Int, _ tasks: Range<Int>) -> Void) {
        let pieces = Parallel.shares(of: tasks, maxPieces: maxPieces)
        guard pieces > 1 else { return Parallel.forEachShare(of: tasks, maxPieces: pieces, body) }
        withThreads(1) {
            guard timing || recording != nil else { return Parallel.forEachShare(of: tasks, maxPieces: pieces, body) }
            let region = ConcurrentRegion(pieces: pieces)
            ConcurrentRegion.active = region
            defer { ConcurrentRegion.active = nil }
            Parallel.forEachShare(of: tasks, maxPieces: pieces) { piece, range in
                ConcurrentRegion.enter(piece: piece)
                defer { ConcurrentRegion.leave() }
                body(piece, range)
            }
            if region.calls.contains(where: { !$0.isEmpty }) { recording?.stretches.append(Array(region.calls)) }
            gemmSeconds += region.seconds.max() ?? 0
        }
    }

    /// Runs `body` with the BLAS library on `count` threads, then restores its thread count
    /// (OpenBLAS's `openblas_get_num_threads` and `openblas_set_num_threads`; with another
    /// provider, just runs `body`).
    public static func withThreads<Result>(_ count: Int, _ body: () throws -> Result) rethrows -> Result {
        guard let saved = threads, saved != count else { return try body() }
        setThreads(count)
        defer { setThreads(saved) }
        return try body()
    }

    /// Products of fewer multiply-adds (m·n·k) than this run on one thread in OpenBLAS
    /// (its `SMP_THRESHOLD_MIN` · `GEMM_MULTITHREAD_THRESHOLD`, 65 536 · 4), so many of them
    /// gain from ``concurrently(tasks:maxPieces:_:)``; larger ones are better left to the
    /// BLAS's own threads.
    public static let singleThreadedMultiplyAdds = 1 << 18
}

/// The calls and GEMM seconds of each piece of one ``BLAS/concurrently(tasks:maxPieces:_:)``
/// while recording or timing; each piece writes only its own slots.
final class ConcurrentRegion {
    let calls: UnsafeMutableBufferPointer<[GEMMCall]>
    let seconds: UnsafeMutableBufferPointer<Double>

    init(pieces: Int) {
        calls = .allocate(capacity: pieces)
        calls.initialize(repeating: [])
        seconds = .allocate(capacity: pieces)
        seconds.initialize(repeating: 0)
    }

    deinit {
        calls.deinitialize().deallocate()
        seconds.deallocate()
    }

    /// Adds a call the current thread's piece made.
    func add(_ call: GEMMCall, seconds elapsed: Double) {
        guard let piece = ConcurrentRegion.piece else { return }
        if BLAS.recording != nil { calls[piece].append(call) }
        seconds[piece] += elapsed
    }

    /// The region, set by the thread that starts it, while its pieces run.
    nonisolated(unsafe) static var active: ConcurrentRegion?

    /// The active region when the current thread runs one of its pieces.
    static var current: ConcurrentRegion? { piece == nil ? nil : active }

    /// Marks the current thread as running `piece` (a thread-specific key).
    static func enter(piece: Int) { pthread_setspecific(key, UnsafeRawPointer(bitPattern: piece + 1)) }

    /// Clears the mark of ``enter(piece:)``.
    static func leave() { pthread_setspecific(key, nil) }

    /// The current thread's piece, if it runs one.
    private static var piece: Int? {
        guard let value = pthread_getspecific(key) else { return nil }
        return Int(bitPattern: value) - 1
    }
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
}
