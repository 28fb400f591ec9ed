/// What a ``Trainer`` needs of a model: its parameters and gradients in one arena, a forward
/// pass that scores a batch, and a backward pass that writes the gradients.
///
/// ```swift
/// final class MyModel: Model {
///     let arena: ParameterArena
///     func forward(_ batch: MyBatch) -> BatchResult { … }    // loss summed over the batch
///     func backward(_ batch: MyBatch) { … }                   // d(mean loss) into the arena
/// }
/// ```
public protocol Model: AnyObject {
    /// What one step of data is for this model (rows and labels, token windows, …).
    associatedtype Batch
    /// The parameters and their gradients.
    var arena: ParameterArena { get }
    /// Runs `batch` through the model and returns its loss summed over the batch, keeping
    /// what ``backward(_:)`` needs.
    func forward(_ batch: Batch) -> BatchResult
    /// Writes the gradient of the mean loss of the last ``forward(_:)`` (on the same batch)
    /// into the arena's gradients, every one of them: a model whose layers accumulate calls
    /// ``ParameterArena/zeroGradients()`` first.
    func backward(_ batch: Batch)
}

/// How a model did on one batch, summed so that batches and ranks add up.
public struct BatchResult: Sendable, Equatable {
    /// The loss summed over the batch's examples (cross-entropy in nats).
    public var lossSum: Double
    /// Examples predicted correctly (classes, next tokens).
    public var correct: Int
    /// Examples scored.
    public var count: Int

    /// A result with the given sums.
    public init(lossSum: Double, correct: Int, count: Int) {
        self.lossSum = lossSum
        self.correct = correct
        self.count = count
    }
}
