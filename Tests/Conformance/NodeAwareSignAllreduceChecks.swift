import Collectives
import Training

/// Checks the node-aware sign allreduce against the flat one, which SignAllreduceChecks holds
/// to MPI's own integer allreduce: the same result bit for bit (tie-breaks and the zero
/// policy's coins included) for every grouping of the ranks into equal nodes, every
/// reduction and edge lengths, and the bytes it says it sends.
struct NodeAwareSignAllreduceChecks {
    let harness: Harness
    let signs: SignAllreduceChecks
    var world: Communicator { harness.world }

    func runAll() {
        let n = world.size
        let reductions: [SignReduction] = [.majorityVote(.randomTieBreak), .majorityVote(.zero), .average, .ternaryAverage]
        let groupings = (1...n).filter { n % $0 == 0 }.map { ExchangeShape.nodeAware(ranksPerNode: $0) } + [.nodeAware()]
        for reduction in reductions {
            check(groupings, reduction)
        }
        checkBadGrouping()
    }

    /// One sequence of calls (edge lengths, each twice, so that a later call reuses the
    /// groups and buffers with new coins; segments of 5 words a rank, so the longer lengths
    /// take several, the last one partial) on a flat exchange, then on a node-aware one of
    /// each grouping: every result the same, bit for bit.
    func check(_ groupings: [ExchangeShape], _ reduction: SignReduction) {
        let n = world.size
        let segmentLength = 64 * n * 5
        let lengths = [0, 1, 65, 64 * n * 3 + 17, 64 * n * 5 * 7 + 100, 100_003].flatMap { [$0, $0] }
        harness.run("node-aware sign allreduce \(reduction): the flat reference") {
            let flat = SignAllreduce(communicator: try world.duplicate(), reduction: reduction, seed: 42,
                                     segmentLength: segmentLength)
            let expected = try lengths.map { try flat.allreduce(signsOf: signs.input(rank: world.rank, length: $0, zeros: true)) }
            for shape in groupings {
                let comm = try world.duplicate()
                let nodeAware = SignAllreduce(communicator: comm, reduction: reduction, seed: 42, segmentLength: segmentLength,
                                              shape: shape)
                for (call, length) in lengths.enumerated() {
                    let name = "node-aware sign allreduce \(shape) \(reduction) call \(call)"
                    comm.resetTraffic()
                    let result = try nodeAware.allreduce(signsOf: signs.input(rank: world.rank, length: length, zeros: true))
                    let differing = zip(result, expected[call]).filter { $0.0.bitPattern != $0.1.bitPattern }.count
                    harness.expect(differing == 0 && result.count == length, "\(name) equals the flat exchange", size: length,
                                   "\(differing) coordinates differ")
                    harness.expect(comm.traffic.bytesSent == nodeAware.bytesPerRank(count: length)
                                   && comm.traffic.bytesReceived == comm.traffic.bytesSent,
                                   "\(name) bytes counted", size: length,
                                   "\(comm.traffic) vs planned \(nodeAware.bytesPerRank(count: length))")
                }
            }
        }
    }

    /// A grouping that does not divide the ranks fails on every rank, before anything is sent.
    func checkBadGrouping() {
        let n = world.size
        guard n > 1, let ranksPerNode = (2...n + 1).first(where: { n % $0 != 0 }) else { return }
        let collective = SignAllreduce(communicator: world, shape: .nodeAware(ranksPerNode: ranksPerNode))
        harness.expectThrows("node-aware sign allreduce, nodes that do not divide the ranks",
                             .invalidArgument(call: "SignAllreduce.allreduce",
                                              reason: "ranksPerNode \(ranksPerNode) does not divide the \(n) ranks into nodes")) {
            _ = try collective.allreduce(signsOf: [Float](repeating: 1, count: 100))
        }
    }
}
