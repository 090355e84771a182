#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output file that appears under its final name only when complete: data goes to a temporary
/// file in the same directory (so the rename is atomic), written with `pwrite` at precomputed
/// offsets, fsync'd, then renamed. Dropped without `commit()`, the temporary file is removed.
public final class OutputFile: @unchecked Sendable {
    public let finalPath: String
    public let tempPath: String
    private var fd: Int32
    private var committed = false

    /// Temp files of aborted runs (killed by a signal) are named so that they are recognisable.
    public static func tempName(for path: String) -> String {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return "\(dir).\(base).tmp-\(getpid())"
    }

    public init(path: String) throws(FileError) {
        finalPath = path
        tempPath = OutputFile.tempName(for: path)
        fd = open(tempPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, message: "cannot create output: \(systemError())") }
        TempFileRegistry.shared.add(tempPath)
    }

    deinit {
        if !committed { abort() }
    }

    /// Sets the final size up front; the gaps (alignment padding) read as zeros without being written.
    public func setSize(_ size: Int) throws(FileError) {
        guard ftruncate(fd, off_t(size)) == 0 else { throw fail("cannot size output to \(size) bytes: \(systemError())") }
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(FileError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("write failed at offset \(offset + done): \(systemError())")
            }
            done += n
        }
    }

    public func write(_ bytes: [UInt8], at offset: Int) throws(FileError) {
        let r: Result<Void, FileError> = bytes.withUnsafeBytes { b in
            do throws(FileError) { try write(b, at: offset); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    /// fsync, close, rename into place, and fsync the directory so the rename itself is durable.
    public func commit() throws(FileError) {
        guard fsync(fd) == 0 else { throw fail("fsync failed: \(systemError())") }
        close(fd)
        fd = -1
        guard rename(tempPath, finalPath) == 0 else {
            let e = systemError()
            unlink(tempPath)
            TempFileRegistry.shared.remove(tempPath)
            committed = true
            throw FileError(path: finalPath, message: "cannot rename temporary file into place: \(e)")
        }
        committed = true
        TempFileRegistry.shared.remove(tempPath)
        let slash = finalPath.lastIndex(of: "/")
        let dir = slash.map { String(finalPath[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    public func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempPath)
        TempFileRegistry.shared.remove(tempPath)
        committed = true
    }

    private func fail(_ m: String) -> FileError { FileError(path: finalPath, message: m) }
}

/// Temporary outputs still open, so that a signal handler can remove them before the process dies.
public final class TempFileRegistry: @unchecked Sendable {
    public static let shared = TempFileRegistry()
    private var lock = pthread_mutex_t()
    private var paths: Set<String> = []

    init() { pthread_mutex_init(&lock, nil) }

    func add(_ p: String) { pthread_mutex_lock(&lock); paths.insert(p); pthread_mutex_unlock(&lock) }
    func remove(_ p: String) { pthread_mutex_lock(&lock); paths.remove(p); pthread_mutex_unlock(&lock) }

    /// Unlinks every registered temp file; called from the interrupt path.
    public func removeAll() {
        pthread_mutex_lock(&lock)
        for p in paths { unlink(p) }
        paths.removeAll()
        pthread_mutex_unlock(&lock)
    }
}
