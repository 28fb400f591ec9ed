/// Zeroed float buffers carved from one allocation, one per size (given as factors).
final class FloatSlab {
    /// The buffers, in the order of the sizes.
    let pointers: [UnsafeMutablePointer<Float>]
    private let storage: UnsafeMutableBufferPointer<Float>

    /// The floats `sizes` need together, `times` over, or nil when that is more than can be
    /// counted.
    static func floats(_ sizes: [[Int]], times: Int = 1) -> Int? {
        var total = 0
        for factors in sizes {
            var size = 1
            for factor in factors {
                let (product, overflow) = size.multipliedReportingOverflow(by: factor)
                guard !overflow else { return nil }
                size = product
            }
            let (sum, overflow) = total.addingReportingOverflow(size)
            guard !overflow else { return nil }
            total = sum
        }
        let (product, overflow) = total.multipliedReportingOverflow(by: times)
        return overflow ? nil : product
    }

    /// The sum of `counts`, or nil when one is nil or the sum is more than can be counted.
    static func sum(_ counts: Int?...) -> Int? {
        var total = 0
        for count in counts {
            guard let count else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(count)
            guard !overflow else { return nil }
            total = sum
        }
        return total
    }

    /// Buffers of `sizes`, whose total ``floats(_:)`` has counted.
    init(_ sizes: [[Int]]) {
        let storage = zeroedBuffer(FloatSlab.floats(sizes) ?? 0)
        var offset = 0
        pointers = sizes.map { factors in
            defer { offset += factors.reduce(1, *) }
            return storage.baseAddress! + offset
        }
        self.storage = storage
    }

    deinit { storage.deallocate() }
}
