import Collectives

/// Loss and accuracy on a dataset, reduced across ranks.
public struct Evaluation: Sendable, Equatable {
    /// Mean loss per example.
    public let loss: Double
    /// Fraction predicted correctly.
    public let accuracy: Double
    /// Examples evaluated, over all ranks.
    public let count: Int

    /// Evaluates `model` on `data`: each rank scores its own batches, and the sums are
    /// combined with `MPI_Allreduce`; every rank gets the same result, over all the data.
    public static func run<M: Model, Data: EvaluationData>(model: M, data: Data, communicator: Communicator) throws -> Evaluation
    where Data.Batch == M.Batch {
        var total = BatchResult(lossSum: 0, correct: 0, count: 0)
        data.forEachBatch(rank: communicator.rank, ranks: communicator.size) { batch in
            let result = model.forward(batch)
            total.lossSum += result.lossSum
            total.correct += result.correct
            total.count += result.count
        }
        let totals = try communicator.allreduce([total.lossSum, Double(total.correct), Double(total.count)], operation: .sum)
        return Evaluation(loss: totals[0] / max(1, totals[2]), accuracy: totals[1] / max(1, totals[2]), count: Int(totals[2]))
    }
}
