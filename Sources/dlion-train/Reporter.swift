import Training
#if canImport(Glibc)
import Glibc
#endif

/// What rank 0 tells the person at the terminal and writes to the metrics file.
final class Reporter {
    private let metricsFile: UnsafeMutablePointer<FILE>?
    private let interactive: Bool
    private var lineOpen = false

    /// A reporter writing JSON lines to `metricsPath` when given, with a progress line redrawn
    /// in place when `progress` is "line" (or "auto" and the terminal is one). Throws when the
    /// metrics file cannot be created.
    init(metricsPath: String?, progress: String) throws {
        if let metricsPath {
            guard let file = fopen(metricsPath, "w") else {
                throw TrainingError.invalidConfiguration("cannot create the metrics file \(metricsPath): \(String(cString: strerror(errno)))")
            }
            metricsFile = file
        } else {
            metricsFile = nil
        }
        switch progress {
        case "line": interactive = true
        case "plain": interactive = false
        default:
            if let setting = getenv("DLION_PROGRESS") {
                interactive = String(cString: setting) == "line"
            } else {
                interactive = isatty(1) != 0
            }
        }
    }

    deinit { if let metricsFile { fclose(metricsFile) } }

    /// A line for the person: replaces the progress line on a terminal.
    func say(_ text: String) {
        endProgressLine()
        print(text)
        fflush(nil)
    }

    /// The progress line: redrawn in place on a terminal, a plain line otherwise.
    func progress(_ text: String) {
        if interactive {
            print("\r\u{1B}[2K" + text, terminator: "")
            lineOpen = true
        } else {
            print(text)
        }
        fflush(nil)
    }

    /// Writes one JSON object as a line of the metrics file.
    func record(_ fields: [(String, JSONValue)]) {
        guard let metricsFile else { return }
        let body = fields.map { "\"\($0.0)\":\($0.1.text)" }.joined(separator: ",")
        fputs("{\(body)}\n", metricsFile)
        fflush(metricsFile)
    }

    private func endProgressLine() {
        if lineOpen { print(""); lineOpen = false }
    }
}

/// A JSON value for the metrics file.
enum JSONValue {
    case int(Int)
    case double(Double)
    case string(String)

    var text: String {
        switch self {
        case .int(let value): return String(value)
        case .double(let value): return value.isFinite ? "\(value)" : "null"
        case .string(let value):
            let escaped = value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")
            return "\"\(escaped)\""
        }
    }
}

extension String {
    /// The string with every `target` replaced.
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self { if character == target { result += replacement } else { result.append(character) } }
        return result
    }
}

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

/// Writes a line to standard error.
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
