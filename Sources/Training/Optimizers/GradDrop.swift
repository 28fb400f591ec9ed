import Collectives

/// Gradient dropping (Aji and Heafield 2017), the Distributed Lion paper's third compressed
/// baseline: each rank adds its gradient to a local residual r, sends the coordinates of r
/// whose magnitude is among the largest ``ratio`` (a threshold from a sample of about 10 000
/// coordinates, one threshold for the whole model) by a sparse allgather, and keeps the rest
/// in r for later steps. Every rank then holds the mean of the N sparse vectors, which
/// ``CompressedGradientAdamW`` feeds to AdamW. Unlike ``DGC`` there is no momentum correction
/// and no warm-up.
public final class GradDrop: GradientCompressor {
    public let name = "graddrop"
    /// The fraction of coordinates sent each step, in (0, 1].
    public let ratio: Float
    /// The residual r: what was not sent yet.
    public let residual: StateBuffer

    /// Gradient dropping over `count` coordinates, sending `ratio` of them. Throws when
    /// `ratio` is outside (0, 1].
    public init(count: Int, ratio: Float = 0.01) throws {
        guard ratio > 0 && ratio <= 1 else { throw TrainingError.invalidConfiguration("the top-k ratio must be in (0, 1] (got \(ratio))") }
        self.ratio = ratio
        residual = try StateBuffer.allocate(["residual"], count: count)[0]
    }

    public var state: OptimizerState { OptimizerState(buffers: [residual]) }

    /// GradDrop keeps no scalars.
    public func restore(scalars: [String: Int]) throws {}

    public func exchange(_ gradient: UnsafeMutableBufferPointer<Float>, step: Int, communicator: Communicator) throws {
        guard let r = residual.storage.baseAddress, let g = gradient.baseAddress else { return }
        add(r, g, count: gradient.count)
        let threshold = TopK.threshold(UnsafeBufferPointer(residual.storage), keeping: ratio)
        let sparse = TopK.take(residual.storage, atLeast: threshold, expecting: Int(ratio * Float(gradient.count)))
        try TopK.mean(of: sparse, into: gradient, communicator: communicator)
    }
}
