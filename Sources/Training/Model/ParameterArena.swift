#if canImport(Glibc)
import Glibc
#endif

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
/// The gradient storage may change at each optimizer step (Distributed Lion keeps its new
/// momentum where the gradients were and hands its old momentum's storage over), so the
/// gradients are reached only through accessors that look up the current storage:
/// ``withGradients(_:)`` for the whole vector and ``gradients(_:)`` for one tensor. Use what
/// they give within the step; never keep it across an optimizer step.
public final class ParameterArena {
    /// The tensors, in layout order.
    public let slots: [TensorSlot]
    /// Total parameters.
    public let count: Int
    /// All parameters. Their storage never changes.
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// All gradients, same layout as `parameters`; the storage an optimizer step may trade.
    private var gradientStorage: UnsafeMutableBufferPointer<Float>

    /// Lays out `tensors` (name and shape) one after another, parameters and gradients zero.
    /// Throws ``TrainingError/modelTooLarge(parameters:bytesNeeded:bytesAvailable:)`` when
    /// the parameters and gradients, with the `activationFloats` the model will allocate
    /// beside them, would not fit in the memory available, and
    /// ``TrainingError/invalidConfiguration(_:)`` when a shape's size overflows.
    public init(tensors: [(name: String, shape: [Int])], activationFloats: Int = 0) throws {
        var offset = 0
        var slots: [TensorSlot] = []
        for tensor in tensors {
            slots.append(TensorSlot(name: tensor.name, offset: offset, shape: tensor.shape))
            let (size, sizeOverflow) = tensor.shape.reduce((1, false)) { partial, dimension in
                let (product, overflow) = partial.0.multipliedReportingOverflow(by: dimension)
                return (product, partial.1 || overflow || dimension < 0)
            }
            let (next, overflow) = offset.addingReportingOverflow(size)
            guard !sizeOverflow, !overflow else {
                throw TrainingError.invalidConfiguration("tensor \(tensor.name) of shape \(tensor.shape) has more elements than can be counted")
            }
            offset = next
        }
        let (floats, floatsOverflow) = (2 * offset).addingReportingOverflow(activationFloats)
        let (bytes, bytesOverflow) = floats.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        let (needed, overflow) = (bytes, floatsOverflow || bytesOverflow || offset > Int.max / 2)
        let available = availableMemoryBytes()
        guard !overflow, needed < available else {
            throw TrainingError.modelTooLarge(parameters: offset, bytesNeeded: overflow ? .max : needed, bytesAvailable: available)
        }
        self.slots = slots
        self.count = offset
        parameters = zeroedBuffer(offset)
        gradientStorage = zeroedBuffer(offset)
    }

    deinit {
        parameters.deallocate()
        gradientStorage.deallocate()
    }

    /// Calls `body` with all gradients, in the current storage; do not keep the buffer past
    /// the call.
    public func withGradients<Result>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> Result) rethrows -> Result {
        try body(gradientStorage)
    }

    /// Sets every gradient to zero, for models whose backward accumulates.
    public func zeroGradients() {
        gradientStorage.update(repeating: 0)
    }

    /// Puts `storage` in place of the gradient storage and returns the storage it replaces,
    /// whose ownership passes to the caller (it holds the last gradients written). The arena
    /// owns `storage` from now on and deallocates it with itself, so it must have been
    /// allocated with `UnsafeMutableBufferPointer<Float>.allocate(capacity:)` for ``count``
    /// floats. Distributed Lion uses this to keep its new momentum where the gradients were,
    /// saving a pass over memory per step.
    func exchangeGradientStorage(_ storage: UnsafeMutableBufferPointer<Float>) -> UnsafeMutableBufferPointer<Float> {
        precondition(storage.count == count, "exchangeGradientStorage: the new storage holds \(storage.count) floats, the arena \(count)")
        defer { gradientStorage = storage }
        return gradientStorage
    }

    /// The parameters of `slot`.
    public func parameters(_ slot: TensorSlot) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: parameters[slot.offset ..< slot.offset + slot.count])
    }

    /// The gradients of `slot`, in the current storage: valid until the next optimizer step.
    public func gradients(_ slot: TensorSlot) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: gradientStorage[slot.offset ..< slot.offset + slot.count])
    }
}

/// Allocates a zeroed float buffer.
func zeroedBuffer(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    buffer.initialize(repeating: 0)
    return buffer
}
