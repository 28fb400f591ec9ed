import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Splits element-wise work over the cores a rank owns.
///
/// With one rank per core (the usual MPI layout) this stays at 1 and the kernels run on the
/// calling thread. A rank that owns several cores (one rank on a 2-core machine, say) sets
/// ``threads`` to their number, as it does for BLAS; the sign kernels and the optimizers then
/// split their vectors into that many contiguous pieces.
public enum Parallel {
    /// Threads element-wise kernels use; 1 by default.
    nonisolated(unsafe) public static var threads = 1

    /// Pieces smaller than this many elements are not worth a thread.
    public static let minimumPiece = 1 << 15

    /// Calls `body` on contiguous pieces covering `0..<count`, each starting at a multiple of
    /// `alignment`, concurrently when ``threads`` > 1 and the vector is long enough.
    public static func forEachPiece(count: Int, alignment: Int = 64, _ body: (Range<Int>) -> Void) {
        _ = mapPieces(count: count, alignment: alignment, body)
    }

    /// Like ``forEachPiece(count:alignment:_:)``, returning each piece's result in order.
    public static func mapPieces<Result>(count: Int, alignment: Int = 64, _ body: (Range<Int>) -> Result) -> [Result] {
        let pieces = min(availableThreads, count / minimumPiece)
        guard pieces > 1 else { return count > 0 ? [body(0..<count)] : [] }
        let pieceLength = (count / pieces + alignment - 1) / alignment * alignment
        let results = UnsafeMutableBufferPointer<Result?>.allocate(capacity: pieces)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendableBox((body, results))
            DispatchQueue.concurrentPerform(iterations: pieces) { piece in
                let mark = InsidePiece()
                defer { mark.end() }
                let start = piece * pieceLength
                let end = piece == pieces - 1 ? count : min(count, start + pieceLength)
                if start < end { box.value.1[piece] = box.value.0(start..<end) }
            }
        }
        return results.compactMap { $0 }
    }
}

extension Parallel {
    /// Calls `body(piece, tasks)` on at most `maxPieces` (and ``threads``) contiguous ranges
    /// of tasks covering `0..<count`, concurrently when there are several: for coarse tasks,
    /// each worth a thread on its own (one attention head of one sequence, say), where
    /// ``forEachPiece(count:alignment:_:)`` counts elements. Pieces are numbered from 0.
    public static func forEachShare(of count: Int, maxPieces: Int = .max, _ body: (_ piece: Int, _ tasks: Range<Int>) -> Void) {
        let pieces = shares(of: count, maxPieces: maxPieces)
        guard pieces > 1 else {
            if count > 0 { body(0, 0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendableBox(body)
            DispatchQueue.concurrentPerform(iterations: pieces) { piece in
                let mark = InsidePiece()
                defer { mark.end() }
                box.value(piece, (piece * count / pieces)..<((piece + 1) * count / pieces))
            }
        }
    }

    /// The number of pieces ``forEachShare(of:maxPieces:_:)`` makes of `count` tasks.
    public static func shares(of count: Int, maxPieces: Int = .max) -> Int {
        max(1, min(availableThreads, maxPieces, count))
    }

    /// Whether the current thread runs a piece of a concurrent ``forEachShare(of:maxPieces:_:)``
    /// or ``mapPieces(count:alignment:_:)``. Work it starts then stays on it: the rank's
    /// other threads are busy with the other pieces.
    static var isInsidePiece: Bool { pthread_getspecific(InsidePiece.key) != nil }

    /// ``threads``, or 1 inside a piece.
    private static var availableThreads: Int { isInsidePiece ? 1 : threads }
}

/// Marks the current thread as running a piece (a thread-specific key) until ``end()``.
private struct InsidePiece {
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
    private let outer = pthread_getspecific(InsidePiece.key)

    init() { pthread_setspecific(InsidePiece.key, UnsafeRawPointer(bitPattern: 1)) }

    func end() { pthread_setspecific(InsidePiece.key, outer) }
}

/// Carries a non-Sendable value into `concurrentPerform`, whose pieces touch disjoint memory.
private struct UnsafeSendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
