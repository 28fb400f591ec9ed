import CVectorOps
import Collectives

/// Whether every value is finite: one pass split over ``Parallel/threads``, no branch per
/// element (a ``FiniteProbe`` per piece).
public func allFinite(_ values: UnsafeBufferPointer<Float>) -> Bool {
    guard let base = values.baseAddress else { return true }
    return Parallel.mapPieces(count: values.count) { piece -> Bool in
        var probe = FiniteProbe()
        for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
            if start % 64 == 0 { dlion_prefetch_ahead(base + start) }
            probe.add(FloatLanes.load(base + start, min(16, piece.upperBound - start)))
        }
        return probe.allFinite
    }.allSatisfy { $0 }
}

/// Whether the gradients are finite on every rank of `communicator`: each rank's
/// ``allFinite(_:)``, then one 4-byte `MPI_Allreduce`, so that every rank takes the same
/// decision.
func allFiniteOnEveryRank(_ gradients: UnsafeMutableBufferPointer<Float>, communicator: Communicator) throws -> Bool {
    try communicator.holdsOnEveryRank(allFinite(UnsafeBufferPointer(gradients)))
}

/// Multiplies every element by `factor`, split over ``Parallel/threads``.
func scale(_ buffer: UnsafeMutableBufferPointer<Float>, by factor: Float) {
    guard let base = buffer.baseAddress else { return }
    Parallel.forEachPiece(count: buffer.count) { piece in
        for start in stride(from: piece.lowerBound, to: piece.upperBound, by: 16) {
            let valid = min(16, piece.upperBound - start)
            FloatLanes.store(FloatLanes.load(base + start, valid) * factor, base + start, valid)
        }
    }
}

/// Replaces `buffer` with its mean across the ranks of `communicator`: an in-place sum
/// `MPI_Allreduce`, then ``scale(_:by:)`` by 1 / size.
func averageAcrossRanks(_ buffer: UnsafeMutableBufferPointer<Float>, communicator: Communicator) throws {
    try communicator.allreduce(inPlace: buffer, operation: .sum)
    scale(buffer, by: 1 / Float(communicator.size))
}

/// destination += source over `count` floats, split over ``Parallel/threads``.
func add(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafePointer<Float>, count: Int) {
    Parallel.forEachPiece(count: count) { piece in
        forEachLaneGroup(piece.count) { start, valid in
            let offset = piece.lowerBound + start
            FloatLanes.store(FloatLanes.load(destination + offset, valid) + FloatLanes.load(source + offset, valid), destination + offset, valid)
        }
    }
}

extension FloatLanes {
    /// sign(x) lane by lane: +1, −1, or 0 for ±0, from the float bits (no mask selects,
    /// which lower to lane-by-lane loops on baseline x86-64).
    @inline(__always)
    static func sign(_ values: SIMD16<Float>) -> SIMD16<Float> {
        let bits = unsafeBitCast(values, to: SIMD16<Int32>.self)
        let one = (bits & Int32(bitPattern: 0x8000_0000)) | 0x3F80_0000
        let nonzero = (0 &- (bits & 0x7FFF_FFFF)) &>> 31
        return unsafeBitCast(one & nonzero, to: SIMD16<Float>.self)
    }
}
