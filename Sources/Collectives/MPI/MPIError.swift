import CMPI

/// A failure reported by the MPI library: a return code other than `MPI_SUCCESS`.
///
/// Every MPI call this package makes is checked; a failure becomes an `MPIError` that
/// carries the MPI function that failed, its error code, the code's error class and the
/// library's own description of it (`MPI_Error_string`).
public struct MPIError: Error, Equatable, CustomStringConvertible {
    /// The MPI function that returned the error, for example `"MPI_Allreduce"`.
    public let function: String
    /// The error code the function returned.
    public let code: Int32
    /// The error class of `code` (`MPI_Error_class`), one of the `MPI_ERR_*` constants.
    public let errorClass: Int32
    /// The MPI library's text for `code` (`MPI_Error_string`).
    public let message: String

    /// Creates an error from a return code, looking up its class and text.
    ///
    /// The corresponding MPI functions are `MPI_Error_class` and `MPI_Error_string`.
    public init(function: String, code: Int32) {
        self.function = function
        self.code = code
        var errorClass: Int32 = code
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        var isLibraryUsable: Int32 = 0
        MPI_Initialized(&isLibraryUsable)
        var isFinalized: Int32 = 0
        MPI_Finalized(&isFinalized)
        if isLibraryUsable != 0 && isFinalized == 0 {
            if MPI_Error_class(code, &errorClass) != MPI_SUCCESS { errorClass = code }
            if MPI_Error_string(code, &text, &length) != MPI_SUCCESS { length = 0 }
        }
        self.errorClass = errorClass
        let bytes = text.prefix(Int(length)).map { UInt8(bitPattern: $0) }
        self.message = length > 0 ? String(decoding: bytes, as: UTF8.self) : "MPI error code \(code)"
    }

    public var description: String {
        "\(function) failed: \(message) (error class \(errorClass), code \(code))"
    }
}

/// A call this package refused before it reached MPI, on every rank of the communicator.
///
/// Collective calls check their arguments on each rank and then agree, in one small
/// `MPI_Allreduce`, on whether every rank's arguments were valid and consistent
/// (see ``Communicator/verifiesArguments``). When any rank finds a problem, every rank
/// throws: each rank that found one throws ``invalidArgument(call:reason:)`` with its own
/// reason, and the others throw ``rejectedOnOtherRank(call:rank:)`` naming the lowest such rank, so no rank is
/// left waiting in a collective that the others abandoned.
public enum CollectiveError: Error, Equatable, CustomStringConvertible {
    /// MPI has not been started: call ``MPI/start(threadLevel:)`` first.
    case notStarted(call: String)
    /// MPI has been shut down (``MPI/finalize()``); no further MPI call is possible.
    case alreadyFinalized(call: String)
    /// This rank's arguments to `call` are invalid; `reason` says how.
    case invalidArgument(call: String, reason: String)
    /// The ranks passed `call` arguments that disagree (for example different counts).
    case mismatchAcrossRanks(call: String, reason: String)
    /// Rank `rank` rejected its arguments to `call`; its own error says why.
    case rejectedOnOtherRank(call: String, rank: Int)

    public var description: String {
        switch self {
        case .notStarted(let call):
            return "\(call): MPI has not been started; call MPI.start() before any MPI call"
        case .alreadyFinalized(let call):
            return "\(call): MPI has already been finalized; no MPI call is possible after MPI.finalize()"
        case .invalidArgument(let call, let reason):
            return "\(call): invalid argument: \(reason)"
        case .mismatchAcrossRanks(let call, let reason):
            return "\(call): ranks disagree: \(reason); every rank must pass matching arguments"
        case .rejectedOnOtherRank(let call, let rank):
            return "\(call): rank \(rank) rejected its arguments (its error says why); no data was exchanged"
        }
    }
}

/// Throws an ``MPIError`` unless `code` is `MPI_SUCCESS`.
@inlinable
func check(_ code: Int32, _ function: @autoclosure () -> String) throws {
    if code != MPI_SUCCESS { throw MPIError(function: function(), code: code) }
}
