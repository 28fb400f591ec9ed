import Collectives
import Training

/// Checks TernGrad as the paper defines it across ranks: the shared scale, the integer sums,
/// unbiasedness, clipping, both exchange forms, reproducible coins and bad configurations.
struct TernGradChecks {
    let harness: Harness
    var world: Communicator { harness.world }

    func runAll() {
        for exchange in TernGrad.Exchange.allCases {
            checkUnbiased(exchange)
            checkIntegerSums(exchange)
        }
        checkFormsAgreeAndTraffic()
        checkCoinsAreReproducible()
        checkBadConfiguration()
    }

    /// Rank `rank`'s gradient of `count`: a different spread on every rank (so the shared scale
    /// is another rank's for most), with one outlier for clipping to cut.
    func gradient(rank: Int, count: Int, outlier: Bool) -> [Float] {
        var random = SplitMix64(seed: UInt64(rank * 31 + count))
        var values = (0..<count).map { _ in random.uniform(-1, 1) * Float(rank + 1) }
        if outlier { values[count / 2] = 40 * Float(rank + 1) }
        return values
    }

    /// Exchanges `values` once; returns the result and the bytes this rank sent.
    func exchanged(_ values: [Float], compressor: TernGrad, step: Int) throws -> (values: [Float], bytes: Int) {
        let communicator = try world.duplicate()
        var gradient = values
        try gradient.withUnsafeMutableBufferPointer { try compressor.exchange($0, step: step, communicator: communicator) }
        return (gradient, communicator.traffic.bytesSent)
    }

    /// Without clipping, the mean of many exchanges approaches the ranks' mean gradient,
    /// within five standard errors of the estimate (s/2 per rank and trial, at most).
    func checkUnbiased(_ exchange: TernGrad.Exchange) {
        let call = "terngrad \(exchange.rawValue) is unbiased"
        harness.run(call) {
            let count = 64
            let compressor = try TernGrad(tensors: [0..<count], seed: 11, rank: world.rank, clipSigmas: nil, exchange: exchange)
            let mine = gradient(rank: world.rank, count: count, outlier: false)
            let truth = try world.allreduce(mine, operation: .sum).map { $0 / Float(world.size) }
            let scale = try world.allreduce([mine.map(abs).max() ?? 0], operation: .max)[0]
            let trials = 2000
            var total = [Double](repeating: 0, count: count)
            for step in 0..<trials {
                for (index, value) in try exchanged(mine, compressor: compressor, step: step).values.enumerated() {
                    total[index] += Double(value) / Double(trials)
                }
            }
            let error = zip(total, truth).map { abs($0 - Double($1)) }.max() ?? 0
            let bound = 5 * Double(scale) / 2 / Double(world.size * trials).squareRoot()
            harness.expect(error < bound, call, "largest error of the mean \(error), five standard errors \(bound)")
        }
    }

    /// Every coordinate comes back as s·k/N with k an integer in [−N, N] and s the largest
    /// clipped magnitude over the ranks, per tensor; clipping at 2.5σ cuts the outlier.
    func checkIntegerSums(_ exchange: TernGrad.Exchange) {
        let call = "terngrad \(exchange.rawValue) sends s·k/N"
        harness.run(call) {
            let count = 10_007
            let tensors = [0..<3, 3..<4, 4..<5000, 5000..<count]
            let compressor = try TernGrad(tensors: tensors, seed: 5, rank: world.rank, exchange: exchange)
            let mine = gradient(rank: world.rank, count: count, outlier: true)
            // The paper's clipping, computed here in float64: ±2.5σ of each tensor on this rank.
            let clippedLargest: [Float] = tensors.map { range in
                let values = mine[range].map(Double.init)
                let largest = Float(values.map(abs).max() ?? 0)
                guard values.count > 1 else { return largest }
                let mean = values.reduce(0, +) / Double(values.count)
                let sigma = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
                return min(largest, Float(2.5 * sigma))
            }
            let scales = try world.allreduce(clippedLargest, operation: .max)
            let result = try exchanged(mine, compressor: compressor, step: 3).values
            var offLattice = 0, nonzero = 0
            for (tensor, range) in tensors.enumerated() {
                for index in range {
                    let k = result[index] * Float(world.size) / scales[tensor]
                    if abs(k - k.rounded()) > 1e-3 || abs(k.rounded()) > Float(world.size) { offLattice += 1 }
                    if k.rounded() != 0 { nonzero += 1 }
                }
            }
            harness.expect(offLattice == 0 && nonzero > count / 4, call,
                           "\(offLattice) coordinates are not s·k/N with integer |k| ≤ N; \(nonzero) are non-zero")
            let outlier = result[count / 2]
            harness.expect(abs(outlier) <= scales[3] * 1.0001 && scales[3] < 40, "\(call) with the outlier clipped",
                           "outlier came back \(outlier), shared scale \(scales[3])")
        }
    }

    /// The reduce-scatter and allgather forms give the same bits; each rank sends what the
    /// plan says, and from three ranks on the reduce-scatter sends less.
    func checkFormsAgreeAndTraffic() {
        let call = "terngrad reduce-scatter and allgather agree"
        harness.run(call) {
            let count = 100_003
            let tensors = [0..<60_000, 60_000..<count]
            let mine = gradient(rank: world.rank, count: count, outlier: true)
            let summed = try exchanged(mine, compressor: try TernGrad(tensors: tensors, seed: 9, rank: world.rank), step: 7)
            let gathered = try exchanged(mine, compressor: try TernGrad(tensors: tensors, seed: 9, rank: world.rank,
                                                                        exchange: .allgather), step: 7)
            let differing = zip(summed.values, gathered.values).filter { $0 != $1 }.count
            harness.expect(differing == 0, call, "\(differing) coordinates differ")
            let ranks = world.size
            let scaleBytes = 2 * (ranks - 1) * 4 * tensors.count / ranks
            let planned = SignAllreduce(communicator: world, reduction: .ternaryAverage).bytesPerRank(count: count) + scaleBytes
            harness.expect(summed.bytes == planned, "\(call): reduce-scatter bytes as planned", "sent \(summed.bytes), planned \(planned)")
            harness.expect(ranks < 3 || summed.bytes < gathered.bytes, "\(call): reduce-scatter sends less from 3 ranks",
                           "reduce-scatter \(summed.bytes), allgather \(gathered.bytes)")
        }
    }

    /// The coins depend on the seed, rank, step and coordinate only: the same step again gives
    /// the same result (so a resumed run matches), another step another.
    func checkCoinsAreReproducible() {
        harness.run("terngrad coins are keyed by the step") {
            let count = 4096
            let mine = gradient(rank: world.rank, count: count, outlier: false)
            let compressor = try TernGrad(tensors: [0..<count], seed: 2, rank: world.rank)
            let first = try exchanged(mine, compressor: compressor, step: 12).values
            _ = try exchanged(mine, compressor: compressor, step: 13)
            let again = try exchanged(mine, compressor: try TernGrad(tensors: [0..<count], seed: 2, rank: world.rank), step: 12).values
            let other = try exchanged(mine, compressor: compressor, step: 14).values
            harness.expect(first == again && first != other, "terngrad coins are keyed by the step")
        }
    }

    /// Tensors that do not tile the gradient, a bad clip, or a gradient of another length throw.
    func checkBadConfiguration() {
        for (name, make) in [("a gap between tensors", { try TernGrad(tensors: [0..<4, 5..<9], seed: 0, rank: 0) }),
                             ("tensors out of order", { try TernGrad(tensors: [4..<8, 0..<4], seed: 0, rank: 0) }),
                             ("clipping at 0 σ", { try TernGrad(tensors: [0..<4], seed: 0, rank: 0, clipSigmas: 0) })] {
            do {
                _ = try make()
                harness.expect(false, "terngrad refuses \(name)", "did not throw")
            } catch {
                harness.expect("\(error)".contains("TernGrad"), "terngrad refuses \(name)", "threw \(error)")
            }
        }
        harness.run("terngrad refuses a gradient of another length") {
            let compressor = try TernGrad(tensors: [0..<8], seed: 0, rank: world.rank)
            do {
                _ = try exchanged([Float](repeating: 1, count: 9), compressor: compressor, step: 0)
                harness.expect(false, "terngrad refuses a gradient of another length", "did not throw")
            } catch {
                harness.expect("\(error)".contains("8 coordinates"), "terngrad refuses a gradient of another length", "threw \(error)")
            }
        }
    }
}
