import MappedIO

/// Faults of building a tokenizer from GGUF metadata or a model directory's tokenizer files.
public enum TokenizerError: FileFault, Equatable {
    /// The vocabulary, merges, scores or special tokens are inconsistent; the detail says how.
    case invalid(path: String, detail: String)
    /// A model directory with neither tokenizer.model nor tokenizer.json.
    case noTokenizer(directory: String)

    public var path: String {
        switch self { case .invalid(let p, _), .noTokenizer(let p): return p }
    }

    public var fault: String {
        switch self {
        case .invalid(_, let d): return oneLine(d, limit: 400)
        case .noTokenizer: return "no tokenizer.model or tokenizer.json"
        }
    }
}
