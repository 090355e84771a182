import MappedIO

/// Faults of reading a GGUF file (opening and mapping it fail with `FileIOError`).
public enum GGUFError: FileFault, Equatable {
    /// The bytes break the GGUF format; the detail names the byte, key or tensor.
    case malformed(path: String, detail: String)

    public var path: String {
        switch self { case .malformed(let p, _): return p }
    }

    public var fault: String {
        switch self { case .malformed(_, let d): return d }
    }
}
