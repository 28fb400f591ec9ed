// collectives-bench: OSU/nccl-tests-style timings of the compressed collectives against fp32
// MPI_Allreduce measured in the same run. Run under mpirun:
//   ci/mpirun -np 4 .build/release/collectives-bench --min-count 1024 --max-count 16777216
import ArgumentParser
import BenchmarkSupport
import Collectives

struct CollectivesBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collectives-bench",
        abstract: "Times the sign allreduce and compressed allgather against fp32 MPI_Allreduce.",
        discussion: """
            Sizes double from --min-count to --max-count floats per rank. At each size the operations \
            run in interleaved rounds after --warmup discarded rounds; each rank takes the median of its \
            per-call times, and a row reports min/avg/max of those over ranks, algbw = 4·count/t, \
            busbw = algbw·2(N−1)/N (nccl-tests' allreduce convention), the bytes each rank sent as \
            counted by the communicator, the bytes the busiest host sent on its network links during \
            the call (Linux's interface counters, median over rounds; "-" without them) and the speedup \
            over fp32 MPI_Allreduce at that size.
            """)

    @Option(help: "Smallest count of floats per rank.")
    var minCount = 1 << 10

    @Option(help: "Largest count of floats per rank.")
    var maxCount = 1 << 24

    @Option(help: "Timed rounds per size (default: 50 for small sizes, falling to 5 at 16 Mi floats).")
    var iterations: Int?

    @Option(help: "Discarded warm-up rounds per size.")
    var warmup = 2

    @Option(parsing: .upToNextOption,
            help: "Operations to time: \(Operation.allCases.map(\.rawValue).joined(separator: ", ")). fp32-allreduce always runs.")
    var ops: [String] = [Operation.fp32, .majority, .average, .ternaryAverage, .naive, .ternaryAllgather].map(\.rawValue)

    @Option(help: "Coordinates per pipelined segment of the sign allreduce (SignAllreduce's segmentLength).")
    var segmentLength = 1 << 22

    @Option(name: .customLong("link-rate"),
            help: "Each host's link rate in Gbit/s: adds each row's time over its link bound, the busiest host's bytes sent ÷ this rate.")
    var linkRate: Double?

    @Flag(help: "Print one JSON object per (operation, size) row instead of a table.")
    var json = false

    @Flag(help: "Run the pack/unpack kernel micro-benchmark on one rank instead.")
    var kernels = false

    func validate() throws {
        guard minCount >= 0, maxCount >= minCount else {
            throw ValidationError("--min-count (\(minCount)) must be ≥ 0 and ≤ --max-count (\(maxCount))")
        }
        guard segmentLength >= 64 else { throw ValidationError("--segment-length must be at least 64") }
        if let linkRate, !(linkRate > 0) { throw ValidationError("--link-rate must be a positive number of Gbit/s") }
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be ≥ 0") }
        for op in ops where Operation(rawValue: op) == nil {
            throw ValidationError("unknown operation '\(op)'; choose from \(Operation.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        try MPI.start()
        let world = try MPI.world()
        if kernels {
            if world.rank == 0 { try KernelBenchmark(repetitions: iterations ?? 21).run(counts: [1 << 18, maxCount]) }
            return
        }
        let operations = [Operation.fp32] + ops.compactMap(Operation.init(rawValue:)).filter { $0 != .fp32 }
        if world.rank == 0 && !json {
            print("# collectives-bench: \(world.size) ranks; times in µs (min/avg/max over ranks of per-rank medians)")
            print("op".padded(24) + "count".padded(10) + "min".padded(10) + "avg".padded(10) + "max".padded(10)
                  + "algbw".padded(8) + "busbw".padded(8) + "sent/rank".padded(12) + "host tx".padded(12)
                  + (linkRate == nil ? "" : "vs link".padded(9)) + "vs fp32")
        }
        var count = max(minCount, 1)
        if minCount == 0 { try measure(count: 0, operations, world) }
        while count <= maxCount {
            try measure(count: count, operations, world)
            count *= 2
        }
    }

    private func measure(count: Int, _ operations: [Operation], _ world: Communicator) throws {
        let rounds = iterations ?? max(5, min(50, (1 << 26) / max(count, 1) / 4))
        let prepared = try operations.map { try PreparedOperation($0, count: count, segmentLength: segmentLength, world: world) }
        var times = [[Double]](repeating: [], count: prepared.count)
        var hostSent = [[Double]](repeating: [], count: prepared.count)
        for round in 0..<(warmup + rounds) {
            for (index, operation) in prepared.enumerated() {
                if round == warmup { operation.communicator.resetTraffic() }
                try world.barrier()
                let sentBefore = hostBytesSent()
                let start = try MPI.wallTime()
                try operation.run()
                let elapsed = try MPI.wallTime() - start
                // Every rank of a host is done with the call only after the next barrier.
                try world.barrier()
                if round >= warmup {
                    times[index].append(elapsed)
                    if let sentBefore, let sentAfter = hostBytesSent() { hostSent[index].append(Double(sentAfter - sentBefore)) }
                }
            }
        }
        var rows: [Row] = []
        for (index, operation) in prepared.enumerated() {
            let spread = try acrossRanks(median(times[index]), world)
            // The busiest host's median; -1 where a rank has no counters.
            let busiestHost = try world.allreduce([hostSent[index].isEmpty ? -1 : median(hostSent[index])], operation: .max)[0]
            rows.append(Row(op: operation.operation.rawValue, ranks: world.size, count: count,
                            timeMin: spread.min, timeAvg: spread.avg, timeMax: spread.max,
                            bytesSentPerRank: operation.communicator.traffic.bytesSent / rounds,
                            hostBytesSent: busiestHost >= 0 ? Int(busiestHost) : nil, linkGbits: linkRate))
        }
        let baseline = rows[0].timeAvg
        for index in rows.indices where rows[index].timeAvg > 0 { rows[index].speedupVsFP32 = baseline / rows[index].timeAvg }
        guard world.rank == 0 else { return }
        for row in rows {
            if json {
                print(row.json)
            } else {
                print(row.op.padded(24) + "\(row.count)".padded(10) + rounded(row.timeMin * 1e6, decimals: 3).padded(10)
                      + rounded(row.timeAvg * 1e6, decimals: 3).padded(10) + rounded(row.timeMax * 1e6, decimals: 3).padded(10)
                      + rounded(row.algorithmBandwidth, decimals: 3).padded(8) + rounded(row.busBandwidth, decimals: 3).padded(8)
                      + "\(row.bytesSentPerRank)".padded(12) + (row.hostBytesSent.map { "\($0)" } ?? "-").padded(12)
                      + (linkRate == nil ? "" : (row.timeOverLinkBound.map { rounded($0, decimals: 2) + "x" } ?? "-").padded(9))
                      + (row.speedupVsFP32.map { rounded($0, decimals: 3) + "x" } ?? "-"))
            }
        }
    }
}

CollectivesBench.main()
