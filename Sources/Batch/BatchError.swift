import MappedIO

/// Faults of a batch run's own files: reports, shard merges, model fingerprints, output folders.
public enum BatchError: FileFault, Equatable {
    case unreadable(path: String)
    /// A report file that is not JSON or not a batch report; the detail says how.
    case invalidReport(path: String, detail: String)
    /// Shard reports that do not add up to one run of the manifest; the detail says how.
    case cannotMerge(detail: String)
    /// A model file or directory that cannot be fingerprinted (read, listed); the detail says why.
    case fingerprint(path: String, detail: String)
    case cannotCreateDirectory(path: String, detail: String)

    public var path: String {
        switch self {
        case .unreadable(let p), .invalidReport(let p, _), .fingerprint(let p, _), .cannotCreateDirectory(let p, _): return p
        case .cannotMerge: return ""
        }
    }

    public var fault: String {
        switch self {
        case .unreadable: return "cannot read"
        case .invalidReport(_, let d), .fingerprint(_, let d): return d
        case .cannotMerge(let d): return "merge: \(d)"
        case .cannotCreateDirectory(_, let d): return "cannot create directory (\(d))"
        }
    }
}
