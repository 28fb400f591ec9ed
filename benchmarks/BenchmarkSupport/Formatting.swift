/// What the benchmark programs share: medians and fixed-width text.

/// The median of `values` (the mean of the middle two for an even count; 0 for none).
public func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// `value` rounded to `decimals` places, as text without trailing padding ("12.35").
public func rounded(_ value: Double, decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    return "\((value * scale).rounded() / scale)"
}

extension String {
    /// The string padded with spaces to `width`, and always followed by at least one space,
    /// for columns.
    public func padded(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
