/// Where a ``Trainer`` gets each step's batch: epoch after epoch, the same number of steps on
/// every rank, each rank its own share of the data.
public protocol TrainingData<Batch>: AnyObject {
    /// What a step's data is.
    associatedtype Batch
    /// Steps in one epoch (the same on every rank).
    var stepsPerEpoch: Int { get }
    /// Examples each rank trains on per step, for throughput figures.
    var batchSize: Int { get }
    /// This rank's batch for step `step` (0-based) of epoch `epoch`; it may reuse one
    /// buffer, valid until the next call.
    func batch(epoch: Int, step: Int) -> Batch
}

/// Data a model is evaluated on, split across ranks: each rank scores its own batches and
/// the sums are combined (``Evaluation``).
public protocol EvaluationData<Batch> {
    /// What a batch is.
    associatedtype Batch
    /// Calls `body` with each of rank `rank`'s batches (of `ranks`); together the ranks
    /// cover the data once.
    func forEachBatch(rank: Int, ranks: Int, _ body: (Batch) throws -> Void) rethrows
}

/// Rows of features with a class label each, in buffers owned by the batch: what ``MLP``
/// takes.
public final class LabelledBatch {
    /// Row-major features, `count × featureCount` of them valid.
    public let features: UnsafeMutableBufferPointer<Float>
    /// One label per row, `count` of them valid.
    public let labels: UnsafeMutableBufferPointer<Int32>
    /// Floats per row.
    public let featureCount: Int
    /// Rows filled.
    public private(set) var count = 0

    /// A batch with room for `capacity` rows of `featureCount` floats.
    public init(capacity: Int, featureCount: Int) {
        self.featureCount = featureCount
        features = .allocate(capacity: capacity * featureCount)
        features.initialize(repeating: 0)
        labels = .allocate(capacity: capacity)
        labels.initialize(repeating: 0)
    }

    deinit {
        features.deallocate()
        labels.deallocate()
    }

    /// Fills the batch with rows `rows` of `dataset`.
    public func fill(from dataset: Dataset, rows: ArraySlice<Int>) {
        precondition(rows.count * featureCount <= features.count && dataset.featureCount == featureCount,
                     "LabelledBatch.fill: \(rows.count) rows of \(dataset.featureCount) floats do not fit")
        dataset.gather(rows: rows, features: features.baseAddress!, labels: labels.baseAddress!)
        count = rows.count
    }
}

/// Training batches of a labelled dataset: each epoch one shuffle shared by every rank, each
/// rank its own shard of it (``ShardedSampler``), `batchSize` rows a step.
public final class ShardedBatches: TrainingData {
    /// The rows.
    public let dataset: Dataset
    /// Which rows each rank takes.
    public let sampler: ShardedSampler
    private let batch: LabelledBatch
    private var permutation: (epoch: Int, rows: [Int])?

    /// Batches of `batchSize` rows of `dataset` for rank `rank` of `ranks`, shuffled from `seed`.
    public init(dataset: Dataset, rank: Int, ranks: Int, batchSize: Int, seed: UInt64) throws {
        self.dataset = dataset
        sampler = try ShardedSampler(count: dataset.count, ranks: ranks, rank: rank, batchSize: batchSize, seed: seed)
        batch = LabelledBatch(capacity: batchSize, featureCount: dataset.featureCount)
    }

    public var stepsPerEpoch: Int { sampler.stepsPerEpoch }
    public var batchSize: Int { sampler.batchSize }

    public func batch(epoch: Int, step: Int) -> LabelledBatch {
        if permutation?.epoch != epoch { permutation = (epoch, sampler.permutation(epoch: epoch)) }
        batch.fill(from: dataset, rows: sampler.rows(step: step, permutation: permutation!.rows))
        return batch
    }
}

/// Evaluation batches of a labelled dataset: rank r takes the r-th of the ranks' contiguous
/// blocks of rows, `batchSize` rows at a time.
public struct EvaluationBatches: EvaluationData {
    /// The rows.
    public let dataset: Dataset
    /// Rows per batch: at most what the model holds.
    public let batchSize: Int

    /// Batches of at most `batchSize` rows of `dataset`.
    public init(dataset: Dataset, batchSize: Int) {
        self.dataset = dataset
        self.batchSize = batchSize
    }

    public func forEachBatch(rank: Int, ranks: Int, _ body: (LabelledBatch) throws -> Void) rethrows {
        let start = dataset.count * rank / ranks, end = dataset.count * (rank + 1) / ranks
        let rows = Array(start..<end)
        let batch = LabelledBatch(capacity: batchSize, featureCount: dataset.featureCount)
        for batchStart in stride(from: 0, to: rows.count, by: batchSize) {
            batch.fill(from: dataset, rows: rows[batchStart ..< min(rows.count, batchStart + batchSize)])
            try body(batch)
        }
    }
}
