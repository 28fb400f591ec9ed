/// A labelled dataset in memory: `count` rows of `features` floats and one label each.
public struct Dataset: Sendable {
    /// Row-major features, count × features.
    public let features: [Float]
    /// Labels in 0..<classes.
    public let labels: [Int32]
    /// Floats per row.
    public let featureCount: Int
    /// Number of classes.
    public let classes: Int

    /// A dataset of `labels.count` rows.
    public init(features: [Float], labels: [Int32], featureCount: Int, classes: Int) {
        precondition(features.count == labels.count * featureCount, "Dataset: \(features.count) floats for \(labels.count) rows of \(featureCount)")
        self.features = features
        self.labels = labels
        self.featureCount = featureCount
        self.classes = classes
    }

    /// Number of rows.
    public var count: Int { labels.count }

    /// Copies rows `rows` into `features` (rows × featureCount) and `labels`.
    public func gather(rows: ArraySlice<Int>, features destination: UnsafeMutablePointer<Float>, labels labelDestination: UnsafeMutablePointer<Int32>) {
        features.withUnsafeBufferPointer { source in
            for (position, row) in rows.enumerated() {
                (destination + position * featureCount).update(from: source.baseAddress! + row * featureCount, count: featureCount)
                labelDestination[position] = labels[row]
            }
        }
    }

    /// Gaussian clusters around random class centres: a learnable stand-in for tests and for
    /// machines without Fashion-MNIST. The same seed gives the same data on every rank.
    public static func synthetic(count: Int, featureCount: Int = 784, classes: Int = 10, noise: Float = 1.5, seed: UInt64) -> Dataset {
        var random = SplitMix64(seed: seed)
        var centreRandom = SplitMix64(seed: 0xC0FFEE)
        let centres = (0..<classes * featureCount).map { _ in centreRandom.normal() * 0.5 }
        var labels = [Int32](repeating: 0, count: count)
        var features = [Float](repeating: 0, count: count * featureCount)
        for row in 0..<count {
            let label = Int(random.next() % UInt64(classes))
            labels[row] = Int32(label)
            for column in 0..<featureCount {
                features[row * featureCount + column] = centres[label * featureCount + column] + noise * random.normal()
            }
        }
        return Dataset(features: features, labels: labels, featureCount: featureCount, classes: classes)
    }
}

/// Which rows each rank trains on: every epoch, one permutation of all rows, the same on every
/// rank (seeded by seed and epoch); rank r takes the r-th of `ranks` equal shards and walks
/// it in batches. Rows past the last whole shard and batch are left out of that epoch.
public struct ShardedSampler: Sendable {
    /// Rows in the dataset.
    public let count: Int
    /// Number of ranks sharing it.
    public let ranks: Int
    /// This rank.
    public let rank: Int
    /// Rows per batch on each rank.
    public let batchSize: Int
    /// Seeds the permutations.
    public let seed: UInt64

    /// A sampler; `batchSize × ranks` must not exceed `count`.
    public init(count: Int, ranks: Int, rank: Int, batchSize: Int, seed: UInt64) throws {
        guard batchSize > 0, batchSize * ranks <= count else {
            throw TrainingError.invalidConfiguration("a batch of \(batchSize) per rank on \(ranks) ranks needs at least \(batchSize * ranks) training rows; the dataset has \(count)")
        }
        self.count = count
        self.ranks = ranks
        self.rank = rank
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Batches per epoch on every rank.
    public var stepsPerEpoch: Int { count / ranks / batchSize }

    /// This rank's rows for batch `step` (0-based) of an epoch whose ``permutation(epoch:)``
    /// is `permutation`.
    public func rows(step: Int, permutation: [Int]) -> ArraySlice<Int> {
        let shard = count / ranks
        let start = rank * shard + step * batchSize
        return permutation[start ..< start + batchSize]
    }

    /// The permutation of `epoch`.
    public func permutation(epoch: Int) -> [Int] {
        var random = SplitMix64(seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15))
        var order = Array(0..<count)
        order.shuffle(using: &random)
        return order
    }
}
