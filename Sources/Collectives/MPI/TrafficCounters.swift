/// Bytes a communicator's calls have sent and received on this rank.
///
/// Collectives count the payload each rank must move under the bandwidth-optimal algorithm
/// for that collective — the convention of nccl-tests' bus bandwidth — not whatever internal
/// algorithm the MPI library happened to pick:
///
/// | call | bytes sent by this rank | bytes received by this rank |
/// |---|---|---|
/// | allreduce of n bytes | 2·(N−1)/N·n (ring) | 2·(N−1)/N·n |
/// | broadcast of n bytes | n at the root, 0 elsewhere | n except at the root |
/// | allgather(v) | (N−1)·own chunk | every other rank's chunk |
/// | alltoall(v) | every chunk addressed to another rank | every chunk from another rank |
/// | reduce-scatter-block of blocks of b bytes | (N−1)·b | (N−1)·b |
/// | send / receive | the message | the message |
///
/// The small argument-agreement reductions (``Communicator/verifiesArguments``) are control
/// traffic and are not counted.
public struct TrafficCounters: Sendable, Equatable, CustomStringConvertible {
    /// Payload bytes this rank has sent.
    public var bytesSent: Int = 0
    /// Payload bytes this rank has received.
    public var bytesReceived: Int = 0
    /// Number of communicating calls counted.
    public var calls: Int = 0

    /// Counters holding the given totals; `TrafficCounters()` starts at zero.
    public init(bytesSent: Int = 0, bytesReceived: Int = 0, calls: Int = 0) {
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
        self.calls = calls
    }

    /// Adds one call's bytes.
    public mutating func record(sent: Int, received: Int) {
        bytesSent += sent
        bytesReceived += received
        calls += 1
    }

    public var description: String {
        "\(calls) calls, \(bytesSent) bytes sent, \(bytesReceived) bytes received"
    }
}
