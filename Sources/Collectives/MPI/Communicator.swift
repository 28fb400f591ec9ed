import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// A group of ranks that communicate: a Swift face on an `MPI_Comm`.
///
/// Obtain one from ``MPI/world()``, then ``duplicate()`` or ``split(color:key:)`` it. Errors
/// are returned, never fatal (`MPI_ERRORS_RETURN` is set on every communicator this type
/// wraps or creates), and every failure is thrown. Each communicator counts the bytes its
/// calls move in ``traffic``.
///
/// A communicator is used from one thread at a time.
public final class Communicator {
    /// The underlying MPI handle, for MPI calls this type does not wrap.
    public let handle: MPI_Comm
    /// This process's rank in the communicator, in `0..<size`.
    public let rank: Int
    /// The number of ranks.
    public let size: Int
    /// Whether collective calls first agree across ranks that every rank's arguments are
    /// valid and consistent (one small `MPI_Allreduce` per call). On by default.
    ///
    /// With it on, bad arguments on any rank make every rank throw. With it off, a rank
    /// throws only for its own local problems, and ranks passing inconsistent counts get
    /// whatever MPI does with them (an error on some ranks, or a hang).
    public var verifiesArguments = true
    /// Bytes this rank's calls on this communicator have sent and received.
    public internal(set) var traffic = TrafficCounters()
    /// Where the calls counted in ``traffic`` (and the waits for nonblocking ones) are
    /// recorded as ``Timeline/Category/communication`` spans, if anywhere; the sign allreduce
    /// adds its pack, vote and unpack. Off (`nil`) by default.
    public var timeline: Timeline?

    private let ownsHandle: Bool

    /// Wraps an existing communicator without taking ownership, setting `MPI_ERRORS_RETURN`
    /// on it.
    ///
    /// The corresponding MPI functions are `MPI_Comm_set_errhandler`, `MPI_Comm_rank` and
    /// `MPI_Comm_size`.
    public convenience init(wrapping handle: MPI_Comm) throws {
        try MPI.requireRunning("Communicator(wrapping:)")
        try self.init(handle: handle, owns: false)
    }

    init(handle: MPI_Comm?, owns: Bool) throws {
        guard let handle else { throw CollectiveError.invalidArgument(call: "Communicator", reason: "MPI returned no communicator") }
        try check(MPI_Comm_set_errhandler(handle, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0
        var size: Int32 = 0
        try check(MPI_Comm_rank(handle, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(handle, &size), "MPI_Comm_size")
        self.handle = handle
        self.rank = Int(rank)
        self.size = Int(size)
        self.ownsHandle = owns
    }

    deinit {
        guard ownsHandle, MPI.isStarted, !MPI.isFinalized else { return }
        var handle: MPI_Comm? = self.handle
        let code = MPI_Comm_free(&handle)
        if code != MPI_SUCCESS {
            printToStandardError("warning: \(MPIError(function: "MPI_Comm_free", code: code))")
        }
    }

    /// Clears ``traffic``.
    public func resetTraffic() { traffic = TrafficCounters() }

    /// Adds `other`'s traffic to this communicator's and clears `other`'s: for a helper
    /// communicator whose calls belong to this one's.
    func absorbTraffic(of other: Communicator) {
        traffic.bytesSent += other.traffic.bytesSent
        traffic.bytesReceived += other.traffic.bytesReceived
        traffic.calls += other.traffic.calls
        traffic.seconds += other.traffic.seconds
        other.resetTraffic()
    }

    /// Blocks until every rank has called it.
    ///
    /// The corresponding MPI function is `MPI_Barrier`.
    public func barrier() throws {
        try perform("barrier", agreeing: nil, payload: nil) { try check(MPI_Barrier(handle), "MPI_Barrier") }
    }

    /// A new communicator with the same ranks and a separate message space; collective.
    ///
    /// The corresponding MPI function is `MPI_Comm_dup`.
    public func duplicate() throws -> Communicator {
        try perform("duplicate", agreeing: nil, payload: nil) {
            var newHandle: MPI_Comm? = nil
            try check(MPI_Comm_dup(handle, &newHandle), "MPI_Comm_dup")
            return try Communicator(handle: newHandle, owns: true)
        }
    }

    /// Splits the ranks into disjoint communicators, one per distinct `color`, ordered by
    /// `key` then by rank; collective. A negative `color` puts this rank in none and returns
    /// `nil` (`MPI_UNDEFINED`).
    ///
    /// The corresponding MPI function is `MPI_Comm_split`.
    public func split(color: Int, key: Int = 0) throws -> Communicator? {
        let problem = Int32(exactly: key) == nil || Int32(exactly: color) == nil
            ? "color \(color) and key \(key) must fit in Int32" : nil
        return try perform("split", agreeing: Agreement(problem: problem), payload: nil) {
            var newHandle: MPI_Comm? = nil
            let mpiColor = color < 0 ? MPI_UNDEFINED : Int32(color)
            try check(MPI_Comm_split(handle, mpiColor, Int32(key), &newHandle), "MPI_Comm_split")
            guard let newHandle, newHandle != MPI_COMM_NULL else { return nil }
            return try Communicator(handle: newHandle, owns: true)
        }
    }

    /// The ranks that share this rank's node (its shared-memory domain), as a communicator
    /// of their own, ordered as in this one; collective. Its ``size`` is the number of ranks
    /// on this node, whatever launched them (`mpirun`, Slurm, a hostfile).
    ///
    /// The corresponding MPI function is `MPI_Comm_split_type` with `MPI_COMM_TYPE_SHARED`.
    public func splitByNode() throws -> Communicator {
        try perform("splitByNode", agreeing: nil, payload: nil) {
            var newHandle: MPI_Comm? = nil
            try check(MPI_Comm_split_type(handle, Int32(MPI_COMM_TYPE_SHARED), Int32(rank), MPI_INFO_NULL, &newHandle),
                      "MPI_Comm_split_type")
            return try Communicator(handle: newHandle, owns: true)
        }
    }
}

/// Writes a line to standard error.
func printToStandardError(_ line: String) {
    var text = line
    if !text.hasSuffix("\n") { text += "\n" }
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
