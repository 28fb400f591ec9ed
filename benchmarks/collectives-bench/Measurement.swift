import BenchmarkSupport
import Collectives

/// One benchmark row: an operation at one size, timed on every rank.
struct Row {
    let op: String
    let ranks: Int
    let count: Int
    let timeMin: Double
    let timeAvg: Double
    let timeMax: Double
    let bytesSentPerRank: Int
    /// Bytes the busiest host sent on its network links per call, where counters exist.
    let hostBytesSent: Int?
    /// The link rate in Gbit/s the user stated, if any.
    let linkGbits: Double?
    var speedupVsFP32: Double?

    /// The time over the link bound: the busiest host's bytes at the link rate.
    var timeOverLinkBound: Double? {
        guard let hostBytesSent, let linkGbits, hostBytesSent > 0 else { return nil }
        return timeAvg / (Double(hostBytesSent) * 8 / (linkGbits * 1e9))
    }

    /// Bytes of the fp32 input, the nccl-tests "size" that algbw divides.
    var payloadBytes: Int { count * 4 }
    var algorithmBandwidth: Double { timeAvg > 0 ? Double(payloadBytes) / timeAvg / 1e9 : 0 }
    var busBandwidth: Double { algorithmBandwidth * 2 * Double(ranks - 1) / Double(ranks) }

    var json: String {
        let speedup = speedupVsFP32.map { String(rounded($0, decimals: 3)) } ?? "null"
        return "{\"op\":\"\(op)\",\"ranks\":\(ranks),\"count\":\(count),\"bytes\":\(payloadBytes)"
            + ",\"time_us_min\":\(rounded(timeMin * 1e6, decimals: 3)),\"time_us_avg\":\(rounded(timeAvg * 1e6, decimals: 3)),\"time_us_max\":\(rounded(timeMax * 1e6, decimals: 3))"
            + ",\"algbw_GBps\":\(rounded(algorithmBandwidth, decimals: 3)),\"busbw_GBps\":\(rounded(busBandwidth, decimals: 3))"
            + ",\"bytes_sent_per_rank\":\(bytesSentPerRank),\"host_bytes_sent\":\(hostBytesSent.map(String.init) ?? "null")"
            + ",\"time_over_link_bound\":\(timeOverLinkBound.map { String(rounded($0, decimals: 3)) } ?? "null"),\"speedup_vs_fp32\":\(speedup)}"
    }
}

/// Min, mean and max over ranks of this rank's `value`.
func acrossRanks(_ value: Double, _ world: Communicator) throws -> (min: Double, avg: Double, max: Double) {
    let low = try world.allreduce([value], operation: .min)[0]
    let high = try world.allreduce([value], operation: .max)[0]
    let sum = try world.allreduce([value], operation: .sum)[0]
    return (low, sum / Double(world.size), high)
}
