/// A fixed-size buffer on the heap that nonblocking calls can keep alive.
///
/// A ``Request`` holds a strong reference to the buffers of its call, so they live at least
/// until the call completes, whatever the caller does with its own references. Reading a
/// receive buffer before ``Request/wait()`` returns is a data race; after, it is safe.
public final class MessageBuffer<Element: MPIScalar> {
    /// The elements. Valid for the life of the buffer.
    public let storage: UnsafeMutableBufferPointer<Element>

    /// A buffer of `count` copies of `value`.
    public init(repeating value: Element, count: Int) {
        precondition(count >= 0, "MessageBuffer: count \(count) is negative")
        storage = .allocate(capacity: count)
        storage.initialize(repeating: value)
    }

    /// A buffer holding a copy of `elements`.
    public init(_ elements: [Element]) {
        storage = .allocate(capacity: elements.count)
        _ = storage.initialize(from: elements)
    }

    deinit { storage.deallocate() }

    /// The number of elements.
    public var count: Int { storage.count }

    /// The element at `index`.
    public subscript(index: Int) -> Element {
        get { storage[index] }
        set { storage[index] = newValue }
    }

    /// A copy of the elements as an array.
    public var elements: [Element] { Array(storage) }
}
