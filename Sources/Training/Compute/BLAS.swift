import CBLAS
import Collectives
#if canImport(Glibc)
import Glibc
#endif

/// Matrix products through the system BLAS, with row-major shapes in the signature.
public enum BLAS {
    /// Seconds spent inside `sgemm` since the last ``resetTimer()``, when ``timing`` is on.
    nonisolated(unsafe) public static var gemmSeconds: Double = 0
    /// Whether `sgemm` calls are timed (for `--profile`); off by default.
    nonisolated(unsafe) public static var timing = false

    /// The recording ``record(_:)`` is making, if any.
    nonisolated(unsafe) static var recording: GEMMRecording? = nil

    /// Clears ``gemmSeconds``.
    public static func resetTimer() { gemmSeconds = 0 }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major. op(A) is m×k (A is k×m when
    /// `transposeA`), op(B) is k×n (B is n×k when `transposeB`). The row strides `lda`, `ldb`,
    /// `ldc` default to dense rows; larger ones address sub-matrices, such as one attention
    /// head's columns of a QKV buffer.
    ///
    /// The corresponding BLAS function is `cblas_sgemm`.
    public static func sgemm(m: Int, n: Int, k: Int,
                             _ a: UnsafePointer<Float>, transposeA: Bool = false, lda: Int? = nil,
                             _ b: UnsafePointer<Float>, transposeB: Bool = false, ldb: Int? = nil,
                             into c: UnsafeMutablePointer<Float>, ldc: Int? = nil, alpha: Float = 1, beta: Float = 0) {
        let call = GEMMCall(m: m, n: n, k: k, transposeA: transposeA, lda: lda ?? (transposeA ? m : k),
                            transposeB: transposeB, ldb: ldb ?? (transposeB ? k : n), ldc: ldc ?? n, alpha: alpha, beta: beta)
        guard timing || recording != nil else { return call.run(a, b, c) }
        let start = timing ? monotonicSeconds() : 0
        call.run(a, b, c)
        let seconds = timing ? monotonicSeconds() - start : 0
        if let region = ConcurrentRegion.current {
            region.add(call, seconds: seconds)
        } else {
            recording?.appendSerial(call)
            gemmSeconds += seconds
        }
    }

    /// Runs `body` and returns the shapes of the `sgemm` calls it made, in order, with the
    /// calls of ``concurrently(tasks:maxPieces:_:)``'s pieces kept apart (for replaying a
    /// step's GEMMs alone, as `transformer-bench` does).
    public static func record(_ body: () throws -> Void) rethrows -> GEMMRecording {
        let outer = recording
        recording = GEMMRecording()
        defer { recording = outer }
        try body()
        return recording ?? GEMMRecording()
    }

    /// Sets the BLAS library's thread count, if the provider can (OpenBLAS's
    /// `openblas_set_num_threads`, looked up at run time). Returns whether it could.
    @discardableResult
    public static func setThreads(_ count: Int) -> Bool {
        guard let symbol = setThreadsFunction else { return false }
        typealias SetThreads = @convention(c) (Int32) -> Void
        unsafeBitCast(symbol, to: SetThreads.self)(Int32(max(1, count)))
        return true
    }

    /// The BLAS library's thread count, or nil when the provider does not say (OpenBLAS's
    /// `openblas_get_num_threads`, looked up at run time).
    public static var threads: Int? {
        guard let symbol = getThreads else { return nil }
        typealias GetThreads = @convention(c) () -> Int32
        return Int(unsafeBitCast(symbol, to: GetThreads.self)())
    }
    private nonisolated(unsafe) static let getThreads = openBLASFunction("openblas_get_num_threads")
    private nonisolated(unsafe) static let setThreadsFunction = openBLASFunction("openblas_set_num_threads")

    /// The address of OpenBLAS's exported function `name`, or nil when the BLAS is another
    /// provider.
    static func openBLASFunction(_ name: String) -> UnsafeMutableRawPointer? {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), name)
    }

    /// The threads each of `ranksOnNode` ranks should use on a node of `cores` cores:
    /// max(1, cores ÷ ranks), so that ranks do not fight over cores.
    public static func threadsPerRank(cores: Int, ranksOnNode: Int) -> Int {
        max(1, cores / max(1, ranksOnNode))
    }
}

/// The shape of one `sgemm` call, row-major: C[m×n] = alpha · op(A) · op(B) + beta · C with
/// row strides `lda`, `ldb`, `ldc` (``BLAS/sgemm(m:n:k:_:transposeA:lda:_:transposeB:ldb:into:ldc:alpha:beta:)``).
public struct GEMMCall: Sendable, Equatable {
    /// Rows of C, columns of C, and the shared dimension.
    public let m: Int, n: Int, k: Int
    /// Whether A is stored k×m, and its row stride.
    public let transposeA: Bool, lda: Int
    /// Whether B is stored n×k, and its row stride.
    public let transposeB: Bool, ldb: Int
    /// C's row stride.
    public let ldc: Int
    /// The scale of the product and of C's old value.
    public let alpha: Float, beta: Float

    /// The floats A, B and C span with their strides.
    public var extents: (a: Int, b: Int, c: Int) {
        ((transposeA ? k : m) * lda, (transposeB ? n : k) * ldb, m * ldc)
    }

    /// The same product on dense rows (each stride at its smallest): what the call would cost
    /// if its operands were first copied out of a wider buffer, the copy not counted.
    public var dense: GEMMCall {
        GEMMCall(m: m, n: n, k: k, transposeA: transposeA, lda: transposeA ? m : k, transposeB: transposeB, ldb: transposeB ? k : n,
                 ldc: n, alpha: alpha, beta: beta)
    }

    /// 2·m·n·k: the floating-point operations of the product.
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    /// Runs the call on `a`, `b` and `c` (`cblas_sgemm`).
    public func run(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// The `sgemm` calls of some work (``BLAS/record(_:)``), as stretches in order: a stretch's
/// lists ran concurrently, one per thread, and a serial stretch has a single list.
public struct GEMMRecording: Sendable {
    /// The stretches, each a list of calls per thread.
    public internal(set) var stretches: [[[GEMMCall]]] = []

    /// Every call, stretch by stretch.
    public var calls: [GEMMCall] { stretches.flatMap { $0.joined() } }

    /// The floating-point operations of all calls.
    public var flops: Double { calls.reduce(0) { $0 + $1.flops } }

    /// The same stretches with every call replaced by `transform(call)`.
    public func map(_ transform: (GEMMCall) -> GEMMCall) -> GEMMRecording {
        GEMMRecording(stretches: stretches.map { $0.map { $0.map(transform) } })
    }

    mutating func appendSerial(_ call: GEMMCall) {
        if let last = stretches.indices.last, stretches[last].count == 1 {
            stretches[last][0].append(call)
        } else {
            stretches.append([[call]])
        }
    }
}
