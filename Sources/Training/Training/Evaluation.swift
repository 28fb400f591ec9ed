import Collectives

/// Loss and accuracy on a dataset, reduced across ranks.
public struct Evaluation: Sendable, Equatable {
    /// Mean cross-entropy.
    public let loss: Double
    /// Fraction classified correctly.
    public let accuracy: Double
    /// Rows evaluated, over all ranks.
    public let count: Int

    /// Evaluates `model` on `dataset`: rank r takes the r-th of `communicator.size` contiguous
    /// blocks of rows, and the sums are combined with `MPI_Allreduce`; every rank gets the
    /// same result, over every row.
    public static func run(model: MLP, dataset: Dataset, communicator: Communicator) throws -> Evaluation {
        let ranks = communicator.size, rank = communicator.rank
        let start = dataset.count * rank / ranks, end = dataset.count * (rank + 1) / ranks
        var lossSum = 0.0, correct = 0
        let features = UnsafeMutableBufferPointer<Float>.allocate(capacity: model.maxBatch * dataset.featureCount)
        let labels = UnsafeMutableBufferPointer<Int32>.allocate(capacity: model.maxBatch)
        defer { features.deallocate(); labels.deallocate() }
        let rows = Array(start..<end)
        for batchStart in stride(from: 0, to: rows.count, by: model.maxBatch) {
            let batch = rows[batchStart ..< min(rows.count, batchStart + model.maxBatch)]
            dataset.gather(rows: batch, features: features.baseAddress!, labels: labels.baseAddress!)
            let result = model.forward(inputs: features.baseAddress!, labels: labels.baseAddress!, batch: batch.count)
            lossSum += result.lossSum
            correct += result.correct
        }
        let totals = try communicator.allreduce([lossSum, Double(correct), Double(rows.count)], operation: .sum)
        return Evaluation(loss: totals[0] / max(1, totals[2]), accuracy: totals[1] / max(1, totals[2]), count: Int(totals[2]))
    }
}
