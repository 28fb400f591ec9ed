import CMPI

/// A Swift scalar type with an MPI datatype of the same size and meaning.
///
/// Every buffer-taking method of ``Communicator`` is generic over this protocol, so the
/// datatype and the element count of each MPI call come from the Swift buffer, never from
/// the caller.
public protocol MPIScalar: BitwiseCopyable {
    /// The predefined MPI datatype matching `Self`, for example `MPI_FLOAT` for `Float`.
    static var mpiDatatype: MPI_Datatype { get }
}

extension Float: MPIScalar {
    /// `MPI_FLOAT`.
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_FLOAT }
}

extension Double: MPIScalar {
    /// `MPI_DOUBLE`.
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_DOUBLE }
}

extension Int8: MPIScalar {
    /// `MPI_INT8_T`.
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_INT8_T }
}

extension Int32: MPIScalar {
    /// `MPI_INT32_T`.
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_INT32_T }
}

extension Int64: MPIScalar {
    /// `MPI_INT64_T`.
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_INT64_T }
}

extension UInt8: MPIScalar {
    /// `MPI_UINT8_T`.
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_UINT8_T }
}

extension UInt32: MPIScalar {
    /// `MPI_UINT32_T`.
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_UINT32_T }
}

extension UInt64: MPIScalar {
    /// `MPI_UINT64_T`.
    @inlinable public static var mpiDatatype: MPI_Datatype { MPI_UINT64_T }
}

/// The reductions ``Communicator/allreduce(_:into:operation:)`` and its relatives can apply.
public enum ReductionOperation: Sendable, CaseIterable, CustomStringConvertible {
    /// Element-wise sum (`MPI_SUM`).
    case sum
    /// Element-wise maximum (`MPI_MAX`).
    case max
    /// Element-wise minimum (`MPI_MIN`).
    case min
    /// Element-wise bitwise or (`MPI_BOR`); integer types only.
    case bitwiseOr
    /// Element-wise bitwise and (`MPI_BAND`); integer types only.
    case bitwiseAnd

    /// The predefined MPI operation.
    public var mpiOperation: MPI_Op {
        switch self {
        case .sum: return MPI_SUM
        case .max: return MPI_MAX
        case .min: return MPI_MIN
        case .bitwiseOr: return MPI_BOR
        case .bitwiseAnd: return MPI_BAND
        }
    }

    /// Whether the operation is defined for `T`: bitwise operations need an integer type.
    func isDefined<T: MPIScalar>(for type: T.Type) -> Bool {
        switch self {
        case .sum, .max, .min: return true
        case .bitwiseOr, .bitwiseAnd: return !(T.self == Float.self || T.self == Double.self)
        }
    }

    public var description: String {
        switch self {
        case .sum: return "sum"
        case .max: return "max"
        case .min: return "min"
        case .bitwiseOr: return "bitwise or"
        case .bitwiseAnd: return "bitwise and"
        }
    }
}

/// Runs `body` with a committed derived datatype for `planes` runs of `run` elements of `T`,
/// `stride` elements apart, resized to the extent of one run: element j of a buffer of this
/// type (one per destination rank of an alltoall) starts `j × run` elements in, and is sent
/// as its runs one after another. The type is freed when `body` returns; calls started with
/// it complete normally (MPI keeps a freed type alive while it is in use).
///
/// The corresponding MPI functions are `MPI_Type_vector`, `MPI_Type_create_resized`,
/// `MPI_Type_commit` and `MPI_Type_free`.
func withPlanesDatatype<T: MPIScalar, Result>(of type: T.Type, planes: Int, run: Int, stride: Int,
                                               _ body: (MPI_Datatype) throws -> Result) throws -> Result {
    var vector: MPI_Datatype? = nil
    try check(MPI_Type_vector(Int32(planes), Int32(run), Int32(stride), T.mpiDatatype, &vector), "MPI_Type_vector")
    defer { MPI_Type_free(&vector) }
    var resized: MPI_Datatype? = nil
    try check(MPI_Type_create_resized(vector, 0, MPI_Aint(run * MemoryLayout<T>.stride), &resized), "MPI_Type_create_resized")
    defer { MPI_Type_free(&resized) }
    try check(MPI_Type_commit(&resized), "MPI_Type_commit")
    guard let resized else { throw MPIError(function: "MPI_Type_commit", code: MPI_ERR_TYPE) }
    return try body(resized)
}
