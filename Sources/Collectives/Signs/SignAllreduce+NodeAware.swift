/// How a ``SignAllreduce`` lays its exchange over the nodes its ranks run on.
public enum ExchangeShape: Sendable, Equatable {
    /// One alltoall and one allgather over all ranks. Each rank sends about 2·(N−1)/N·d/8
    /// bytes, (N−R)/N of them off its node, so a node of R ranks sends R times what one rank
    /// would. The default.
    case flat
    /// Two levels. The R ranks of a node first count their votes together, each one owning
    /// 1/R of the coordinates (an alltoall within the node); then rank l of every node
    /// exchanges its nodes' counts, ⌈log2(R·planes + 1)⌉ bits a coordinate, with rank l of
    /// the other nodes and votes, and the results go back the same way. A node sends about
    /// (H−1)/H·(⌈log2(R+1)⌉ + 1)·d/8 bytes off itself against R·(N−R)/N·2·d/8 for ``flat``:
    /// for 4 ranks per node, 4 bits a coordinate instead of 8 at large H. The result is the
    /// same as ``flat``'s, bit for bit, tie-breaks included.
    ///
    /// `ranksPerNode: nil` groups the ranks by the node they run on (`MPI_Comm_split_type`);
    /// then the exchange is ``flat`` on one node, with one rank per node, or when the nodes
    /// hold different numbers of ranks. A number
    /// groups consecutive ranks, R at a time (it must divide the number of ranks): for tests,
    /// and for emulated nodes on one machine.
    case nodeAware(ranksPerNode: Int? = nil)

    var code: Int {
        switch self {
        case .flat: 0
        case .nodeAware(nil): -1
        case .nodeAware(let ranks?): ranks
        }
    }
}

/// The two communicators of the node-aware exchange: this rank's node, and the ranks of the
/// same index on every node, ordered by node; and a duplicate of each for the overlapped
/// form's allgathers, whose order among its alltoalls depends on timing.
struct NodeGroups {
    let node: Communicator
    let across: Communicator
    let nodeGatherer: Communicator
    let acrossGatherer: Communicator

    /// Every communicator of the groups, for their byte counters.
    var communicators: [Communicator] { [node, across, nodeGatherer, acrossGatherer] }

    /// Ranks per node, R.
    var ranksPerNode: Int { node.size }
    /// Nodes, H.
    var nodes: Int { across.size }
    /// This rank's chunk of every segment: it votes coordinates of chunk q = l·H + h, where l
    /// is its rank on its node and h its node's index.
    var owner: Int { node.rank * across.size + across.rank }

    /// The groups `shape` asks for on `communicator`, or `nil` where the exchange is flat;
    /// collective. The few small collectives that decide them are control traffic, on a
    /// duplicate whose bytes are not counted, as argument checks are not.
    static func make(_ shape: ExchangeShape, on communicator: Communicator) throws -> NodeGroups? {
        guard case .nodeAware(let ranksPerNode) = shape else { return nil }
        let control = try communicator.duplicate()
        let node: Communicator
        if let ranksPerNode {
            guard let group = try control.split(color: control.rank / ranksPerNode, key: control.rank) else { return nil }
            node = group
        } else {
            node = try control.splitByNode()
            // One node, or one rank a node: the flat exchange is the same messages, fewer of them.
            guard try control.allreduce([Int64(node.size == 1 || node.size == control.size ? 1 : 0)], operation: .max)[0] == 0
            else { return nil }
        }
        let sizes = try control.allreduce([Int64(node.size), -Int64(node.size)], operation: .max)
        guard sizes[0] == -sizes[1] else { return nil }  // nodes of different sizes: flat
        // Nodes ordered by their first rank, the same order on every node's rank l.
        var first = [Int64(control.rank)]
        try node.broadcast(&first, root: 0)
        guard let across = try control.split(color: node.rank, key: Int(first[0])) else { return nil }
        let groups = NodeGroups(node: node, across: across, nodeGatherer: try node.duplicate(),
                                acrossGatherer: try across.duplicate())
        for helper in groups.communicators {
            helper.verifiesArguments = false
            helper.resetTraffic()
        }
        return groups
    }
}

/// The buffers of one segment of the node-aware exchange (those it shares with the flat one
/// are in ``SignWorkspace``).
final class NodeWorkspace {
    let chunkCapacity: Int
    /// The node's counts of its block: `localPlanes` planes of H·C words.
    let nodeCounts: MessageBuffer<UInt64>
    /// Every node's counts of this rank's chunk: H × `localPlanes` planes of C words.
    let counts: MessageBuffer<UInt64>
    /// The node's block of results, gathered across nodes: H × result planes of C words.
    let blockResults: MessageBuffer<UInt64>

    init(chunkWords: Int, groups: NodeGroups, localPlanes: Int, resultPlanes: Int) {
        chunkCapacity = chunkWords
        nodeCounts = MessageBuffer(repeating: 0, count: localPlanes * groups.nodes * chunkWords)
        counts = MessageBuffer(repeating: 0, count: groups.nodes * localPlanes * chunkWords)
        blockResults = MessageBuffer(repeating: 0, count: groups.nodes * resultPlanes * chunkWords)
    }
}

extension SignAllreduce {
    /// The node groups of ``shape``, made at the first call that needs them (collective), or
    /// `nil` where the exchange is flat.
    func nodeGroups() throws -> NodeGroups? {
        if let resolved = nodeGroupsStorage { return resolved }
        let groups = try NodeGroups.make(shape, on: communicator)
        nodeGroupsStorage = .some(groups)
        return groups
    }

    /// The overlapped node-aware exchange's own buffers for `plan`, reused while it is the same.
    func nodeBucketWorkspace(for plan: SegmentPlan, groups: NodeGroups, localPlanes: Int) -> NodeBucketWorkspace {
        if let workspace = nodeBucketWorkspaceStorage, workspace.plan == plan { return workspace }
        let fresh = NodeBucketWorkspace(plan, nodes: groups.nodes, localPlanes: localPlanes)
        nodeBucketWorkspaceStorage = fresh
        return fresh
    }

    /// The node-aware buffers for chunks of up to `chunkWords` words, reused while they fit.
    private func nodeWorkspace(chunkWords: Int, groups: NodeGroups, localPlanes: Int, resultPlanes: Int) -> NodeWorkspace {
        if let workspace = nodeWorkspaceStorage, workspace.chunkCapacity >= chunkWords,
           workspace.blockResults.count >= groups.nodes * resultPlanes * chunkWords {
            return workspace
        }
        let fresh = NodeWorkspace(chunkWords: chunkWords, groups: groups, localPlanes: localPlanes, resultPlanes: resultPlanes)
        nodeWorkspaceStorage = fresh
        return fresh
    }

    /// Planes of a node's count of its ranks' votes: ⌈log2(R·input planes + 1)⌉.
    func localPlanes(_ groups: NodeGroups) -> Int {
        reduction.countPlanes(ranks: groups.ranksPerNode * reduction.inputPlanes)
    }

    /// The bytes one call sends from each rank in the node-aware shape, within its node and
    /// across nodes.
    func nodeAwareBytesPerRank(_ plan: SegmentPlan, _ groups: NodeGroups) -> Int {
        let (ranks, nodes, local) = (groups.ranksPerNode, groups.nodes, localPlanes(groups))
        return plan.segments.reduce(0) { total, segment in
            let chunk = segment.chunkWords
            let withinNode = (ranks - 1) * nodes * chunk * (plan.inputPlanes + plan.resultPlanes)
            let acrossNodes = (nodes - 1) * chunk * (local + plan.resultPlanes)
            return total + 8 * (withinNode + acrossNodes)
        }
    }

    /// The node-aware exchange of the packed segments of `plan`, in `workspace.send`, into
    /// the sink (see ``ExchangeShape/nodeAware(ranksPerNode:)``), one segment after another:
    ///
    /// 1. alltoall within the node: block l (H chunks) of the segment to the node's rank l;
    /// 2. count the node's votes on the block (bit-sliced, `localPlanes` planes);
    /// 3. alltoall across nodes: chunk h of the block's counts to node h;
    /// 4. vote this rank's chunk from the H nodes' counts, with ``flat``'s tie-breaks;
    /// 5. allgather across nodes, then within the node: every chunk's result, in chunk order;
    /// 6. unpack, as the flat exchange does.
    func nodeAwareExchange(_ plan: SegmentPlan, unpack decode: Unpack, workspace: SignWorkspace,
                           groups: NodeGroups) throws {
        let decoding = decoding(plan)
        let (node, across) = (groups.node, groups.across)
        let local = localPlanes(groups)
        let counting: SignReduction = reduction.inputPlanes == 2 ? .ternaryAverage : .average
        let buffers = nodeWorkspace(chunkWords: plan.largestChunk, groups: groups, localPlanes: local,
                                    resultPlanes: plan.resultPlanes)
        for helper in groups.communicators { helper.timeline = communicator.timeline }
        let received = workspace.received[0], voted = workspace.voted[0], gathered = workspace.gathered[0]
        defer { absorbHelperTraffic() }
        for segment in plan.segments {
            let chunk = segment.chunkWords, block = groups.nodes * chunk
            try node.wait(for: node.startAlltoall(workspace.send, from: segment.firstWord, planes: plan.inputPlanes,
                                                  planeStride: plan.paddedWords, into: received, chunk: block, agreeing: nil))
            communicator.timeline.span("count", .optimizer) {
                VoteKernel.vote(counts: received.storage.baseAddress!, sources: groups.ranksPerNode * plan.inputPlanes,
                                planesPerSource: 1, ranks: groups.ranksPerNode, chunkWords: block, reduction: counting,
                                tieKey: 0, firstWord: 0, into: buffers.nodeCounts.storage.baseAddress!)
            }
            try across.wait(for: across.startAlltoall(buffers.nodeCounts, planes: local, planeStride: block,
                                                      into: buffers.counts, chunk: chunk, agreeing: nil))
            communicator.timeline.span("vote", .optimizer) {
                VoteKernel.vote(counts: buffers.counts.storage.baseAddress!, sources: groups.nodes, planesPerSource: local,
                                ranks: communicator.size, chunkWords: chunk, reduction: reduction,
                                tieKey: SignBits.key(seed: ~seed, stream: calls),
                                firstWord: segment.firstWord + groups.owner * chunk, into: voted.storage.baseAddress!)
            }
            try across.wait(for: across.startAllgather(voted, into: buffers.blockResults, count: plan.resultPlanes * chunk,
                                                       agreeing: nil))
            try node.wait(for: node.startAllgather(buffers.blockResults, into: gathered,
                                                   count: groups.nodes * plan.resultPlanes * chunk, agreeing: nil))
            unpack(segment, gathered: gathered.storage.baseAddress!, plan: plan, decoding: decoding, decode)
        }
    }
}

/// The buffers of the overlapped node-aware exchange that the flat one's ``BucketWorkspace``
/// lacks, one set per bucket, since all buckets may be in flight at once.
final class NodeBucketWorkspace {
    let plan: SegmentPlan
    /// Per bucket: the node's counts of its block.
    let nodeCounts: [MessageBuffer<UInt64>]
    /// Per bucket: every node's counts of this rank's chunk.
    let counts: [MessageBuffer<UInt64>]
    /// Per bucket: the node's block of results, gathered across nodes.
    let blockResults: [MessageBuffer<UInt64>]

    init(_ plan: SegmentPlan, nodes: Int, localPlanes: Int) {
        self.plan = plan
        nodeCounts = plan.segments.map { MessageBuffer(repeating: 0, count: localPlanes * nodes * $0.chunkWords) }
        counts = plan.segments.map { MessageBuffer(repeating: 0, count: nodes * localPlanes * $0.chunkWords) }
        blockResults = plan.segments.map { MessageBuffer(repeating: 0, count: nodes * plan.resultPlanes * $0.chunkWords) }
    }
}

/// One overlapped call's node-aware exchange. Each bucket goes through four messages, each
/// kind on its own communicator and started in bucket order (last first) on every rank: the
/// alltoall within the node, then (once it has arrived and been counted) the alltoall across
/// nodes, then (voted) the allgather across nodes, then the allgather within the node. Every
/// MPI call along the way (and every `ready`) moves each bucket as far as it can go.
final class NodeAwareBucketPipeline: BucketExchange {
    let allreduce: SignAllreduce
    let plan: SegmentPlan
    let workspace: BucketWorkspace
    let buffers: NodeBucketWorkspace
    let groups: NodeGroups
    let pack: SignAllreduce.Pack?
    let localPlanes: Int
    /// Per bucket, its message of each kind while in flight.
    var withinNode: [InFlight], acrossNodes: [InFlight], gatheredAcross: [InFlight], gatheredWithin: [InFlight]
    /// The next bucket to start (−1: all started), to count and send across, to vote and
    /// gather across, and to gather within the node.
    var nextToStart: Int, nextToCount: Int, nextToVote: Int, nextToSpread: Int
    var finite = true

    init(allreduce: SignAllreduce, plan: SegmentPlan, workspace: BucketWorkspace, groups: NodeGroups,
         pack: SignAllreduce.Pack?) {
        self.allreduce = allreduce
        self.plan = plan
        self.workspace = workspace
        self.groups = groups
        self.pack = pack
        localPlanes = allreduce.localPlanes(groups)
        buffers = allreduce.nodeBucketWorkspace(for: plan, groups: groups, localPlanes: localPlanes)
        func slots() -> [InFlight] { plan.segments.map { _ in InFlight() } }
        (withinNode, acrossNodes, gatheredAcross, gatheredWithin) = (slots(), slots(), slots(), slots())
        let last = plan.segments.count - 1
        (nextToStart, nextToCount, nextToVote, nextToSpread) = (last, last, last, last)
        for helper in groups.communicators { helper.timeline = allreduce.communicator.timeline }
    }

    func exchange(fill: ((Int) throws -> Void) throws -> Void) throws {
        try fill { firstFinal in
            try start(from: firstFinal)
            try advance(blocking: false)
        }
        try start(from: 0)
        try advance(blocking: true)
    }

    func startFirstMessage(_ index: Int) throws {
        let segment = plan.segments[index]
        try withinNode[index].start(
            groups.node.startAlltoall(workspace.send, from: segment.firstWord, planes: plan.inputPlanes,
                                      planeStride: plan.paddedWords, into: workspace.received[index],
                                      chunk: groups.nodes * segment.chunkWords, agreeing: nil))
    }

    func lastMessage(_ index: Int) -> (slot: InFlight, communicator: Communicator) {
        (gatheredWithin[index], groups.nodeGatherer)
    }

    /// Moves every started bucket on through its messages, in bucket order within each kind;
    /// `blocking` waits for each message in turn until every bucket's last one is started.
    private func advance(blocking: Bool) throws {
        let counting: SignReduction = plan.inputPlanes == 2 ? .ternaryAverage : .average
        while nextToCount > nextToStart, try arrived(withinNode[nextToCount], on: groups.node, blocking) {
            let index = nextToCount, block = groups.nodes * plan.segments[index].chunkWords
            allreduce.communicator.timeline.span("count", .optimizer) {
                VoteKernel.vote(counts: workspace.received[index].storage.baseAddress!,
                                sources: groups.ranksPerNode * plan.inputPlanes, planesPerSource: 1,
                                ranks: groups.ranksPerNode, chunkWords: block, reduction: counting, tieKey: 0, firstWord: 0,
                                into: buffers.nodeCounts[index].storage.baseAddress!)
            }
            try acrossNodes[index].start(
                groups.across.startAlltoall(buffers.nodeCounts[index], planes: localPlanes, planeStride: block,
                                            into: buffers.counts[index], chunk: plan.segments[index].chunkWords, agreeing: nil))
            nextToCount -= 1
            if blocking { try advanceLaterStages(blocking: false) }
        }
        try advanceLaterStages(blocking: blocking)
    }

    /// Whether `slot`'s message has arrived; `blocking` waits for it.
    private func arrived(_ slot: InFlight, on communicator: Communicator, _ blocking: Bool) throws -> Bool {
        if blocking { try slot.wait(on: communicator); return true }
        return try slot.hasCompleted()
    }

    /// The vote, the allgather across nodes and the allgather within, as far as they can go.
    private func advanceLaterStages(blocking: Bool) throws {
        while nextToVote > nextToCount, try arrived(acrossNodes[nextToVote], on: groups.across, blocking) {
            let index = nextToVote, segment = plan.segments[index]
            allreduce.communicator.timeline.span("vote", .optimizer) {
                VoteKernel.vote(counts: buffers.counts[index].storage.baseAddress!, sources: groups.nodes,
                                planesPerSource: localPlanes, ranks: allreduce.communicator.size, chunkWords: segment.chunkWords,
                                reduction: allreduce.reduction, tieKey: SignBits.key(seed: ~allreduce.seed, stream: allreduce.calls),
                                firstWord: segment.firstWord + groups.owner * segment.chunkWords,
                                into: workspace.voted[index].storage.baseAddress!)
            }
            try gatheredAcross[index].start(
                groups.acrossGatherer.startAllgather(workspace.voted[index], into: buffers.blockResults[index],
                                                     count: plan.resultPlanes * segment.chunkWords, agreeing: nil))
            nextToVote -= 1
        }
        while nextToSpread > nextToVote, try arrived(gatheredAcross[nextToSpread], on: groups.acrossGatherer, blocking) {
            let index = nextToSpread
            try gatheredWithin[index].start(
                groups.nodeGatherer.startAllgather(buffers.blockResults[index], into: workspace.gathered[index],
                                                   count: groups.nodes * plan.resultPlanes * plan.segments[index].chunkWords,
                                                   agreeing: nil))
            nextToSpread -= 1
        }
    }
}
