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
/// ``seconds`` is the time spent inside the counted calls (including their argument checks)
/// and waiting for their nonblocking forms to finish.
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
    /// Seconds spent in the counted calls and in waiting for them.
    public var seconds: Double = 0

    /// Counters holding the given totals; `TrafficCounters()` starts at zero.
    public init(bytesSent: Int = 0, bytesReceived: Int = 0, calls: Int = 0, seconds: Double = 0) {
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
        self.calls = calls
        self.seconds = seconds
    }

    /// Adds one call's bytes and time.
    public mutating func record(sent: Int, received: Int, seconds: Double = 0) {
        bytesSent += sent
        bytesReceived += received
        calls += 1
        self.seconds += seconds
    }

    /// Whether the byte and call counts are equal (times are not compared).
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.bytesSent == rhs.bytesSent && lhs.bytesReceived == rhs.bytesReceived && lhs.calls == rhs.calls
    }

    public var description: String {
        "\(calls) calls, \(bytesSent) bytes sent, \(bytesReceived) bytes received"
    }
}
