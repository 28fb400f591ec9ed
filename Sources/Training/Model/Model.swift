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
    /// ``backward(_:)``, telling `gradientsReady` as it goes which gradients are final: each
    /// call `gradientsReady(c)` says that the arena's gradients from offset `c` to the end
    /// will not change again in this pass, so an optimizer can start sending them while the
    /// rest are computed (``OverlappingOptimizer``). Watermarks descend and the last is 0.
    ///
    /// By default, ``backward(_:)`` and then `gradientsReady(0)`: correct for any model, with
    /// nothing to overlap. A model whose backward finishes its arena's tensors from the last
    /// to the first (as a stack of layers stored in order does) says so after each one.
    func backward(_ batch: Batch, gradientsReady: (_ firstFinalGradient: Int) throws -> Void) rethrows
}

extension Model {
    /// ``backward(_:)``, then every gradient is final.
    public func backward(_ batch: Batch, gradientsReady: (_ firstFinalGradient: Int) throws -> Void) rethrows {
        backward(batch)
        try gradientsReady(0)
    }
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
