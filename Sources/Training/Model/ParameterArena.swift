#if canImport(Glibc)
import Glibc
#endif

/// Errors of the training layer, each saying what is wrong and what to do.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// The model and its optimizer state would not fit in memory.
    case modelTooLarge(parameters: Int, bytesNeeded: Int, bytesAvailable: Int)
    /// A dataset file is missing or unreadable.
    case datasetMissing(path: String, hint: String)
    /// A dataset file is there but not a valid IDX file of the expected kind.
    case datasetCorrupt(path: String, reason: String)
    /// A configuration value is out of range or contradicts another.
    case invalidConfiguration(String)
    /// Too many consecutive steps had non-finite gradients on some rank.
    case diverged(step: Int, skippedInARow: Int)

    public var description: String {
        switch self {
        case .modelTooLarge(let parameters, let needed, let available):
            return "the model has \(parameters) parameters and needs about \(needed >> 20) MiB with its gradients and "
                + "optimizer state, but only \(available >> 20) MiB of memory is available; use smaller --hidden widths"
        case .datasetMissing(let path, let hint):
            return "dataset file \(path) is missing or unreadable. \(hint)"
        case .datasetCorrupt(let path, let reason):
            return "dataset file \(path) is not a valid IDX file: \(reason). Reinstall it (apt-get install --reinstall dataset-fashion-mnist) or pass --synthetic"
        case .invalidConfiguration(let reason):
            return reason
        case .diverged(let step, let skipped):
            return "training diverged: \(skipped) steps in a row up to step \(step) had NaN or Inf gradients on some rank; "
                + "lower the learning rate"
        }
    }
}

/// A named tensor inside an arena: `shape` elements starting at `offset`.
public struct TensorSlot: Sendable, Equatable {
    /// The tensor's name, for example `"layer0.weight"`.
    public let name: String
    /// Its first element's index in the arena.
    public let offset: Int
    /// Its shape, row-major.
    public let shape: [Int]
    /// Its number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// The parameters of a model in one contiguous Float buffer, and their gradients in another
/// of the same layout, with a named slot per tensor (llm.c's `ParameterTensors`). Optimizers
/// and collectives see one flat vector; layers see their own slices.
///
/// An optimizer stepping on the arena (``Optimizer/step(_:learningRate:)``) may trade the
/// gradient storage for a buffer of its own (``exchangeGradientStorage(_:)``), so read
/// ``gradients`` afresh each step rather than keeping its address.
public final class ParameterArena {
    /// The tensors, in layout order.
    public let slots: [TensorSlot]
    /// Total parameters.
    public let count: Int
    /// All parameters.
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// All gradients, same layout as `parameters`.
    public private(set) var gradients: UnsafeMutableBufferPointer<Float>

    /// Lays out `tensors` (name and shape) one after another. Throws
    /// ``TrainingError/modelTooLarge(parameters:bytesNeeded:bytesAvailable:)`` when the
    /// parameters, gradients and `stateCopies` more buffers of optimizer state would not fit
    /// in the memory available.
    public init(tensors: [(name: String, shape: [Int])], stateCopies: Int = 2) throws {
        var offset = 0
        var slots: [TensorSlot] = []
        for tensor in tensors {
            slots.append(TensorSlot(name: tensor.name, offset: offset, shape: tensor.shape))
            offset += tensor.shape.reduce(1, *)
        }
        let needed = offset * MemoryLayout<Float>.stride * (2 + stateCopies)
        let available = availableMemoryBytes()
        guard needed < available else {
            throw TrainingError.modelTooLarge(parameters: offset, bytesNeeded: needed, bytesAvailable: available)
        }
        self.slots = slots
        self.count = offset
        parameters = zeroedBuffer(offset)
        gradients = zeroedBuffer(offset)
    }

    deinit {
        parameters.deallocate()
        gradients.deallocate()
    }

    /// Puts `storage` in place of the gradient storage and returns the storage it replaces,
    /// whose ownership passes to the caller (it holds the last gradients written). The arena
    /// owns `storage` from now on and deallocates it with itself, so it must have been
    /// allocated with `UnsafeMutableBufferPointer<Float>.allocate(capacity:)` for ``count``
    /// floats. Distributed Lion uses this to keep its new momentum where the gradients were,
    /// saving a pass over memory per step.
    public func exchangeGradientStorage(_ storage: UnsafeMutableBufferPointer<Float>) -> UnsafeMutableBufferPointer<Float> {
        precondition(storage.count == count, "exchangeGradientStorage: the new storage holds \(storage.count) floats, the arena \(count)")
        defer { gradients = storage }
        return gradients
    }

    /// The slot named `name`.
    public func slot(_ name: String) -> TensorSlot? { slots.first { $0.name == name } }

    /// The parameters of `slot`.
    public func parameters(_ slot: TensorSlot) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: parameters[slot.offset ..< slot.offset + slot.count])
    }

    /// The gradients of `slot`.
    public func gradients(_ slot: TensorSlot) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: gradients[slot.offset ..< slot.offset + slot.count])
    }
}

/// Bytes of memory available to this process: `MemAvailable` from /proc/meminfo, or
/// physical memory where that cannot be read.
func availableMemoryBytes() -> Int {
    if let file = fopen("/proc/meminfo", "r") {
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("MemAvailable:") {
                let digits = text.split(separator: " ").dropFirst().first.flatMap { Int($0) }
                if let kibibytes = digits { return kibibytes * 1024 }
            }
        }
    }
    return sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
}

/// Allocates a zeroed float buffer.
func zeroedBuffer(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    buffer.initialize(repeating: 0)
    return buffer
}
