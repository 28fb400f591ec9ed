// Text formatting for the progress line, the summary and the metrics file.

/// `value` with `digits` digits after the point.
func fixed(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    let whole = Int(rounded / scale)
    let fraction = Int(rounded - Double(whole) * scale)
    let sign = value < 0 && rounded > 0 ? "-" : ""
    guard digits > 0 else { return "\(sign)\(whole)" }
    let fractionText = String(fraction)
    return "\(sign)\(whole).\(String(repeating: "0", count: digits - fractionText.count))\(fractionText)"
}

/// A byte count in KiB, MiB or GiB.
func bytesText(_ bytes: Int) -> String {
    let value = Double(bytes)
    if bytes >= 1 << 30 { return fixed(value / Double(1 << 30), 2) + " GiB" }
    if bytes >= 1 << 20 { return fixed(value / Double(1 << 20), 1) + " MiB" }
    if bytes >= 1 << 10 { return fixed(value / Double(1 << 10), 1) + " KiB" }
    return "\(bytes) B"
}

/// Seconds as m:ss or h:mm:ss.
func durationText(_ seconds: Double) -> String {
    let total = Int(max(0, seconds).rounded())
    let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60)
    let two = { (n: Int) in n < 10 ? "0\(n)" : "\(n)" }
    return hours > 0 ? "\(hours):\(two(minutes)):\(two(secs))" : "\(minutes):\(two(secs))"
}

/// A number like 3.0e-04.
func scientific(_ value: Float) -> String {
    guard value != 0, value.isFinite else { return "\(value)" }
    var exponent = 0
    var mantissa = Double(abs(value))
    while mantissa >= 10 { mantissa /= 10; exponent += 1 }
    while mantissa < 1 { mantissa *= 10; exponent -= 1 }
    let exponentText = exponent < 0 ? "-" + (abs(exponent) < 10 ? "0" : "") + "\(abs(exponent))" : "+" + (exponent < 10 ? "0" : "") + "\(exponent)"
    return (value < 0 ? "-" : "") + fixed(mantissa, 1) + "e" + exponentText
}

extension String {
    /// The string padded with spaces to `width`.
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
