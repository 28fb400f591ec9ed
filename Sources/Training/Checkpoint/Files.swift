#if canImport(Glibc)
import Glibc
#endif

/// Files written so that a crash, a full disk or a kill never leaves a damaged one in place:
/// the bytes go to a temporary file beside the target, are flushed to the device, and the
/// temporary file is renamed over the target, after which the directory is flushed too.
enum Files {
    /// Writes `bytes` to `path` atomically; throws ``TrainingError/writeFailed(path:reason:)``.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".partial"
        func failure(_ what: String) -> TrainingError {
            .writeFailed(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
        }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("cannot create \(temporary)") }
        var closed = false
        defer { if !closed { close(descriptor); unlink(temporary) } }
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw failure("cannot write") }
                offset += written
            }
        }
        guard fsync(descriptor) == 0 else { throw failure("cannot flush") }
        closed = true
        guard close(descriptor) == 0 else { unlink(temporary); throw failure("cannot close") }
        guard rename(temporary, path) == 0 else { unlink(temporary); throw failure("cannot rename \(temporary) into place") }
        try syncDirectory(of: path)
    }

    /// Flushes the directory holding `path`, so a rename in it survives a crash.
    static func syncDirectory(of path: String) throws {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let descriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        _ = fsync(descriptor)
    }

    /// The bytes of the regular file `path`; throws ``TrainingError/checkpointCorrupt(path:reason:)``.
    static func read(_ path: String) throws -> [UInt8] {
        try read(path) { TrainingError.checkpointCorrupt(path: path, reason: $0) }
    }

    /// The bytes of the regular file `path`; throws `failure(reason)` when it cannot be read.
    static func read(_ path: String, failure: (_ reason: String) -> TrainingError) throws -> [UInt8] {
        var status = stat()
        guard stat(path, &status) == 0 else { throw failure("it cannot be read: \(String(cString: strerror(errno)))") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw failure("it is not a regular file") }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("it cannot be opened: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw failure("reading failed: \(String(cString: strerror(errno)))") }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    /// Creates directory `path` (and its parents) if it is missing.
    static func makeDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw TrainingError.writeFailed(path: path, reason: "cannot create directory \(prefix): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The names in directory `path`, or nil when it cannot be opened.
    static func names(in path: String) -> [String]? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes directory `path` and the files in it.
    static func removeDirectory(_ path: String) {
        for name in names(in: path) ?? [] { unlink(path + "/" + name) }
        rmdir(path)
    }
}
