#if canImport(Glibc)
import Glibc
#endif

/// Bytes this process can still allocate: the least of the machine's `MemAvailable`
/// (/proc/meminfo; physical memory where that cannot be read), what its address-space limit
/// (`ulimit -v`, RLIMIT_AS) leaves beyond the current `VmSize`, and what its cgroup's
/// `memory.max` leaves beyond `memory.current` (a container's or a Slurm job's limit).
func availableMemoryBytes() -> Int {
    var available = kibibytes(named: "MemAvailable:", in: "/proc/meminfo").map { $0 * 1024 }
        ?? sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
    var limit = rlimit()
    if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max, let used = kibibytes(named: "VmSize:", in: "/proc/self/status") {
        available = min(available, max(0, Int(clamping: limit.rlim_cur) - used * 1024))
    }
    if let maximum = firstLine(of: "/sys/fs/cgroup/memory.max").flatMap({ Int($0) }),
       let current = firstLine(of: "/sys/fs/cgroup/memory.current").flatMap({ Int($0) }) {
        available = min(available, max(0, maximum - current))
    }
    return available
}

/// The number on the line of `path` that starts with `name` ("MemAvailable:   123 kB").
private func kibibytes(named name: String, in path: String) -> Int? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix(name) { return text.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
    }
    return nil
}

/// The first line of `path` without its newline, if it can be read.
private func firstLine(of path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 64)
    guard fgets(&line, Int32(line.count), file) != nil else { return nil }
    return String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
