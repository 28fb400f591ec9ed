import Collectives
import Training
#if canImport(Glibc)
import Glibc
#endif

/// What rank 0 tells the person at the terminal and writes to the metrics file.
final class Reporter {
    private let metricsFile: UnsafeMutablePointer<FILE>?
    private let metricsPath: String?
    private let interactive: Bool
    private var lineOpen = false

    /// A reporter writing JSON lines to `metricsPath` when given (after what it holds when
    /// `appending`, as a resumed run does), with a progress line redrawn in place when
    /// `progress` is "line" (or "auto" and the terminal is one). Throws when the metrics file
    /// cannot be created.
    init(metricsPath: String?, progress: ProgressChoice, appending: Bool = false) throws {
        self.metricsPath = metricsPath
        if let metricsPath {
            guard let file = fopen(metricsPath, appending ? "a" : "w") else {
                throw TrainingError.invalidConfiguration("cannot create the metrics file \(metricsPath): \(String(cString: strerror(errno)))")
            }
            metricsFile = file
        } else {
            metricsFile = nil
        }
        switch progress {
        case .line: interactive = true
        case .plain: interactive = false
        case .auto:
            if let setting = getenv("DLION_PROGRESS") {
                interactive = String(cString: setting) == "line"
            } else {
                interactive = isatty(1) != 0
            }
        }
    }

    /// Closes the metrics file; throws when its last bytes cannot be written.
    func close() throws {
        guard let metricsFile, let metricsPath else { return }
        errno = 0
        if fclose(metricsFile) != 0 { throw TrainingError.writeFailed(path: metricsPath, reason: String(cString: strerror(errno))) }
    }

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

    /// Writes one JSON object as a line of the metrics file and flushes it; throws when the
    /// line cannot be written whole (a full disk, `/dev/full`).
    func record(_ fields: [(String, JSONValue)]) throws {
        guard let metricsFile, let metricsPath else { return }
        let body = fields.map { "\"\($0.0)\":\($0.1.text)" }.joined(separator: ",")
        errno = 0
        guard fputs("{\(body)}\n", metricsFile) >= 0, fflush(metricsFile) == 0 else {
            throw TrainingError.writeFailed(path: metricsPath, reason: String(cString: strerror(errno)))
        }
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
        case .string(let value): return jsonString(value)
        }
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
