/// A float buffer of an optimizer's per-rank state — a momentum, a moment, a residual —
/// named for checkpoints.
///
/// The optimizer owns the storage and may replace it between steps (Distributed Lion trades
/// it with the arena's gradient storage); this view always reads the current one and keeps
/// it alive, so it never dangles, even after the optimizer is gone.
public final class StateBuffer {
    /// The buffer's name within its optimizer, for example `"momentum"`.
    public let name: String
    /// The values; replaced only by the optimizer that owns the buffer.
    var storage: UnsafeMutableBufferPointer<Float>

    /// A zeroed buffer of `count` floats.
    init(name: String, count: Int) {
        self.name = name
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0)
    }

    deinit { storage.deallocate() }

    /// The number of floats.
    public var count: Int { storage.count }

    /// The float at `index`.
    public subscript(index: Int) -> Float { storage[index] }

    /// A copy of the values.
    public var values: [Float] { Array(storage) }

    /// Calls `body` with the values, read-only; do not keep the pointer past the call.
    public func withUnsafeBufferPointer<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result {
        try body(UnsafeBufferPointer(storage))
    }

    /// Overwrites the values with `values` (restoring a saved run); throws when the counts differ.
    public func restore(from values: [Float]) throws {
        guard values.count == count else {
            throw TrainingError.invalidConfiguration("optimizer state '\(name)' holds \(count) floats; the saved one has \(values.count)")
        }
        _ = storage.update(fromContentsOf: values)
    }

    /// Allocates zeroed buffers named `names`, of `count` floats each, after checking that
    /// they fit in the memory available (``TrainingError/optimizerStateTooLarge(buffers:parameters:bytesNeeded:bytesAvailable:)``).
    static func allocate(_ names: [String], count: Int) throws -> [StateBuffer] {
        let (needed, overflow) = (count * MemoryLayout<Float>.stride).multipliedReportingOverflow(by: names.count)
        let available = availableMemoryBytes()
        guard !overflow, needed < available else {
            throw TrainingError.optimizerStateTooLarge(buffers: names.count, parameters: count,
                                                       bytesNeeded: overflow ? .max : needed, bytesAvailable: available)
        }
        return names.map { StateBuffer(name: $0, count: count) }
    }
}

/// Everything an optimizer keeps on this rank between steps: named float buffers and named
/// integer scalars (step counts, round positions, coin-flip counters). What a checkpoint saves.
public struct OptimizerState {
    /// The per-rank buffers, in a fixed order.
    public let buffers: [StateBuffer]
    /// The per-rank scalars, by name.
    public let scalars: [String: Int]

    /// A state of the given buffers and scalars.
    public init(buffers: [StateBuffer] = [], scalars: [String: Int] = [:]) {
        self.buffers = buffers
        self.scalars = scalars
    }

    /// Bytes the buffers hold.
    public var bytes: Int { buffers.reduce(0) { $0 + $1.count * MemoryLayout<Float>.stride } }

    /// The scalars of `prefix` (as ``merging(_:prefix:)`` named them), without the prefix.
    static func scalars(_ scalars: [String: Int], under prefix: String) -> [String: Int] {
        var result: [String: Int] = [:]
        for (name, value) in scalars where name.hasPrefix(prefix + ".") { result[String(name.dropFirst(prefix.count + 1))] = value }
        return result
    }

    /// The scalar `name` of a saved state; throws when the state lacks it.
    static func scalar(_ name: String, in scalars: [String: Int]) throws -> Int {
        guard let value = scalars[name] else {
            throw TrainingError.invalidConfiguration("the saved optimizer state lacks the scalar '\(name)'; it was saved by another optimizer")
        }
        return value
    }

    /// This state and `other`'s, their names prefixed with `prefix` and a dot.
    func merging(_ other: OptimizerState, prefix: String) -> OptimizerState {
        var scalars = self.scalars
        for (name, value) in other.scalars { scalars["\(prefix).\(name)"] = value }
        return OptimizerState(buffers: buffers + other.buffers, scalars: scalars)
    }
}
