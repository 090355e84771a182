import MappedIO

/// Faults of measuring a model: its text, its reference logits, or logits that are not numbers.
public enum EvaluationError: FileFault, Equatable {
    case noSuchModel(path: String)
    /// The tokenizer and the embedding disagree on the vocabulary size.
    case vocabularyMismatch(path: String, tokens: Int, rows: Int)
    /// The forward pass gave inf or NaN at a position (`chunk` from 0): the weights hold inf or NaN.
    case nonFiniteLogits(path: String, chunk: Int, position: Int)
    /// A gzip-compressed text that cannot be read; the detail says how.
    case gzip(path: String, detail: String)
    /// A `--save-logits` file that is not one, or does not belong to this run; the detail says how.
    case logitsFile(path: String, detail: String)
    /// The reference model's vocabulary differs from the model's.
    case referenceVocabulary(path: String, reference: Int, model: Int)
    /// The evaluation text or context cannot make one chunk; the detail says why.
    case tooShort(path: String, detail: String)

    public var path: String {
        switch self {
        case .noSuchModel(let p), .vocabularyMismatch(let p, _, _), .nonFiniteLogits(let p, _, _), .gzip(let p, _),
             .logitsFile(let p, _), .referenceVocabulary(let p, _, _), .tooShort(let p, _):
            return p
        }
    }

    public var fault: String {
        switch self {
        case .noSuchModel: return "no such file or directory"
        case .vocabularyMismatch(_, let t, let r): return "the vocabulary has \(t) tokens, the embedding \(r) rows"
        case .nonFiniteLogits(_, let c, let p):
            return "chunk \(c + 1), position \(p): the model's logits are not finite (inf or NaN); its weights hold inf or NaN values"
        case .gzip(_, let d), .logitsFile(_, let d), .tooShort(_, let d): return d
        case .referenceVocabulary(_, let r, let m): return "the reference's vocabulary of \(r) differs from the model's \(m)"
        }
    }
}
