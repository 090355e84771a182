#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening inputs without hanging, and remembering them so that no output overwrites one.
///
/// `open(O_RDONLY)` on a FIFO blocks until a writer appears, and reading a device never ends, so
/// every input is opened with `O_NONBLOCK` (which opens a FIFO at once) and refused by `fstat`
/// unless it is a regular file. Each input opened is recorded by (device, inode) in
/// `InputRegistry`, which `OutputFile` consults before it creates anything.
public enum InputFile {
    /// Opens a regular file for reading, following symlinks; anything else is refused at once.
    /// The caller closes the descriptor.
    public static func open(_ path: String) throws(FileIOError) -> (fd: Int32, stat: stat) {
        let fd = _open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let e = errno
            throw e == ENOENT ? FileIOError.notFound(path: path) : FileIOError.cannotOpen(path: path, errno: e)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw FileIOError.cannotStat(path: path, errno: e)
        }
        if let why = notRegular(st.st_mode) {
            close(fd)
            throw FileIOError.notRegular(path: path, what: why, refusal: "refusing to read it")
        }
        // reads of a regular file never block; clear the flag anyway for whoever reads the descriptor
        let fl = fcntl(fd, F_GETFL)
        if fl >= 0 { _ = fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) }
        return (fd, st)
    }

    /// The whole file, read through `open(_:)`; remembered as an input of this process.
    public static func readAll(_ path: String) throws(FileIOError) -> [UInt8] {
        let (fd, st) = try open(path)
        defer { close(fd) }
        InputRegistry.shared.remember(st)
        return try readFully(fd, path: path, sizeHint: Int(st.st_size), limit: nil)
    }

    /// Up to `count` bytes from the start of a regular file (to sniff its format).
    public static func readPrefix(_ path: String, count: Int) throws(FileIOError) -> [UInt8] {
        let (fd, _) = try open(path)
        defer { close(fd) }
        return try readFully(fd, path: path, sizeHint: max(0, count), limit: max(0, count))
    }

    /// Reads to the end, or to `limit` bytes; a file that grew since its stat is read whole.
    private static func readFully(_ fd: Int32, path: String, sizeHint: Int, limit: Int?) throws(FileIOError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: sizeHint)
        var done = 0
        while done < (limit ?? Int.max) {
            if done == out.count { out.append(contentsOf: [UInt8](repeating: 0, count: max(4096, out.count))) }
            let want = min(out.count, limit ?? Int.max) - done
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, want) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileIOError.readFailed(path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return Array(out[..<done])
    }

    /// Refuses `path` if it exists and (following symlinks) is not a regular file — for inputs that
    /// other code opens with APIs that would block on a FIFO. A missing file is the reader's business.
    public static func requireRegularIfPresent(_ path: String) throws(FileIOError) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }
        if let why = notRegular(st.st_mode) {
            throw FileIOError.notRegular(path: path, what: why, refusal: "refusing to read it")
        }
    }

    /// Nil for a regular file, else what it is ("is a FIFO", "is a directory", …).
    public static func notRegular(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "is a directory"
        case S_IFIFO: return "is a FIFO (named pipe)"
        case S_IFCHR: return "is a character device"
        case S_IFBLK: return "is a block device"
        case S_IFSOCK: return "is a socket"
        default: return "is a special file"
        }
    }

    private static func _open(_ path: String, _ flags: Int32) -> Int32 {
        #if canImport(Glibc)
        return Glibc.open(path, flags)
        #else
        return Darwin.open(path, flags)
        #endif
    }
}

/// The files this process reads, by (device, inode), so that an output never replaces one: a
/// mapped file while it is mapped, a file read whole (config, text, index) for the process's life
/// (with its mtime, so that a later file reusing a freed inode is not mistaken for it).
public final class InputRegistry: @unchecked Sendable {
    public static let shared = InputRegistry()

    struct Key: Hashable {
        var dev: UInt64
        var ino: UInt64
    }

    private var lock = pthread_mutex_t()
    private var mapped: [Key: Int] = [:]
    private var remembered: [Key: Int64] = [:]

    init() { pthread_mutex_init(&lock, nil) }

    static func key(_ st: stat) -> Key { Key(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino)) }

    static func mtimeNS(_ st: stat) -> Int64 {
        #if canImport(Darwin)
        return Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
        return Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
    }

    /// A mapped input: counted until `release`.
    func hold(_ st: stat) {
        pthread_mutex_lock(&lock); mapped[Self.key(st), default: 0] += 1; pthread_mutex_unlock(&lock)
    }

    func release(_ st: stat) {
        pthread_mutex_lock(&lock)
        let k = Self.key(st)
        if let n = mapped[k] { mapped[k] = n > 1 ? n - 1 : nil }
        pthread_mutex_unlock(&lock)
    }

    /// An input read whole.
    public func remember(_ st: stat) {
        pthread_mutex_lock(&lock); remembered[Self.key(st)] = Self.mtimeNS(st); pthread_mutex_unlock(&lock)
    }

    /// Remembers the file at `path` (following symlinks) as an input, if it exists: for inputs read
    /// by code that does not go through `InputFile` (a model directory's config and tokenizer files).
    public func remember(path: String) {
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { remember(st) }
    }

    /// Whether the file `st` describes is one of this process's inputs.
    public func contains(_ st: stat) -> Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        let k = Self.key(st)
        if mapped[k] != nil { return true }
        return remembered[k] == Self.mtimeNS(st)
    }
}
