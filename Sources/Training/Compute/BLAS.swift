import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Matrix products through the system BLAS, with row-major shapes in the signature.
public enum BLAS {
    /// Seconds spent inside `sgemm` since the last ``resetTimer()``, when ``timing`` is on.
    nonisolated(unsafe) public static var gemmSeconds: Double = 0
    /// Whether `sgemm` calls are timed (for `--profile`); off by default.
    nonisolated(unsafe) public static var timing = false

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
        let start = timing ? monotonicSeconds() : 0
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda ?? (transposeA ? m : k)), b, Int32(ldb ?? (transposeB ? k : n)), beta, c, Int32(ldc ?? n))
        if timing { gemmSeconds += monotonicSeconds() - start }
    }

    /// Sets the BLAS library's thread count, if the provider can (OpenBLAS's
    /// `openblas_set_num_threads`, looked up at run time). Returns whether it could.
    @discardableResult
    public static func setThreads(_ count: Int) -> Bool {
        guard let symbol = openBLASFunction("openblas_set_num_threads") else { return false }
        typealias SetThreads = @convention(c) (Int32) -> Void
        unsafeBitCast(symbol, to: SetThreads.self)(Int32(max(1, count)))
        return true
    }

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

/// Seconds from a monotonic clock.
public func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
