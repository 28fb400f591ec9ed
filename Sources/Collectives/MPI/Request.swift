import CMPI

/// A nonblocking call in flight.
///
/// A request owns references to its call's buffers, so they cannot be freed while MPI still
/// reads or writes them, and it cannot be copied. Complete it with ``wait()`` (which consumes
/// it) or poll it with ``test()``. A request dropped without completing is completed by its
/// `deinit` (`MPI_Wait`), so a call can never be abandoned half done; if that wait fails,
/// there is no caller left to tell and the process stops with the MPI error.
public struct Request: ~Copyable {
    private var handle: MPI_Request?
    /// The call it stands for, as errors and timelines name it (`"alltoall"`).
    let call: String
    private let buffers: [AnyObject]

    init(handle: MPI_Request?, call: String, buffers: [AnyObject]) {
        self.handle = handle
        self.call = call
        self.buffers = buffers
    }

    /// Whether the call has completed.
    public var isComplete: Bool { handle == MPI_REQUEST_NULL }

    /// Blocks until the call completes; its receive buffer may then be read.
    ///
    /// The corresponding MPI function is `MPI_Wait`.
    public consuming func wait() throws {
        guard !isComplete else { return }
        let code = MPI_Wait(&handle, MPI_STATUS_IGNORE)
        if code != MPI_SUCCESS {
            handle = MPI_REQUEST_NULL
            throw MPIError(function: "MPI_Wait (\(call))", code: code)
        }
    }

    /// Returns whether the call has completed, without blocking. Also drives MPI's progress.
    ///
    /// The corresponding MPI function is `MPI_Test`.
    public mutating func test() throws -> Bool {
        guard !isComplete else { return true }
        var flag: Int32 = 0
        try check(MPI_Test(&handle, &flag, MPI_STATUS_IGNORE), "MPI_Test (\(call))")
        return flag != 0
    }

    deinit {
        guard !isComplete, MPI.isStarted, !MPI.isFinalized else { return }
        var handle = self.handle
        let code = MPI_Wait(&handle, MPI_STATUS_IGNORE)
        if code != MPI_SUCCESS {
            fatalError("a dropped \(call) request failed to complete: \(MPIError(function: "MPI_Wait", code: code))")
        }
    }
}

/// Nonblocking collectives on ``MessageBuffer``s.
extension Communicator {
    /// Waits for `request`, adding the time spent waiting to ``traffic`` (and to the
    /// ``timeline``, if there is one).
    ///
    /// The corresponding MPI function is `MPI_Wait`.
    public func wait(for request: consuming Request) throws {
        let started = monotonicSeconds(), call = request.call
        defer {
            let ended = monotonicSeconds()
            traffic.seconds += ended - started
            timeline?.record("wait for \(call)", .communication, from: started, to: ended)
        }
        try request.wait()
    }

    /// Starts an alltoall: chunk j of `send` goes to rank j; rank j's chunk for this rank
    /// lands in chunk j of `receive`. Counts as in ``alltoall(_:into:)``.
    ///
    /// The corresponding MPI function is `MPI_Ialltoall`.
    public func startAlltoall<T: MPIScalar>(_ send: MessageBuffer<T>, into receive: MessageBuffer<T>) throws -> Request {
        try startAlltoall(send, into: receive, chunk: send.count / size,
                          agreeing: Agreement(problem: alltoallProblem(send: send.count, receive: receive.count),
                                              values: [AgreedValue(name: "element count", value: send.count)]))
    }

    /// `MPI_Ialltoall` of `size × chunk` elements of `send` from element `offset` into the
    /// first `size × chunk` of `receive`, with the agreement given (`nil`: agreed already).
    ///
    /// With `planes` above 1, each rank's chunk is `planes` runs of `chunk` elements,
    /// `planeStride` apart (rank j's first run starts at `offset + j × chunk`); they travel as
    /// one message (a derived datatype, see ``withPlanesDatatype(of:planes:run:stride:_:)``) and
    /// land rank by rank, run after run, in the first `size × planes × chunk` of `receive`.
    func startAlltoall<T: MPIScalar>(_ send: MessageBuffer<T>, from offset: Int = 0, planes: Int = 1, planeStride: Int = 0,
                                     into receive: MessageBuffer<T>, chunk: Int, agreeing agreement: Agreement?) throws -> Request {
        try perform("startAlltoall", agreeing: agreement,
                    payload: .symmetric((size - 1) * planes * chunk * MemoryLayout<T>.stride)) {
            var handle: MPI_Request? = nil
            let start = send.storage.baseAddress.map { $0 + offset }
            if planes == 1 {
                try check(MPI_Ialltoall(start, Int32(chunk), T.mpiDatatype,
                                        receive.storage.baseAddress, Int32(chunk), T.mpiDatatype, self.handle, &handle),
                          "MPI_Ialltoall")
            } else {
                try withPlanesDatatype(of: T.self, planes: planes, run: chunk, stride: planeStride) { runs in
                    try check(MPI_Ialltoall(start, 1, runs, receive.storage.baseAddress, Int32(planes * chunk), T.mpiDatatype,
                                            self.handle, &handle),
                              "MPI_Ialltoall")
                }
            }
            return Request(handle: handle, call: "alltoall", buffers: [send, receive])
        }
    }

    /// Starts an allgather: every rank's `send` lands, in rank order, in `receive`, which must
    /// hold `size × send.count` elements.
    ///
    /// The corresponding MPI function is `MPI_Iallgather`.
    public func startAllgather<T: MPIScalar>(_ send: MessageBuffer<T>, into receive: MessageBuffer<T>) throws -> Request {
        try startAllgather(send, into: receive, count: send.count,
                           agreeing: Agreement(problem: allgatherProblem(send: send.count, receive: receive.count),
                                               values: [AgreedValue(name: "element count", value: send.count)]))
    }

    /// `MPI_Iallgather` of the first `count` elements of `send` into the first
    /// `size × count` of `receive`, with the agreement given (`nil`: agreed already).
    func startAllgather<T: MPIScalar>(_ send: MessageBuffer<T>, into receive: MessageBuffer<T>, count: Int,
                                      agreeing agreement: Agreement?) throws -> Request {
        try perform("startAllgather", agreeing: agreement, payload: .symmetric((size - 1) * count * MemoryLayout<T>.stride)) {
            var handle: MPI_Request? = nil
            try check(MPI_Iallgather(send.storage.baseAddress, Int32(count), T.mpiDatatype,
                                     receive.storage.baseAddress, Int32(count), T.mpiDatatype, self.handle, &handle),
                      "MPI_Iallgather")
            return Request(handle: handle, call: "allgather", buffers: [send, receive])
        }
    }
}
