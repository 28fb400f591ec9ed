/// The sign allreduce overlapped with the computation of its source: the exchange of each
/// bucket of ``SignAllreduce/bucketLength`` coordinates starts as soon as the caller says
/// that bucket is final, so that the bytes of the last layers travel while backward is still
/// computing the first layers' gradients.
///
/// ```swift
/// try signs.allreduce(direction, into: update, nonFinite: .skip) { ready in
///     model.backward(batch, gradientsReady: ready)   // calls ready(c): coordinates ≥ c are final
/// }
/// ```
///
/// The result is bit-identical to ``SignAllreduce/allreduce(_:into:nonFinite:)``'s for the
/// same ``SignAllreduce/calls``: a coordinate's coin flips depend on the call and the
/// coordinate, never on how the vector is cut.
extension SignAllreduce {
    /// Combines the signs of `source` across ranks into `sink` as
    /// ``allreduce(_:into:nonFinite:)`` does, while `fill` computes the source's values.
    ///
    /// `fill` receives `ready`; each call `ready(c)` says that the source's coordinates from
    /// `c` to the end are final and will not change again, so their buckets are packed and
    /// their exchange starts (it also moves the exchanges already started along; MPI
    /// progresses nonblocking calls only inside MPI calls). Watermarks should descend; a
    /// larger one than before changes nothing. After `fill` returns, whatever was not yet
    /// declared ready is packed and exchanged, and the sink is written once every bucket has
    /// been combined (with `nonFinite: .skip`, only if no rank's source held a NaN or an
    /// infinity; the verdict is the same on every rank).
    ///
    /// The sink is written only after `fill` returns, so `fill` may read what the sink will
    /// change (a model's parameters) but must not change a coordinate it declared ready.
    /// Every rank must make this call with the same arguments, as for the plain form. The
    /// first call checks them before `fill` runs; later calls, so that backward never waits
    /// for the slowest rank, check them after the exchange and before the sink is written
    /// (a rank whose arguments changed sends zeros meanwhile): either way a mismatch throws on
    /// every rank and no sink is written. `fill` should throw only by rethrowing `ready`'s
    /// errors, because a rank that leaves early leaves the others waiting in their exchanges.
    @inlinable @discardableResult
    public func allreduce<Source: SignSource, Sink: SignSink>(
        _ source: Source, into sink: Sink, nonFinite: NonFiniteInput = .vote,
        whileFilling fill: (_ ready: (_ firstFinalCoordinate: Int) throws -> Void) throws -> Void
    ) throws -> Bool {
        let (pack, unpack) = kernels(source, sink, checksFinite: nonFinite == .skip)
        return try overlappedExchange(count: source.count, sinkCount: sink.count, sourceProblem: source.problem,
                                      nonFinite: nonFinite, fill: fill, pack: pack, unpack: unpack)
    }

    /// The non-generic body of ``allreduce(_:into:nonFinite:whileFilling:)``.
    ///
    /// The first call (and the first after one that threw) agrees on its arguments before
    /// `fill`, as the plain form does. Later calls exchange in the shape agreed then and check
    /// their arguments after the exchange, before anything is written, so that backward never
    /// waits for the slowest rank's forward: a rank whose arguments no longer fit sends zeros
    /// of the agreed shape, and every rank throws at the check. Buckets are started from the
    /// last to the first, so each alltoall is started in the same order on every rank; an
    /// alltoall found complete is voted and its allgather started at once, on a duplicate
    /// communicator, because how many alltoalls have been started by then depends on timing.
    @usableFromInline
    func overlappedExchange(count: Int, sinkCount: Int, sourceProblem: String?, nonFinite: NonFiniteInput,
                            fill: ((Int) throws -> Void) throws -> Void, pack: @escaping Pack, unpack: @escaping Unpack) throws -> Bool {
        let call = "SignAllreduce.allreduce (overlapped)"
        let agreement = agreement(count: count, sinkCount: sinkCount, sourceProblem: sourceProblem, nonFinite: nonFinite,
                                  overlapped: true)
        // The bytes are counted by the alltoalls and allgathers inside.
        return try communicator.perform(call, agreeing: nil, payload: nil) {
            // Only a check across ranks can tell a rank that its arguments changed.
            let verifies = communicator.verifiesArguments && communicator.size > 1
            let shape: OverlapShape, checksAfterwards: Bool
            if verifies, let agreed = agreedOverlapShape {
                (shape, checksAfterwards) = (agreed, true)
            } else {
                try communicator.agree(call, agreement)
                (shape, checksAfterwards) = (OverlapShape(count: count, nonFinite: nonFinite), false)
                if verifies { agreedOverlapShape = shape }
            }
            let fits = agreement.problem == nil && shape == OverlapShape(count: count, nonFinite: nonFinite)
            calls &+= 1
            let plan = self.plan(count: shape.count, length: bucketLength)
            let pipeline: BucketExchange
            if let groups = try nodeGroups() {
                pipeline = NodeAwareBucketPipeline(allreduce: self, plan: plan, workspace: bucketWorkspace(for: plan),
                                                   groups: groups, pack: fits ? pack : nil)
            } else {
                pipeline = BucketPipeline(allreduce: self, plan: plan, workspace: bucketWorkspace(for: plan),
                                          gatherer: try gatherCommunicator(), pack: fits ? pack : nil)
            }
            defer { absorbHelperTraffic() }
            try pipeline.exchange(fill: fill)
            let checksFinite = shape.nonFinite == .skip && !plan.segments.isEmpty
            let applies = try checksAfterwards
                ? checkArguments(call, agreement, withVerdictOn: checksFinite ? pipeline.finite : nil)
                : !checksFinite || communicator.holdsOnEveryRank(pipeline.finite)
            try pipeline.finish(unpack: applies ? unpack : nil)
            return applies
        }
    }

    /// Checks a later call's arguments on every rank and, when `finite` is given, agrees in
    /// the same reduction whether every rank's source was finite; returns whether the sink
    /// may be written. The verdict's 4 bytes are counted as the plain form counts its own.
    /// A failed check throws on every rank, and the next call agrees before `fill` again.
    private func checkArguments(_ call: String, _ agreement: Agreement, withVerdictOn finite: Bool?) throws -> Bool {
        let verdict = communicator.allreducePayload(bytes: 4)
        var payload: ((borrowing [Int64]) -> Payload)? = nil
        if finite != nil { payload = { (_: borrowing [Int64]) -> Payload in verdict } }
        do {
            let nonFinite: [Int64] = try communicator.perform("verdict and argument check", agreeing: nil, payload: payload) {
                try self.communicator.agree(call, agreement, alsoMaximizing: [finite == false ? 1 : 0])
            }
            return nonFinite[0] == 0
        } catch {
            agreedOverlapShape = nil
            throw error
        }
    }

    /// Packs `segment`'s words of the source into `send` (the whole packed vector), or
    /// zeros them where `pack` is `nil` (a rank whose arguments do not fit the agreed shape);
    /// returns whether the values packed were finite.
    func packBucket(_ segment: SegmentPlan.Segment, _ pack: Pack?, plan: SegmentPlan, into send: MessageBuffer<UInt64>) -> Bool {
        let words = segment.firstWord ..< segment.firstWord + segment.paddedWords
        let base = send.storage.baseAddress!
        guard let pack else {
            for plane in 0..<plan.inputPlanes {
                (base + plane * plan.paddedWords + words.lowerBound).update(repeating: 0, count: words.count)
            }
            return true
        }
        return communicator.timeline.span("pack", .optimizer) { self.pack(pack, words: base, plan: plan, wordRange: words) }
    }

    /// Moves the bytes counted on the helper communicators (the gatherer, the node groups')
    /// to ``communicator``'s counters.
    func absorbHelperTraffic() {
        if let gatherer = gatherCommunicatorStorage { communicator.absorbTraffic(of: gatherer) }
        if case let groups?? = nodeGroupsStorage {
            for helper in groups.communicators { communicator.absorbTraffic(of: helper) }
        }
    }

    private func gatherCommunicator() throws -> Communicator {
        let gatherer = try gatherCommunicatorStorage ?? communicator.duplicate()
        gatherCommunicatorStorage = gatherer
        gatherer.timeline = communicator.timeline
        gatherer.verifiesArguments = false
        return gatherer
    }

    private func bucketWorkspace(for plan: SegmentPlan) -> BucketWorkspace {
        if let bucketWorkspaceStorage, bucketWorkspaceStorage.plan == plan { return bucketWorkspaceStorage }
        let fresh = BucketWorkspace(plan)
        bucketWorkspaceStorage = fresh
        return fresh
    }
}

/// The buffers of the overlapped sign allreduce: the whole packed vector, and each bucket's
/// own receive, vote and gather buffers, since all buckets may be in flight at once.
final class BucketWorkspace {
    /// The plan the buffers are cut for.
    let plan: SegmentPlan
    /// The packed vector (every input plane, each ``SegmentPlan/paddedWords`` long).
    let send: MessageBuffer<UInt64>
    /// Per bucket: every rank's words of this rank's chunk.
    let received: [MessageBuffer<UInt64>]
    /// Per bucket: the result planes of this rank's chunk.
    let voted: [MessageBuffer<UInt64>]
    /// Per bucket: every owner's result planes, in rank order.
    let gathered: [MessageBuffer<UInt64>]

    init(_ plan: SegmentPlan) {
        self.plan = plan
        send = MessageBuffer(repeating: 0, count: plan.inputPlanes * plan.paddedWords)
        received = plan.segments.map { MessageBuffer(repeating: 0, count: plan.inputPlanes * plan.ranks * $0.chunkWords) }
        voted = plan.segments.map { MessageBuffer(repeating: 0, count: plan.resultPlanes * $0.chunkWords) }
        gathered = plan.segments.map { MessageBuffer(repeating: 0, count: plan.ranks * plan.resultPlanes * $0.chunkWords) }
    }
}

/// What the ranks agreed the overlapped calls exchange: the coordinates and the non-finite
/// policy (the reduction and the bucket length are the instance's).
struct OverlapShape: Equatable {
    let count: Int
    let nonFinite: NonFiniteInput
}

/// One overlapped call's exchange of buckets, in whichever shape: started as `fill` declares
/// them final, then drained; the sink written by ``finish(unpack:)``. A shape says how a
/// bucket's first message starts and which is its last; packing, starting in order and
/// unpacking are the same for every shape.
protocol BucketExchange: AnyObject {
    var allreduce: SignAllreduce { get }
    var plan: SegmentPlan { get }
    var workspace: BucketWorkspace { get }
    /// Packs this rank's source; `nil` when its arguments do not fit the agreed shape, and it
    /// sends zeros.
    var pack: SignAllreduce.Pack? { get }
    /// The next bucket to pack and start (buckets go from the last to the first; −1: all started).
    var nextToStart: Int { get set }
    /// Whether every value packed so far was finite.
    var finite: Bool { get set }
    /// Runs `fill`, starting buckets as it declares them final, then starts the rest and
    /// carries every bucket up to its last message.
    func exchange(fill: ((Int) throws -> Void) throws -> Void) throws
    /// Starts bucket `index`'s first message, its words packed into `workspace.send`.
    func startFirstMessage(_ index: Int) throws
    /// Bucket `index`'s last message, the one that brings every rank's results, and the
    /// communicator it travels on.
    func lastMessage(_ index: Int) -> (slot: InFlight, communicator: Communicator)
}

extension BucketExchange {
    /// Packs and starts every bucket not yet started that lies wholly at or past `firstFinal`.
    func start(from firstFinal: Int) throws {
        while nextToStart >= 0, plan.segments[nextToStart].firstWord * 64 >= firstFinal {
            finite = allreduce.packBucket(plan.segments[nextToStart], pack, plan: plan, into: workspace.send) && finite
            try startFirstMessage(nextToStart)
            nextToStart -= 1
        }
    }

    /// Waits for every bucket's last message and, with `unpack`, decodes each into the sink.
    func finish(unpack: SignAllreduce.Unpack?) throws {
        let decoding = allreduce.decoding(plan)
        for index in plan.segments.indices.reversed() {
            let last = lastMessage(index)
            try last.slot.wait(on: last.communicator)
            if let unpack {
                allreduce.unpack(plan.segments[index], gathered: workspace.gathered[index].storage.baseAddress!, plan: plan,
                                 decoding: decoding, unpack)
            }
        }
    }
}

/// One overlapped call's exchange: which buckets are packed, exchanged, voted, gathered.
private final class BucketPipeline: BucketExchange {
    let allreduce: SignAllreduce
    let plan: SegmentPlan
    let workspace: BucketWorkspace
    let gatherer: Communicator
    let pack: SignAllreduce.Pack?
    /// Per bucket, its alltoall, then its allgather, while in flight.
    var alltoalls: [InFlight]
    var gathers: [InFlight]
    var nextToStart: Int
    /// The next bucket whose alltoall is to be voted on.
    var nextToVote: Int
    var finite = true

    init(allreduce: SignAllreduce, plan: SegmentPlan, workspace: BucketWorkspace, gatherer: Communicator,
         pack: SignAllreduce.Pack?) {
        self.allreduce = allreduce
        self.plan = plan
        self.workspace = workspace
        self.gatherer = gatherer
        self.pack = pack
        alltoalls = plan.segments.map { _ in InFlight() }
        gathers = plan.segments.map { _ in InFlight() }
        nextToStart = plan.segments.count - 1
        nextToVote = plan.segments.count - 1
    }

    /// Runs `fill`, starting buckets as it declares them final, then starts the rest, and
    /// waits for every alltoall, voting on each and starting its allgather.
    func exchange(fill: ((Int) throws -> Void) throws -> Void) throws {
        try fill { firstFinal in
            try start(from: firstFinal)
            try voteCompleted()
        }
        try start(from: 0)
        while nextToVote >= 0 {
            try alltoalls[nextToVote].wait(on: allreduce.communicator)
            try voteAndGather(nextToVote)
            nextToVote -= 1
        }
    }

    func startFirstMessage(_ index: Int) throws {
        let segment = plan.segments[index]
        try alltoalls[index].start(
            allreduce.communicator.startAlltoall(workspace.send, from: segment.firstWord, planes: plan.inputPlanes,
                                                 planeStride: plan.paddedWords, into: workspace.received[index],
                                                 chunk: segment.chunkWords, agreeing: nil))
    }

    func lastMessage(_ index: Int) -> (slot: InFlight, communicator: Communicator) { (gathers[index], gatherer) }

    /// Votes on, and starts gathering, every started bucket whose alltoall has completed, in
    /// the order they were started, without blocking.
    func voteCompleted() throws {
        while nextToVote > nextToStart, try alltoalls[nextToVote].hasCompleted() {
            try voteAndGather(nextToVote)
            nextToVote -= 1
        }
    }

    func voteAndGather(_ index: Int) throws {
        let segment = plan.segments[index]
        allreduce.vote(segment, rows: workspace.received[index].storage.baseAddress!,
                       into: workspace.voted[index].storage.baseAddress!)
        try gathers[index].start(
            gatherer.startAllgather(workspace.voted[index], into: workspace.gathered[index],
                                    count: segment.chunkWords * plan.resultPlanes, agreeing: nil))
    }
}

/// A slot for a ``Request`` that may or may not be in flight (a request cannot be copied,
/// so it cannot sit in an array itself).
final class InFlight {
    private var request: Request?

    func start(_ request: consuming Request) { self.request = consume request }

    /// Whether the request has completed (or none was started); drives MPI's progress.
    func hasCompleted() throws -> Bool {
        guard var request = request.take() else { return true }
        let done = try request.test()
        if !done { self.request = consume request }
        return done
    }

    /// Waits for the request, counting the wait on `communicator`.
    func wait(on communicator: Communicator) throws {
        guard let request = request.take() else { return }
        try communicator.wait(for: request)
    }
}
