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
    /// is unset this sets it and re-executes the program: `execv` of the program's real path
    /// (where `/proc/self/exe` points), with the same arguments and the same process id, so
    /// `mpirun` is not disturbed and `ps`, `pidof` and `pkill` still see the program's name.
    ///
    /// Nothing in the library calls it: a program opts in by calling it first thing in
    /// `main`, before `MPI.start()` and before any thread is started (`dlion-train` and
    /// `gemm-bench` do). It does nothing when the variable is already set (a value the user
    /// chose wins), when the BLAS is not OpenBLAS, off Linux, or if `execv` fails.
    public static func restartWithSleepingIdleThreads() {
        #if os(Linux)
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil,
              openBLASFunction("openblas_set_num_threads") != nil else { return }
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &path, path.count - 1)
        guard length > 0 else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", idleThreadTimeout, 0)
        execv(path, CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_THREAD_TIMEOUT")
        #endif
    }
}
