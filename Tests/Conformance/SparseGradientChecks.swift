import Collectives
import Training

/// Checks DGC and gradient dropping across ranks against steps computed here by hand: every
/// rank recomputes every rank's compression from the same gradients, so it knows what each
/// sent and what the mean must be.
struct SparseGradientChecks {
    let harness: Harness
    var world: Communicator { harness.world }

    func runAll() {
        checkDGCMatchesHandComputedSteps(clipNorm: nil)
        checkDGCMatchesHandComputedSteps(clipNorm: 0.8)
        checkGradDropMatchesHandComputedSteps()
        checkDGCCountsWarmUpBytesApart()
        checkBadConfiguration()
    }

    /// Rank `rank`'s gradient at `step`: spread differently on every rank and step, some exact zeros.
    func gradient(rank: Int, step: Int, count: Int) -> [Float] {
        var random = SplitMix64(seed: UInt64(1000 * step + rank + 1))
        return (0..<count).map { index in index % 13 == 5 ? 0 : random.uniform(-1, 1) * Float(1 + (index + rank) % 4) }
    }

    /// The coordinates of `v` a rank sends when keeping `fraction` (exact for short vectors):
    /// |v| at least the ⌈fraction·n⌉-th largest, and not zero.
    func selected(_ v: [Float], fraction: Float) -> [Int] {
        let sorted = v.map(abs).sorted(by: >)
        let threshold = sorted[min(sorted.count - 1, max(0, Int((fraction * Float(v.count)).rounded(.up)) - 1))]
        return v.indices.filter { v[$0] != 0 && abs(v[$0]) >= threshold }
    }

    /// The mean over ranks of each rank's `sent` coordinates of its `values`, added in rank order.
    func mean(of sent: [[Int]], values: [[Float]], count: Int) -> [Float] {
        var total = [Float](repeating: 0, count: count)
        for (rank, indices) in sent.enumerated() {
            for index in indices { total[index] += 1 / Float(world.size) * values[rank][index] }
        }
        return total
    }

    /// Six steps of DGC (the warm-up's four stages, then steady state) against the algorithm
    /// spelled out: clipping, u ← μu + g, v ← v + u, top-k of v, masking u and v, x ← x − η(G + λx).
    func checkDGCMatchesHandComputedSteps(clipNorm: Float?) {
        let call = "dgc matches hand-computed steps" + (clipNorm.map { ", clipped to \($0)" } ?? "")
        harness.run(call) {
            let count = 300, ranks = world.size, mu: Float = 0.9, decay: Float = 0.01, eta: Float = 0.05
            let dgc = try DGC(count: count, communicator: try world.duplicate(), ratio: 0.01, warmUpSteps: 4, momentum: mu,
                              weightDecay: decay, clipNorm: clipNorm)
            var x = (0..<count).map { Float($0 % 7) / 7 - 0.4 }
            var expectedX = x
            var u = [[Float]](repeating: [Float](repeating: 0, count: count), count: ranks), v = u
            var clipped = 0
            let fractions: [Float] = [0.25, 0.0625, 0.015625, 0.01, 0.01, 0.01]
            for (step, fraction) in fractions.enumerated() {
                var sent: [[Int]] = []
                for rank in 0..<ranks {
                    var g = gradient(rank: rank, step: step, count: count)
                    if let clipNorm {
                        let norm = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                        let bound = Double(clipNorm) / Double(ranks).squareRoot()
                        if norm > bound {
                            g = g.map { $0 * Float(bound / norm) }
                            if rank == world.rank { clipped += 1 }
                        }
                    }
                    for i in 0..<count {
                        u[rank][i] = mu * u[rank][i] + g[i]
                        v[rank][i] += u[rank][i]
                    }
                    sent.append(selected(v[rank], fraction: fraction))
                }
                let G = mean(of: sent, values: v, count: count)
                for (rank, indices) in sent.enumerated() {
                    for i in indices { (u[rank][i], v[rank][i]) = (0, 0) }
                }
                expectedX = zip(expectedX, G).map { x, G in x - (eta * decay * x + eta * G) }
                var mine = gradient(rank: world.rank, step: step, count: count)
                harness.expect(try dgc.step(parameters: &x, gradients: &mine, learningRate: eta), "\(call): step \(step) applied")
            }
            let error = zip(x, expectedX).map { abs($0 - $1) }.max() ?? 0
            harness.expect(error < 1e-5, call, "largest parameter error \(error)")
            let maskedAsExpected = zip(dgc.accumulated.values, v[world.rank]).allSatisfy { ($0 == 0) == ($1 == 0) }
                && zip(dgc.corrected.values, u[world.rank]).allSatisfy { ($0 == 0) == ($1 == 0) }
            harness.expect(maskedAsExpected, "\(call): sent coordinates cleared from u and v")
            harness.expect(dgc.clippedSteps == clipped && (clipNorm == nil || clipped > 0), "\(call): clipped steps counted",
                           "counted \(dgc.clippedSteps), expected \(clipped)")
        }
    }

    /// Three exchanges of gradient dropping: r ← r + g, top-k of r sent and cleared, the mean back.
    func checkGradDropMatchesHandComputedSteps() {
        let call = "graddrop matches hand-computed exchanges"
        harness.run(call) {
            let count = 300, ranks = world.size
            let drop = try GradDrop(count: count, ratio: 0.02)
            let communicator = try world.duplicate()
            var residual = [[Float]](repeating: [Float](repeating: 0, count: count), count: ranks)
            var error: Float = 0
            for step in 0..<3 {
                var sent: [[Int]] = []
                for rank in 0..<ranks {
                    let g = gradient(rank: rank, step: step, count: count)
                    for i in 0..<count { residual[rank][i] += g[i] }
                    sent.append(selected(residual[rank], fraction: 0.02))
                }
                let expected = mean(of: sent, values: residual, count: count)
                for (rank, indices) in sent.enumerated() {
                    for i in indices { residual[rank][i] = 0 }
                }
                var mine = gradient(rank: world.rank, step: step, count: count)
                try mine.withUnsafeMutableBufferPointer { try drop.exchange($0, step: step, communicator: communicator) }
                error = max(error, zip(mine, expected).map { abs($0 - $1) }.max() ?? 0)
            }
            harness.expect(error < 1e-6, call, "largest error \(error)")
            harness.expect(drop.residual.values == residual[world.rank], "\(call): the residual keeps what was not sent")
        }
    }

    /// DGC's bytes in the warm-up and after it add up to the communicator's, the warm-up's
    /// steps sending more per step.
    func checkDGCCountsWarmUpBytesApart() {
        let call = "dgc counts warm-up bytes apart"
        harness.run(call) {
            let count = 4000
            let communicator = try world.duplicate()
            let dgc = try DGC(count: count, communicator: communicator, ratio: 0.001, warmUpSteps: 4)
            var x = [Float](repeating: 0, count: count)
            for step in 0..<8 {
                var g = gradient(rank: world.rank, step: step, count: count)
                _ = try dgc.step(parameters: &x, gradients: &g, learningRate: 0.01)
            }
            harness.expect(dgc.warmUpBytesSent + dgc.steadyBytesSent == communicator.traffic.bytesSent, "\(call): they add up",
                           "\(dgc.warmUpBytesSent) + \(dgc.steadyBytesSent) ≠ \(communicator.traffic.bytesSent)")
            harness.expect(world.size == 1 || dgc.warmUpBytesSent > 4 * dgc.steadyBytesSent, "\(call): the warm-up sends more",
                           "warm-up \(dgc.warmUpBytesSent), steady \(dgc.steadyBytesSent) over 4 steps each")
        }
    }

    /// Out-of-range settings throw.
    func checkBadConfiguration() {
        let settings: [(String, (Communicator) throws -> Any)] = [
            ("momentum 1", { try DGC(count: 4, communicator: $0, warmUpSteps: 0, momentum: 1) }),
            ("a negative weight decay", { try DGC(count: 4, communicator: $0, warmUpSteps: 0, weightDecay: -1) }),
            ("a clipping norm of 0", { try DGC(count: 4, communicator: $0, warmUpSteps: 0, clipNorm: 0) }),
            ("a negative warm-up", { try DGC(count: 4, communicator: $0, warmUpSteps: -1) }),
            ("a ratio of 0", { try DGC(count: 4, communicator: $0, ratio: 0, warmUpSteps: 0) }),
            ("graddrop's ratio above 1", { _ in try GradDrop(count: 4, ratio: 1.5) }),
        ]
        for (name, make) in settings {
            do {
                _ = try make(world)
                harness.expect(false, "sparse gradients refuse \(name)", "did not throw")
            } catch {
                harness.expect(error is TrainingError, "sparse gradients refuse \(name)", "threw \(error)")
            }
        }
    }
}
