import CVectorOps

/// Where the votes of a sign allreduce come from: the sign of each coordinate's value, handed
/// to the pack 16 lanes at a time.
///
/// Conform a type of your own to fuse the computation of the values with the pack, so that
/// no intermediate float vector is ever written (Training's Distributed Lion computes
/// β1·m + (1−β1)·g here and writes its new momentum in ``finish(_:valid:)``). The pack is
/// generic over the source and inlines it, so make the methods `@inlinable` and cheap.
///
/// Lanes past the end of the vector are asked for with `valid` below 16 (possibly 0); they
/// must come back as zeros, and must not be read or written.
public protocol SignSource {
    /// The number of coordinates.
    var count: Int { get }
    /// Why this source cannot be used, if it cannot (for example, buffers of different
    /// lengths); checked on every rank before anything is exchanged. `nil` by default.
    var problem: String? { get }
    /// The values of coordinates `offset ..< offset + 16`, of which the first `valid`
    /// (0…16) are real; zeros in the other lanes. Called once per 16 lanes; no side effects.
    func load(_ offset: Int, valid: Int) -> SIMD16<Float>
    /// Called once per 16 lanes after they are packed, in increasing order, for the source's
    /// own writes; returns the lanes a non-finite check (``NonFiniteInput/skip``) looks at,
    /// zeros past `valid`. By default, the loaded values.
    func finish(_ offset: Int, valid: Int) -> SIMD16<Float>
    /// A hint, once per 64 lanes of a long run: prefetch what lies a fixed distance
    /// (`DLION_PREFETCH_DISTANCE` floats) past `offset`. By default, nothing.
    func prefetchAhead(_ offset: Int)
}

extension SignSource {
    /// No problem.
    @inlinable public var problem: String? { nil }

    /// The loaded values.
    @inlinable @inline(__always)
    public func finish(_ offset: Int, valid: Int) -> SIMD16<Float> { load(offset, valid: valid) }

    /// No prefetch.
    @inlinable @inline(__always)
    public func prefetchAhead(_ offset: Int) {}
}

/// Where the result Δ of a sign allreduce goes, 16 lanes at a time: written out as floats
/// (``FloatSink``) or applied straight to something (Training's Distributed Lion applies
/// x ← x − η·(Δ + λ·x) here). The unpack is generic over the sink and inlines it.
///
/// Several threads may store into disjoint coordinates of one sink at the same time.
public protocol SignSink {
    /// The number of coordinates.
    var count: Int { get }
    /// Takes Δ for coordinates `offset ..< offset + valid`: the first `valid` (1…16) lanes of
    /// `delta`. Δ is ±1 (majority vote), −1/0/+1 (ties kept as zero) or (2·c − N)/N
    /// (average of N votes, c of them +1).
    func store(_ offset: Int, _ delta: SIMD16<Float>, valid: Int)
    /// Called on the storing thread after each run of stores (a sink with non-temporal
    /// stores fences here). By default, nothing.
    func endRun()
}

extension SignSink {
    /// Nothing to end.
    @inlinable @inline(__always)
    public func endRun() {}
}

/// Votes with the signs of plain float values: δᵢ = sign(values[i]).
@frozen
public struct FloatSource: SignSource {
    /// The values.
    public let values: UnsafeBufferPointer<Float>

    /// Votes with the signs of `values`.
    @inlinable
    public init(_ values: UnsafeBufferPointer<Float>) { self.values = values }

    @inlinable
    public var count: Int { values.count }

    @inlinable @inline(__always)
    public func load(_ offset: Int, valid: Int) -> SIMD16<Float> {
        FloatLanes.load(values.baseAddress.unsafelyUnwrapped + offset, valid)
    }

    @inlinable @inline(__always)
    public func prefetchAhead(_ offset: Int) { dlion_prefetch_ahead(values.baseAddress.unsafelyUnwrapped + offset) }
}

/// Writes Δ as floats. A long output (256 KiB or more, 16-byte aligned) is written with
/// non-temporal stores: it is written once and read later, so reading each line before
/// overwriting it, as a cached store must, would double the memory traffic.
@frozen
public struct FloatSink: SignSink {
    /// The output.
    public let values: UnsafeMutableBufferPointer<Float>
    /// Whether stores bypass the cache.
    @usableFromInline let streams: Bool

    /// Outputs shorter than this many floats are written through the cache; they are likely
    /// still there when read.
    public static let streamingThreshold = 1 << 16

    /// Writes Δ into `values`.
    @inlinable
    public init(_ values: UnsafeMutableBufferPointer<Float>) {
        self.values = values
        streams = values.count >= FloatSink.streamingThreshold && Int(bitPattern: values.baseAddress) % 16 == 0
    }

    @inlinable
    public var count: Int { values.count }

    @inlinable @inline(__always)
    public func store(_ offset: Int, _ delta: SIMD16<Float>, valid: Int) {
        let destination = values.baseAddress.unsafelyUnwrapped + offset
        guard streams, valid == 16 else { return FloatLanes.store(delta, destination, valid) }
        dlion_stream_store4(destination, delta.lowHalf.lowHalf)
        dlion_stream_store4(destination + 4, delta.lowHalf.highHalf)
        dlion_stream_store4(destination + 8, delta.highHalf.lowHalf)
        dlion_stream_store4(destination + 12, delta.highHalf.highHalf)
    }

    @inlinable @inline(__always)
    public func endRun() { if streams { dlion_stream_fence() } }
}

/// Loads and stores of 16 floats with a partial final group, so that a lane kernel has one
/// body for a whole vector: with `valid` 16 (a constant in the main loop) they are single
/// vector moves.
public enum FloatLanes {
    /// The `valid` (0…16) floats at `pointer`, zeros after them.
    @inlinable @inline(__always)
    public static func load(_ pointer: UnsafePointer<Float>, _ valid: Int) -> SIMD16<Float> {
        if valid == 16 { return UnsafeRawPointer(pointer).loadUnaligned(as: SIMD16<Float>.self) }
        var lanes = SIMD16<Float>(repeating: 0)
        for lane in 0..<valid { lanes[lane] = pointer[lane] }
        return lanes
    }

    /// Stores the first `valid` (0…16) lanes of `lanes` at `pointer`.
    @inlinable @inline(__always)
    public static func store(_ lanes: SIMD16<Float>, _ pointer: UnsafeMutablePointer<Float>, _ valid: Int) {
        if valid == 16 { return UnsafeMutableRawPointer(pointer).storeBytes(of: lanes, as: SIMD16<Float>.self) }
        for lane in 0..<valid { pointer[lane] = lanes[lane] }
    }
}
