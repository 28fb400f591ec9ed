import Collectives
#if canImport(Glibc)
import Glibc
#endif

/// How many threads each rank's BLAS and element-wise kernels use.
public enum Threads {
    /// Shares this node's cores among the ranks of `communicator` that run on it: each rank
    /// gets max(1, cores ÷ ranks on the node) threads (or `perRank`), for both BLAS
    /// (``BLAS/setThreads(_:)``) and the element-wise kernels (``Parallel/threads``), so that
    /// ranks sharing a node do not fight over its cores. Collective; returns the threads set.
    ///
    /// The ranks on the node are counted by MPI (``Communicator/splitByNode()``), whatever
    /// launched them.
    @discardableResult
    public static func shareNode(with communicator: Communicator, perRank: Int? = nil) throws -> Int {
        let ranksOnNode = try communicator.splitByNode().size
        let threads = perRank ?? BLAS.threadsPerRank(cores: sysconf(Int32(_SC_NPROCESSORS_ONLN)), ranksOnNode: ranksOnNode)
        BLAS.setThreads(threads)
        Parallel.threads = max(1, threads)
        return threads
    }
}
