import Collectives

/// The operations the benchmark times, each on its own duplicate of the world communicator
/// so its byte counters are its own.
enum Operation: String, CaseIterable {
    /// `MPI_Allreduce` of the fp32 vector: the baseline.
    case fp32 = "fp32-allreduce"
    /// The sign allreduce, majority vote, default policies, float in and float out.
    case majority = "sign-majority"
    /// The same with the cross-rank argument check off: its difference is the check's cost.
    case majorityUnchecked = "sign-majority-unchecked"
    /// The sign allreduce, majority vote, node-aware: the ranks of a node count their votes
    /// together before anything leaves the node (`ExchangeShape.nodeAware()`, nodes as MPI
    /// sees them).
    case majorityNodeAware = "sign-majority-node-aware"
    /// The sign allreduce, average.
    case average = "sign-average"
    /// The sign allreduce, ternary average (two bits out, ⌈log2(2N+1)⌉ back: TernGrad's sum).
    case ternaryAverage = "sign-ternary-average"
    /// Pack, allgather every rank's bits, vote locally, unpack: the public PyTorch code's pattern.
    case naive = "naive-allgather-vote"
    /// The compressed allgather of 2-bit codes (TernGrad's payload), communication only.
    case ternaryAllgather = "allgather-2bit"
}

/// The buffers and collectives of one operation at one size.
final class PreparedOperation {
    let operation: Operation
    let communicator: Communicator
    private let input: [Float]
    private var output: [Float]
    private let signs: SignAllreduce?
    private let codes: PackedCodes?

    init(_ operation: Operation, count: Int, segmentLength: Int, world: Communicator) throws {
        self.operation = operation
        communicator = try world.duplicate()
        var state = UInt64(world.rank + 1) &* 0x9E37_79B9_7F4A_7C15
        input = (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(1 << 31)
        }
        output = [Float](repeating: 0, count: count)
        switch operation {
        case .majority, .majorityUnchecked:
            signs = SignAllreduce(communicator: communicator, reduction: .majorityVote, segmentLength: segmentLength)
            communicator.verifiesArguments = operation == .majority
        case .majorityNodeAware:
            signs = SignAllreduce(communicator: communicator, reduction: .majorityVote, segmentLength: segmentLength,
                                  shape: .nodeAware())
        case .average:
            signs = SignAllreduce(communicator: communicator, reduction: .average, segmentLength: segmentLength)
        case .ternaryAverage:
            signs = SignAllreduce(communicator: communicator, reduction: .ternaryAverage, segmentLength: segmentLength)
        default:
            signs = nil
        }
        codes = operation == .ternaryAllgather ? PackedCodes(count: count, bitsPerCode: 2) : nil
    }

    /// One call.
    func run() throws {
        switch operation {
        case .fp32:
            try input.withUnsafeBufferPointer { send in
                try output.withUnsafeMutableBufferPointer { try communicator.allreduce(send, into: $0, operation: .sum) }
            }
        case .majority, .majorityUnchecked, .majorityNodeAware, .average, .ternaryAverage:
            try input.withUnsafeBufferPointer { send in
                try output.withUnsafeMutableBufferPointer { try signs!.allreduce(signsOf: send, into: $0) }
            }
        case .naive:
            let mine = input.withUnsafeBufferPointer { PackedSigns(FloatSource($0)) }
            let everyone = try communicator.allgather(mine)
            let voted = PackedSigns.majority(of: everyone)
            output.withUnsafeMutableBufferPointer { voted.unpack(into: $0) }
        case .ternaryAllgather:
            _ = try communicator.allgather(codes!)
        }
    }
}
