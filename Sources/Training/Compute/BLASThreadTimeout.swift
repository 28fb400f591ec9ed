#if canImport(Glibc)
import Glibc
#endif

extension BLAS {
    /// The value ``restartWithSleepingIdleThreads()`` gives `OPENBLAS_THREAD_TIMEOUT`:
    /// idle workers sleep after 2⁴ cycles instead of OpenBLAS's default 2²⁸ (about 0.1 s).
    public static let idleThreadTimeout = "4"

    /// Makes OpenBLAS's idle worker threads sleep as soon as a call ends instead of spinning.
    ///
    /// After every call OpenBLAS's workers spin (calling `sched_yield`) for about 0.1 s before
    /// they sleep. A training step alternates GEMMs with element-wise work, so they spin through
    /// all of it and take the cores the optimizer and the layers need: with 2 BLAS threads,
    /// `gemm-bench` measures a Distributed Lion step 3–5 % faster with `OPENBLAS_THREAD_TIMEOUT=4`.
    /// OpenBLAS reads that variable only in its library constructor, before `main`, so when it
    /// is unset this sets it and re-executes the program (`execv` of `/proc/self/exe`, same
    /// arguments, same process id, so `mpirun` is not disturbed).
    ///
    /// Call it first thing in `main`, before `MPI.start()` and before any thread is started.
    /// It does nothing when the variable is already set (a value the user chose wins), when the
    /// BLAS is not OpenBLAS, off Linux, or if `execv` fails.
    public static func restartWithSleepingIdleThreads() {
        #if os(Linux)
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil,
              openBLASFunction("openblas_set_num_threads") != nil else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", idleThreadTimeout, 0)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        #endif
    }
}
