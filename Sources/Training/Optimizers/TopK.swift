import Collectives

/// The sparsification DGC and GradDrop share: a magnitude threshold estimated from a sample,
/// then the coordinates at or above it taken out of the local buffer into a sparse vector.
enum TopK {
    /// The magnitude above which about `fraction` of `values` lie: the ⌈fraction·n⌉-th largest
    /// |v| of a strided sample of about 10 000 coordinates (DGC's sampled threshold; exact
    /// for vectors of up to 10 000 coordinates). 0 for an empty vector.
    static func threshold(_ values: UnsafeBufferPointer<Float>, keeping fraction: Float) -> Float {
        guard !values.isEmpty else { return 0 }
        let stride = max(1, values.count / 10_000)
        var sample = Swift.stride(from: 0, to: values.count, by: stride).map { abs(values[$0]) }
        sample.sort(by: >)
        let position = min(sample.count - 1, max(0, Int((fraction * Float(sample.count)).rounded(.up)) - 1))
        return sample[position]
    }

    /// The non-zero coordinates of `values` whose magnitude is at least `threshold`, as a
    /// sparse vector; they are set to 0 in `values` and in `alsoClearing` (of the same count,
    /// DGC's momentum factor masking), so what is sent is not kept locally too.
    static func take(_ values: UnsafeMutableBufferPointer<Float>, atLeast threshold: Float, expecting expected: Int,
                     alsoClearing other: UnsafeMutableBufferPointer<Float>? = nil) -> SparseVector {
        var indices: [UInt32] = [], taken: [Float] = []
        indices.reserveCapacity(expected + expected / 2 + 16)
        taken.reserveCapacity(indices.capacity)
        for index in values.indices where values[index] != 0 && abs(values[index]) >= threshold {
            indices.append(UInt32(index))
            taken.append(values[index])
            values[index] = 0
            other?[index] = 0
        }
        return SparseVector(length: values.count, indices: indices, values: taken)
    }

    /// Overwrites `dense` with the mean over the ranks of `communicator` of every rank's
    /// `sparse` (one sparse allgather). Collective.
    static func mean(of sparse: SparseVector, into dense: UnsafeMutableBufferPointer<Float>, communicator: Communicator) throws {
        let everyone = try communicator.allgather(sparse)
        dense.update(repeating: 0)
        for vector in everyone { vector.accumulate(into: dense, scale: 1 / Float(communicator.size)) }
    }
}
