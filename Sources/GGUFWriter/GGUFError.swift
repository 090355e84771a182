import MappedIO

/// Faults of reading a GGUF file (opening and mapping it fail with `FileIOError`).
public enum GGUFError: FileFault, Equatable {
    /// The bytes break the GGUF format; the detail names the byte, key or tensor.
    case malformed(path: String, detail: String)
    /// The splits of a model do not belong together, or one is missing; the detail says how.
    case badSplit(path: String, detail: String)
    /// A model cannot be split as asked (a tensor larger than the size limit).
    case cannotSplit(path: String, detail: String)

    public var path: String {
        switch self { case .malformed(let p, _), .badSplit(let p, _), .cannotSplit(let p, _): return p }
    }

    public var fault: String {
        switch self { case .malformed(_, let d), .badSplit(_, let d), .cannotSplit(_, let d): return d }
    }
}
