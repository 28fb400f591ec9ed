#if canImport(Glibc)
import Glibc
#endif

/// The bytes this host has sent on its network interfaces (every one but loopback), from
/// Linux's counters (`/sys/class/net/*/statistics/tx_bytes`), or nil where there are none.
/// The count is the host's: every rank on it adds to it, and so does any other traffic. Inside
/// a network namespace (an emulated host) it counts that host's own links.
func hostBytesSent() -> Int? {
    guard let directory = opendir("/sys/class/net") else { return nil }
    defer { closedir(directory) }
    var total: Int?
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard !name.hasPrefix("."), name != "lo", let sent = counter("/sys/class/net/\(name)/statistics/tx_bytes") else { continue }
        total = (total ?? 0) + sent
    }
    return total
}

/// The integer in the file at `path`, or nil when it cannot be read.
private func counter(_ path: String) -> Int? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 32)
    guard fgets(&line, Int32(line.count), file) != nil else { return nil }
    return Int(String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
}
