import CMPI

/// What every rank must agree on before a collective reaches MPI: this rank's own problem
/// with its arguments, if any, and the values that must be equal on every rank.
struct Agreement {
    /// The problem this rank found with its own arguments, or `nil`.
    var problem: String?
    /// Values every rank must pass identically.
    var values: [AgreedValue] = []
}

/// A quantity every rank must pass identically to a collective, named for error messages.
struct AgreedValue {
    /// What the value is, for example `"element count"`.
    let name: String
    /// This rank's value.
    let value: Int
}

/// The bytes one call moves on this rank, as ``TrafficCounters`` counts them.
struct Payload {
    /// Bytes sent.
    var sent: Int
    /// Bytes received.
    var received: Int

    /// As many bytes received as sent.
    static func symmetric(_ bytes: Int) -> Payload { Payload(sent: bytes, received: bytes) }
}

extension Communicator {
    /// The one path of every MPI call this type makes: MPI must be running; with an
    /// `agreement`, every rank's arguments are agreed first (``agree(_:_:)``), so a bad argument
    /// anywhere throws everywhere; then `body` makes the call (each return code through
    /// ``check(_:_:)``); then, with a `payload`, the call's bytes and its time (argument check
    /// included) are added to ``traffic`` and, when there is a ``timeline``, recorded on it.
    ///
    /// `agreement` is `nil` where there is nothing to agree on or it was agreed already by
    /// the caller; `payload` is `nil` for calls that move no payload (barriers, communicator
    /// management).
    func perform<Result: ~Copyable>(_ call: String, agreeing agreement: Agreement?, payload: ((borrowing Result) -> Payload)?,
                                    _ body: () throws -> Result) throws -> Result {
        try MPI.requireRunning(call)
        let started = monotonicSeconds()
        if let agreement { try agree(call, agreement) }
        let result = try body()
        if let payload {
            let bytes = payload(result), ended = monotonicSeconds()
            traffic.record(sent: bytes.sent, received: bytes.received, seconds: ended - started)
            timeline?.record(call, .communication, from: started, to: ended)
        }
        return result
    }

    /// ``perform(_:agreeing:payload:_:)`` for a call whose bytes are known before it is made.
    func perform<Result: ~Copyable>(_ call: String, agreeing agreement: Agreement?, payload: Payload,
                                    _ body: () throws -> Result) throws -> Result {
        try perform(call, agreeing: agreement, payload: { _ in payload }, body)
    }

    /// The bytes of an allreduce of `bytes` per rank under the ring convention: 2·(N−1)/N·n
    /// each way.
    func allreducePayload(bytes: Int) -> Payload { .symmetric(2 * (size - 1) * bytes / size) }
}
