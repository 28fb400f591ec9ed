/// Training windows of a token stream for a language model: each step, each rank draws
/// `batchSize` windows of `context` tokens at random starts, from a generator seeded by the
/// shared seed, the epoch, the step and the rank — so ranks draw different windows, and a
/// resumed run draws the ones the uninterrupted run would have. An epoch is as many steps as
/// cover the tokens once across ranks.
public final class TextWindows: TrainingData {
    /// The token stream.
    public let tokens: [Int32]
    /// Tokens per window.
    public let context: Int
    /// Windows per rank per step.
    public let batchSize: Int
    /// This rank and the number of ranks.
    public let rank: Int, ranks: Int
    /// The shared seed.
    public let seed: UInt64
    private let batch: TokenBatch

    /// Windows of `context` tokens from `tokens` (which must hold more than `context`).
    public init(tokens: [Int32], context: Int, batchSize: Int, rank: Int, ranks: Int, seed: UInt64) throws {
        guard context > 0, batchSize > 0, tokens.count > context else {
            throw TrainingError.invalidConfiguration("the training text has \(tokens.count) tokens, too few for windows of \(context) (and the batch must be at least 1)")
        }
        self.tokens = tokens
        self.context = context
        self.batchSize = batchSize
        self.rank = rank
        self.ranks = ranks
        self.seed = seed
        batch = TokenBatch(windows: batchSize, positions: context)
    }

    public var stepsPerEpoch: Int { max(1, tokens.count / (ranks * batchSize * context)) }

    public func batch(epoch: Int, step: Int) -> TokenBatch {
        var random = SplitMix64(seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(step) &* 0xBF58_476D_1CE4_E5B9)
                                     ^ (UInt64(rank) &* 0x94D0_49BB_1331_11EB))
        let starts = UInt64(tokens.count - context)
        for window in 0..<batchSize {
            batch.fill(window: window, from: tokens, at: Int(random.next() % starts))
        }
        return batch
    }
}

/// Validation windows: the token stream cut into consecutive windows of `context` tokens,
/// rank r scoring the r-th of the ranks' contiguous blocks of windows, `batchSize` at a time.
public struct TextEvaluationWindows: EvaluationData {
    /// The token stream.
    public let tokens: [Int32]
    /// Tokens per window.
    public let context: Int
    /// Windows per batch: at most what the model holds.
    public let batchSize: Int

    /// Windows of `tokens`.
    public init(tokens: [Int32], context: Int, batchSize: Int) {
        self.tokens = tokens
        self.context = context
        self.batchSize = batchSize
    }

    /// Whole windows in the stream (each needs one token more, its last target).
    public var windows: Int { max(0, (tokens.count - 1) / context) }

    public func forEachBatch(rank: Int, ranks: Int, _ body: (TokenBatch) throws -> Void) rethrows {
        let first = windows * rank / ranks, end = windows * (rank + 1) / ranks
        for batchStart in stride(from: first, to: end, by: batchSize) {
            let batch = TokenBatch(windows: min(batchSize, end - batchStart), positions: context)
            for window in 0..<batch.windows { batch.fill(window: window, from: tokens, at: (batchStart + window) * context) }
            try body(batch)
        }
    }
}

extension TokenBatch {
    /// Window `window` becomes `tokens[start...]`, its targets the tokens one further on.
    func fill(window: Int, from tokens: [Int32], at start: Int) {
        for t in 0..<positions {
            self.tokens[window * positions + t] = tokens[start + t]
            targets[window * positions + t] = tokens[start + t + 1]
        }
    }
}
