/// What every module's error enum is: a fault in one file, printed as `path: fault` on one line.
///
/// Each module declares its own cases (`FileIOError.cannotMap`, `ConversionError.tensor`, …) so
/// that a caller can tell faults apart by type, while every one of them renders the same way: the
/// path shortened and escaped, the fault freed of control characters. A fault with no file (an
/// empty `path`) prints the fault alone.
public protocol FileFault: Error, Sendable, CustomStringConvertible {
    /// The file (or directory) at fault; empty when the fault belongs to no file.
    var path: String { get }
    /// What is wrong with it, one sentence without the path.
    var fault: String { get }
    /// The system's error number when writing an output failed for a reason of the machine
    /// (ENOSPC, EROFS, EIO, …) rather than of the input: batch reports it as exit 1, not as a
    /// failed job.
    var writeErrno: Int32? { get }
}

extension FileFault {
    public var writeErrno: Int32? { nil }
    public var isWriteFault: Bool { writeErrno != nil }
    public var description: String { path.isEmpty ? oneLine(fault) : "\(displayName(path)): \(oneLine(fault))" }
}

/// Faults of opening, mapping and writing files: the system's answer, kept as its error number.
public enum FileIOError: FileFault, Equatable {
    case notFound(path: String)
    case cannotOpen(path: String, errno: Int32)
    case cannotStat(path: String, errno: Int32)
    /// A FIFO, device or directory where a regular file is read or replaced: `what` says which
    /// ("is a FIFO"), `refusal` what we decline ("refusing to read it").
    case notRegular(path: String, what: String, refusal: String)
    case readFailed(path: String, errno: Int32)
    case cannotMap(path: String, errno: Int32)
    /// A destination that must not be replaced (an input of this run, a dangling symlink, a name
    /// too long, …).
    case destinationRefused(path: String, reason: String)
    case alreadyBeingWritten(path: String)
    /// A system call on an output failed: `operation` says which ("fsync failed", "cannot create
    /// output", …). A fault of the machine, not of the input.
    case writeFailed(path: String, operation: String, errno: Int32)

    public var path: String {
        switch self {
        case .notFound(let p), .cannotOpen(let p, _), .cannotStat(let p, _), .notRegular(let p, _, _),
             .readFailed(let p, _), .cannotMap(let p, _), .destinationRefused(let p, _),
             .alreadyBeingWritten(let p), .writeFailed(let p, _, _):
            return p
        }
    }

    public var fault: String {
        switch self {
        case .notFound: return "no such file"
        case .cannotOpen(_, let e): return "cannot open: \(systemError(e))"
        case .cannotStat(_, let e): return "cannot stat: \(systemError(e))"
        case .notRegular(_, let what, let refusal): return "\(what), not a regular file; \(refusal)"
        case .readFailed(_, let e): return "read failed: \(systemError(e))"
        case .cannotMap(_, let e): return "cannot mmap: \(systemError(e))"
        case .destinationRefused(_, let reason): return reason
        case .alreadyBeingWritten: return "is already being written by this process"
        case .writeFailed(_, let op, let e): return "\(op): \(systemError(e))"
        }
    }

    public var writeErrno: Int32? {
        if case .writeFailed(_, _, let e) = self { return e }
        return nil
    }
}
