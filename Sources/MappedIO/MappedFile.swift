#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Pages are faulted in on access and can be evicted by
/// the kernel, so reading a tensor never costs more resident memory than the kernel chooses.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    private let base: UnsafeRawPointer?

    /// (device, inode) of the file, held in `InputRegistry` while it is mapped.
    private let identity: stat

    public init(path: String) throws(FileIOError) {
        self.path = path
        // O_NONBLOCK: a FIFO or device is refused at once instead of hanging in open()
        let (fd, st) = try InputFile.open(path)
        defer { close(fd) }
        size = Int(st.st_size)
        identity = st
        if size == 0 {
            base = nil
        } else {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else { throw FileIOError.cannotMap(path: path, errno: errno) }
            base = UnsafeRawPointer(p)
        }
        InputRegistry.shared.hold(st)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
        InputRegistry.shared.release(identity)
    }

    /// Bytes `range` of the file; the caller has checked the range against `size`.
    public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= size)
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    public var all: UnsafeRawBufferPointer { bytes(0..<size) }

    /// Tells the kernel a range will be read once, front to back, and may be dropped afterwards.
    public func adviseSequential(_ range: Range<Int>) {
        guard let base, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), range.upperBound - start, MADV_SEQUENTIAL)
    }

    /// Releases the pages of a range already consumed, so a model larger than RAM streams through.
    public func adviseDone(_ range: Range<Int>) {
        guard let base, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), range.upperBound - start, MADV_DONTNEED)
    }
}

func systemError(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

/// Whether `path` is a directory (following symlinks).
public func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}
