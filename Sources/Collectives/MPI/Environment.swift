import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// Start-up, shut-down and process-wide facts of the MPI library.
///
/// ```swift
/// let granted = try MPI.start(threadLevel: .funneled)
/// let world = try MPI.world()
/// ...
/// try MPI.finalize()   // optional: a process that forgets still exits cleanly
/// ```
public enum MPI {
    /// The thread support levels of `MPI_Init_thread`, weakest first.
    public enum ThreadLevel: Int32, Comparable, Sendable, CustomStringConvertible {
        /// Only one thread exists (`MPI_THREAD_SINGLE`).
        case single
        /// Only the thread that started MPI makes MPI calls (`MPI_THREAD_FUNNELED`).
        case funneled
        /// Any thread may call, one at a time (`MPI_THREAD_SERIALIZED`).
        case serialized
        /// Any thread may call at any time (`MPI_THREAD_MULTIPLE`).
        case multiple

        init(mpiValue: Int32) {
            switch mpiValue {
            case Int32(MPI_THREAD_SINGLE): self = .single
            case Int32(MPI_THREAD_FUNNELED): self = .funneled
            case Int32(MPI_THREAD_SERIALIZED): self = .serialized
            default: self = .multiple
            }
        }

        var mpiValue: Int32 {
            switch self {
            case .single: return Int32(MPI_THREAD_SINGLE)
            case .funneled: return Int32(MPI_THREAD_FUNNELED)
            case .serialized: return Int32(MPI_THREAD_SERIALIZED)
            case .multiple: return Int32(MPI_THREAD_MULTIPLE)
            }
        }

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

        public var description: String {
            switch self {
            case .single: return "single"
            case .funneled: return "funneled"
            case .serialized: return "serialized"
            case .multiple: return "multiple"
            }
        }
    }

    /// Whether MPI has been started in this process (`MPI_Initialized`).
    public static var isStarted: Bool {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        return flag != 0
    }

    /// Whether MPI has been finalized in this process (`MPI_Finalized`).
    public static var isFinalized: Bool {
        var flag: Int32 = 0
        MPI_Finalized(&flag)
        return flag != 0
    }

    /// Starts MPI, asking for thread support `threadLevel`, and returns the level granted.
    ///
    /// Idempotent: when MPI is already running, returns the level granted then
    /// (`MPI_Query_thread`) and asks for nothing new. A process that never calls
    /// ``finalize()`` is finalized when it exits. Throws ``CollectiveError/alreadyFinalized(call:)``
    /// after shut-down, since MPI cannot be started twice.
    ///
    /// The corresponding MPI function is `MPI_Init_thread`.
    @discardableResult
    public static func start(threadLevel: ThreadLevel = .funneled) throws -> ThreadLevel {
        if isFinalized { throw CollectiveError.alreadyFinalized(call: "MPI.start") }
        if isStarted { return try grantedThreadLevel() }
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, threadLevel.mpiValue, &provided), "MPI_Init_thread")
        try check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler")
        try check(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler")
        atexit { if MPI.isStarted && !MPI.isFinalized { MPI_Finalize() } }
        return ThreadLevel(mpiValue: provided)
    }

    /// The thread support level MPI granted at start-up.
    ///
    /// The corresponding MPI function is `MPI_Query_thread`.
    public static func grantedThreadLevel() throws -> ThreadLevel {
        try requireRunning("MPI.grantedThreadLevel")
        var provided: Int32 = 0
        try check(MPI_Query_thread(&provided), "MPI_Query_thread")
        return ThreadLevel(mpiValue: provided)
    }

    /// Shuts MPI down. Idempotent: a second call does nothing.
    ///
    /// Every rank must call it (it is collective over `MPI_COMM_WORLD`). Communicators created
    /// by ``Communicator/duplicate()`` or ``Communicator/split(color:key:)`` are unusable after it.
    ///
    /// The corresponding MPI function is `MPI_Finalize`.
    public static func finalize() throws {
        guard isStarted, !isFinalized else { return }
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    /// Terminates every process of the job with `errorCode`: the way out of an error that
    /// other ranks cannot know about, where returning would leave them waiting.
    ///
    /// The corresponding MPI function is `MPI_Abort`.
    public static func abort(errorCode: Int32 = 1) -> Never {
        if isStarted && !isFinalized { MPI_Abort(MPI_COMM_WORLD, errorCode) }
        exit(errorCode)
    }

    /// Seconds since an arbitrary time in the past, for measuring intervals.
    ///
    /// The corresponding MPI function is `MPI_Wtime`.
    public static func wallTime() throws -> Double {
        try requireRunning("MPI.wallTime")
        return MPI_Wtime()
    }

    /// The communicator of every process in the job (`MPI_COMM_WORLD`), with errors returned
    /// rather than fatal.
    public static func world() throws -> Communicator {
        try requireRunning("MPI.world")
        return try Communicator(handle: MPI_COMM_WORLD, owns: false)
    }

    /// The communicator holding only this process (`MPI_COMM_SELF`).
    public static func selfCommunicator() throws -> Communicator {
        try requireRunning("MPI.selfCommunicator")
        return try Communicator(handle: MPI_COMM_SELF, owns: false)
    }

    /// Throws unless MPI is started and not yet finalized.
    static func requireRunning(_ call: String) throws {
        if !isStarted { throw CollectiveError.notStarted(call: call) }
        if isFinalized { throw CollectiveError.alreadyFinalized(call: call) }
    }
}
