import CVectorOps
import Collectives

/// Distributed Lion's pack: the vote is the sign of Lion's direction β1·m + (1−β1)·g, and in
/// the same pass Lion's new momentum β2·m + (1−β2)·g goes to `nextMomentum`, so no
/// intermediate float vector is written.
///
/// `nextMomentum` may be `momentum` itself (an update in place), `gradient` itself (the
/// gradient's storage reused, its values being dead after the step), or a buffer overlapping
/// neither: each 16 lanes are read before they are written. A partial overlap is a
/// ``problem`` that makes the sign allreduce throw on every rank.
@frozen
public struct LionDirection: SignSource {
    /// The old momentum m.
    public let momentum: UnsafeBufferPointer<Float>
    /// The gradient g.
    public let gradient: UnsafeBufferPointer<Float>
    /// Where the new momentum goes.
    public let nextMomentum: UnsafeMutableBufferPointer<Float>
    /// β1: the direction's interpolation between momentum and gradient.
    public let beta1: Float
    /// β2: the momentum's decay.
    public let beta2: Float

    /// Lion's direction from `momentum` and `gradient`, with the new momentum written to
    /// `nextMomentum`.
    @inlinable
    public init(momentum: UnsafeBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
                nextMomentum: UnsafeMutableBufferPointer<Float>, beta1: Float, beta2: Float) {
        self.momentum = momentum
        self.gradient = gradient
        self.nextMomentum = nextMomentum
        self.beta1 = beta1
        self.beta2 = beta2
    }

    @inlinable
    public var count: Int { min(momentum.count, gradient.count, nextMomentum.count) }

    /// Buffers of different lengths, or a `nextMomentum` that partly overlaps an input.
    public var problem: String? {
        if momentum.count != gradient.count || nextMomentum.count != gradient.count {
            return "momentum, gradient and nextMomentum have \(momentum.count), \(gradient.count) and \(nextMomentum.count) elements; they must match"
        }
        let target = UnsafeBufferPointer(nextMomentum)
        for (name, other) in [("momentum", momentum), ("gradient", gradient)]
        where target.baseAddress != other.baseAddress && target.overlaps(other) {
            return "nextMomentum overlaps \(name) without being it; pass \(name) itself or a separate buffer"
        }
        return nil
    }

    @inlinable @inline(__always)
    public func load(_ offset: Int, valid: Int) -> SIMD16<Float> {
        let m = FloatLanes.load(momentum.baseAddress.unsafelyUnwrapped + offset, valid)
        let g = FloatLanes.load(gradient.baseAddress.unsafelyUnwrapped + offset, valid)
        return beta1 * m + (1 - beta1) * g
    }

    /// Writes the new momentum of these lanes and returns it for the non-finite check.
    @inlinable @inline(__always)
    public func finish(_ offset: Int, valid: Int) -> SIMD16<Float> {
        let m = FloatLanes.load(momentum.baseAddress.unsafelyUnwrapped + offset, valid)
        let g = FloatLanes.load(gradient.baseAddress.unsafelyUnwrapped + offset, valid)
        let next = beta2 * m + (1 - beta2) * g
        FloatLanes.store(next, nextMomentum.baseAddress.unsafelyUnwrapped + offset, valid)
        return next
    }

    @inlinable @inline(__always)
    public func prefetchAhead(_ offset: Int) {
        dlion_prefetch_ahead(momentum.baseAddress.unsafelyUnwrapped + offset)
        dlion_prefetch_ahead(gradient.baseAddress.unsafelyUnwrapped + offset)
    }
}

/// Distributed Lion's unpack: the voted Δ applied straight to the parameters with Lion's
/// decoupled weight decay, x ← x − (ηλ·x + η·Δ) (``decoupledStep``), prefetching x ahead.
@frozen
public struct LionUpdate: SignSink {
    /// The parameters x.
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// η.
    public let learningRate: Float
    /// ηλ.
    @usableFromInline let shrink: Float

    /// Lion's update of `parameters` at `learningRate` with decoupled weight decay `weightDecay`.
    @inlinable
    public init(parameters: UnsafeMutableBufferPointer<Float>, learningRate: Float, weightDecay: Float) {
        self.parameters = parameters
        self.learningRate = learningRate
        shrink = learningRate * weightDecay
    }

    @inlinable
    public var count: Int { parameters.count }

    @inlinable @inline(__always)
    public func store(_ offset: Int, _ delta: SIMD16<Float>, valid: Int) {
        let x = parameters.baseAddress.unsafelyUnwrapped + offset
        if offset % 64 == 0 { dlion_prefetch_ahead(x) }
        FloatLanes.store(decoupledStep(FloatLanes.load(x, valid), update: delta, learningRate: learningRate, shrink: shrink), x, valid)
    }
}

extension UnsafeBufferPointer {
    /// Whether the two buffers share any element.
    func overlaps(_ other: UnsafeBufferPointer) -> Bool {
        guard let base = baseAddress, let otherBase = other.baseAddress, count > 0, other.count > 0 else { return false }
        return base < otherBase + other.count && otherBase < base + count
    }
}
