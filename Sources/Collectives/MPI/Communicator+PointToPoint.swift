import CMPI

/// What a completed receive reports.
public struct ReceiveStatus: Sendable, Equatable {
    /// The rank the message came from.
    public let source: Int
    /// The message's tag.
    public let tag: Int
    /// The number of elements received.
    public let count: Int

    /// A status with the given fields.
    public init(source: Int, tag: Int, count: Int) {
        self.source = source
        self.tag = tag
        self.count = count
    }
}

/// Blocking point-to-point messages.
extension Communicator {
    /// Sends `buffer` to rank `destination` with `tag`, returning when the buffer may be reused.
    ///
    /// The corresponding MPI function is `MPI_Send`.
    public func send<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0) throws {
        try perform("send", agreeing: nil, payload: Payload(sent: buffer.count * MemoryLayout<T>.stride, received: 0)) {
            if let problem = peerProblem(destination, tag: tag) ?? countProblem(buffer.count, "buffer") {
                throw CollectiveError.invalidArgument(call: "send", reason: problem)
            }
            try check(MPI_Send(buffer.baseAddress, Int32(buffer.count), T.mpiDatatype,
                               Int32(destination), Int32(tag), handle), "MPI_Send")
        }
    }

    /// Sends `values` to rank `destination` with `tag`.
    ///
    /// The corresponding MPI function is `MPI_Send`.
    public func send<T: MPIScalar>(_ values: [T], to destination: Int, tag: Int = 0) throws {
        try values.withUnsafeBufferPointer { try send($0, to: destination, tag: tag) }
    }

    /// Receives a message from rank `source` with `tag` into `buffer`, which must be at least
    /// as long as the message (a longer message throws `MPI_ERR_TRUNCATE`).
    ///
    /// The corresponding MPI functions are `MPI_Recv` and `MPI_Get_count`.
    @discardableResult
    public func receive<T: MPIScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int = 0) throws -> ReceiveStatus {
        let stride = MemoryLayout<T>.stride
        return try perform("receive", agreeing: nil, payload: { Payload(sent: 0, received: $0.count * stride) }) {
            if let problem = peerProblem(source, tag: tag) ?? countProblem(buffer.count, "buffer") {
                throw CollectiveError.invalidArgument(call: "receive", reason: problem)
            }
            var status = MPI_Status()
            try check(MPI_Recv(buffer.baseAddress, Int32(buffer.count), T.mpiDatatype,
                               Int32(source), Int32(tag), handle, &status), "MPI_Recv")
            var count: Int32 = 0
            try check(MPI_Get_count(&status, T.mpiDatatype, &count), "MPI_Get_count")
            return ReceiveStatus(source: Int(status.MPI_SOURCE), tag: Int(status.MPI_TAG), count: Int(count))
        }
    }

    private func peerProblem(_ peer: Int, tag: Int) -> String? {
        if !(0..<size).contains(peer) { return "rank \(peer) is not in this \(size)-rank communicator" }
        if tag < 0 || tag > 32767 { return "tag \(tag) is outside 0...32767, the range MPI guarantees" }
        return nil
    }
}
