#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output file that appears under its final name only when complete: data goes to a temporary
/// file in the same directory (so the rename is atomic), written with `pwrite` at precomputed
/// offsets, fsync'd, then renamed. Dropped without `commit()`, the temporary file is removed; a
/// process killed outright (SIGKILL, power loss) leaves it behind under a name that says whose it
/// is (`.edgequant.tmp-<pid>-<host>.<name>`), and the next output created in that directory on the
/// same host removes it once that process is gone (`TempFiles.sweep`).
///
/// Before anything is created the destination is checked: a directory, a dangling symlink, a FIFO
/// or device, or a file this process reads (`InputRegistry`) is refused.
public final class OutputFile: @unchecked Sendable {
    public let finalPath: String
    public let tempPath: String
    private var fd: Int32
    private var committed = false

    /// What every temporary name begins with; `TempFiles` recognises ours by it.
    public static let tempPrefix = ".edgequant.tmp-"
    /// The longest file name the common file systems take (NAME_MAX on Linux and macOS).
    public static let nameMax = 255

    /// 8 hex digits of a hash of this machine's host name. A pid means something only on the host
    /// that issued it: in a directory shared between machines or containers (NFS, a CI volume), a
    /// file written elsewhere is never taken for a dead process's.
    public static let hostTag: String = {
        var buf = [Int8](repeating: 0, count: 256)
        let name = gethostname(&buf, buf.count - 1) == 0 ? buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) } : []
        var h: UInt32 = 0x811C_9DC5
        for b in name { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }()

    /// `.edgequant.tmp-<pid>-<host>.<name>`, the name cut (at a UTF-8 character boundary) so that the
    /// whole fits `nameMax` bytes whatever the length of a legal final name.
    public static func tempName(for path: String) -> String { tempName(for: path, pid: getpid()) }

    /// The temporary name process `pid` of host `host` would use (tests make leftovers with it).
    public static func tempName(for path: String, pid: Int32, host: String = hostTag) -> String {
        let (dir, base) = split(path)
        let head = "\(tempPrefix)\(pid)-\(host)."
        var kept: [UInt8] = []
        let room = nameMax - head.utf8.count
        for ch in base.unicodeScalars {
            let u = Array(String(ch).utf8)
            if kept.count + u.count > room { break }
            kept += u
        }
        return dir + head + String(decoding: kept, as: UTF8.self)
    }

    public init(path: String) throws(FileIOError) {
        finalPath = path
        try OutputFile.checkDestination(path)
        tempPath = OutputFile.tempName(for: path)
        let (dir, _) = OutputFile.split(path)
        TempFiles.sweep(directory: dir.isEmpty ? "." : dir == "/" ? "/" : String(dir.dropLast()))
        if let e = OutputFaults.shared.fault(for: path, op: .create) {
            throw FileIOError.writeFailed(path: path, operation: "cannot create output", errno: e)
        }
        // registered before it exists, so that a sweep by another thread of this process never
        // takes it for the leftover of an earlier process with our pid
        guard TempFileRegistry.shared.add(tempPath) else {
            throw FileIOError.alreadyBeingWritten(path: path)
        }
        // O_EXCL | O_NOFOLLOW: never write through something planted at the temporary name
        var f = open(tempPath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if f < 0, errno == EEXIST {
            // ours by name and pid, but not open here: left by an earlier process that had our pid
            unlink(tempPath)
            f = open(tempPath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        }
        guard f >= 0 else {
            let e = errno
            TempFileRegistry.shared.remove(tempPath)
            throw FileIOError.writeFailed(path: path, operation: "cannot create output", errno: e)
        }
        fd = f
    }

    deinit {
        if !committed { abort() }
    }

    /// Refuses a destination that cannot or must not be replaced by a new file.
    public static func checkDestination(_ path: String) throws(FileIOError) {
        func refuse(_ m: String) -> FileIOError { .destinationRefused(path: path, reason: m) }
        let (_, base) = split(path)
        if base.isEmpty || base == "." || base == ".." { throw refuse("names a directory, not an output file") }
        if base.utf8.count > nameMax {
            throw refuse("file name is \(base.utf8.count) bytes, longer than the \(nameMax)-byte limit")
        }
        var lst = stat()
        guard lstat(path, &lst) == 0 else {
            let e = errno
            if e == ENOENT { return }
            throw FileIOError.writeFailed(path: path, operation: "cannot write output", errno: e)
        }
        var st = lst
        if (lst.st_mode & S_IFMT) == S_IFLNK {
            guard stat(path, &st) == 0 else {
                let e = errno
                let target = readLink(path).map { " (to \($0))" } ?? ""
                if e == ENOENT { throw refuse("is a dangling symlink\(target); refusing to write through it") }
                throw refuse("is a symlink\(target) that cannot be followed: \(systemError(e))")
            }
        }
        if let why = InputFile.notRegular(st.st_mode) {
            throw refuse(why == "is a directory" ? "is a directory; name a file to write" : "\(why), not a regular file; refusing to replace it")
        }
        if InputRegistry.shared.contains(st) {
            throw refuse("is an input of this command; refusing to overwrite it")
        }
    }

    /// Sets the final size up front and reserves the disk space, so that a disk too small fails
    /// now rather than after the work; the gaps (alignment padding) read as zeros.
    public func setSize(_ size: Int) throws(FileIOError) {
        if let e = OutputFaults.shared.fault(for: finalPath, op: .reserve(size)) {
            throw fail("cannot reserve \(size) bytes for the output", e)
        }
        #if canImport(Glibc)
        if size > 0 {
            let r = posix_fallocate(fd, 0, off_t(size))
            // file systems without fallocate (EINVAL/EOPNOTSUPP) just get the sparse size below
            if r == ENOSPC || r == EDQUOT || r == EFBIG || r == EIO {
                throw fail("cannot reserve \(size) bytes for the output", r)
            }
        }
        #endif
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = errno
            throw fail("cannot size output to \(size) bytes", e)
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(FileIOError) {
        if let e = OutputFaults.shared.fault(for: finalPath, op: .write(offset + bytes.count)) {
            throw fail("write failed at offset \(offset)", e)
        }
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw fail("write failed at offset \(offset + done)", e)
            }
            done += n
        }
    }

    public func write(_ bytes: [UInt8], at offset: Int) throws(FileIOError) {
        let r: Result<Void, FileIOError> = bytes.withUnsafeBytes { b in
            do throws(FileIOError) { try write(b, at: offset); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    /// fsync, close, rename into place, and fsync the directory so the rename itself is durable.
    public func commit() throws(FileIOError) {
        if let e = OutputFaults.shared.fault(for: finalPath, op: .sync) { throw fail("fsync failed", e) }
        guard fsync(fd) == 0 else {
            let e = errno
            throw fail("fsync failed", e)
        }
        guard close(fd) == 0 else {
            let e = errno
            fd = -1
            throw fail("close failed", e)
        }
        fd = -1
        guard rename(tempPath, finalPath) == 0 else {
            let e = errno
            unlink(tempPath)
            TempFileRegistry.shared.remove(tempPath)
            committed = true
            throw FileIOError.writeFailed(path: finalPath, operation: "cannot rename temporary file into place", errno: e)
        }
        committed = true
        TempFileRegistry.shared.remove(tempPath)
        let (dir, _) = OutputFile.split(finalPath)
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    public func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempPath)
        TempFileRegistry.shared.remove(tempPath)
        committed = true
    }

    private func fail(_ operation: String, _ e: Int32) -> FileIOError { .writeFailed(path: finalPath, operation: operation, errno: e) }

    /// ("dir/", "name") — the directory part keeps its trailing slash, and is "" for a bare name.
    static func split(_ path: String) -> (dir: String, base: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[...slash]), String(path[path.index(after: slash)...]))
    }

    static func readLink(_ path: String) -> String? {
        var buf = [Int8](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Temporary outputs still open, so that a signal handler can remove them before the process dies.
public final class TempFileRegistry: @unchecked Sendable {
    public static let shared = TempFileRegistry()
    private var lock = pthread_mutex_t()
    private var paths: Set<String> = []

    init() { pthread_mutex_init(&lock, nil) }

    /// False if `p` is already registered (an output to the same path still open here).
    func add(_ p: String) -> Bool {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return paths.insert(p).inserted
    }
    func remove(_ p: String) { pthread_mutex_lock(&lock); paths.remove(p); pthread_mutex_unlock(&lock) }
    func contains(_ p: String) -> Bool {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return paths.contains(p)
    }
    /// Whether a temporary file by this name (any directory) is open in this process.
    func containsName(_ name: String) -> Bool {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return paths.contains { OutputFile.split($0).base == name }
    }

    /// Unlinks every registered temp file; called from the interrupt path.
    public func removeAll() {
        pthread_mutex_lock(&lock)
        for p in paths { unlink(p) }
        paths.removeAll()
        pthread_mutex_unlock(&lock)
    }
}

/// A test double of the disk under `OutputFile`: outputs under a directory behave as on a file
/// system that refuses to create files (`EROFS`, `EACCES`) or holds only `capacity` bytes per file
/// (`ENOSPC`, `EDQUOT`, `EIO`: the reservation or the write past it fails). Used where a real small
/// or read-only file system cannot be mounted; nothing outside tests installs one.
public final class OutputFaults: @unchecked Sendable {
    public static let shared = OutputFaults()

    public struct Fault: Sendable {
        public var directory: String
        public var errno: Int32
        public var capacity: Int
        public init(directory: String, errno: Int32, capacity: Int = 0) {
            self.directory = directory.hasSuffix("/") ? directory : directory + "/"
            self.errno = errno
            self.capacity = capacity
        }
    }

    enum Op { case create, reserve(Int), write(Int), sync }

    private var lock = pthread_mutex_t()
    private var faults: [Fault] = []

    init() { pthread_mutex_init(&lock, nil) }

    public func install(_ f: Fault) { pthread_mutex_lock(&lock); faults.append(f); pthread_mutex_unlock(&lock) }

    public func remove(directory: String) {
        let d = directory.hasSuffix("/") ? directory : directory + "/"
        pthread_mutex_lock(&lock); faults.removeAll { $0.directory == d }; pthread_mutex_unlock(&lock)
    }

    func fault(for path: String, op: Op) -> Int32? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        guard !faults.isEmpty, let f = faults.first(where: { path.hasPrefix($0.directory) }) else { return nil }
        let createFault = f.errno == EROFS || f.errno == EACCES || f.errno == EPERM
        switch op {
        case .create: return createFault ? f.errno : nil
        case .reserve(let n), .write(let n): return !createFault && n > f.capacity ? f.errno : nil
        case .sync: return nil
        }
    }
}
