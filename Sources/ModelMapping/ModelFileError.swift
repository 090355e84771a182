import MappedIO

/// Faults of a model directory's own files: config.json, tokenizer files, tokenizer.model.
public enum ModelFileError: FileFault, Equatable {
    /// A file that must exist does not.
    case missing(path: String)
    case unreadable(path: String)
    case invalidJSON(path: String, detail: String)
    case notJSONObject(path: String)
    /// config.json lacks or misstates a hyper-parameter; the detail names it.
    case config(path: String, detail: String)
    /// A tokenizer file (tokenizer.json, tokenizer_config.json, added_tokens.json) is inconsistent.
    case tokenizer(path: String, detail: String)
    /// The directory has neither tokenizer.model nor tokenizer.json.
    case noTokenizer(directory: String)
    /// tokenizer.model is not a SentencePiece model protobuf.
    case sentencePiece(path: String, detail: String)

    public var path: String {
        switch self {
        case .missing(let p), .unreadable(let p), .invalidJSON(let p, _), .notJSONObject(let p), .config(let p, _),
             .tokenizer(let p, _), .noTokenizer(let p), .sentencePiece(let p, _):
            return p
        }
    }

    public var fault: String {
        switch self {
        case .missing: return "missing"
        case .unreadable: return "cannot read"
        case .invalidJSON(_, let d): return "invalid JSON: \(d)"
        case .notJSONObject: return "not a JSON object"
        case .config(_, let d), .tokenizer(_, let d), .sentencePiece(_, let d): return d
        case .noTokenizer: return "no tokenizer.model or tokenizer.json: cannot write the vocabulary"
        }
    }
}
