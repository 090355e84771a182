import Foundation
import MappedIO

/// Faults of loading and running a model: its GGUF lacks what the forward pass reads, a token
/// falls outside its vocabulary, or a run would not fit in memory.
public enum InferenceError: FileFault, Equatable {
    /// A missing or misshapen tensor or hyper-parameter; the detail names it.
    case invalidModel(path: String, detail: String)
    /// A token id (from a file of ids, a logits file, metadata) with no embedding row.
    case tokenOutsideVocabulary(path: String, id: Int32, vocabulary: Int)
    /// `what` needs `need` bytes (nil: more than an Int holds) `why`, beyond the machine's `limit`.
    case doesNotFit(path: String, what: String, need: Int?, why: String, limit: Int)

    public var path: String {
        switch self {
        case .invalidModel(let p, _), .tokenOutsideVocabulary(let p, _, _), .doesNotFit(let p, _, _, _, _): return p
        }
    }

    public var fault: String {
        switch self {
        case .invalidModel(_, let d): return d
        case .tokenOutsideVocabulary(_, let id, let n): return "token id \(id) is outside the model's vocabulary of \(n)"
        case .doesNotFit(_, let what, let need, let why, let limit):
            return "\(what) need " + (need.map { String(format: "%.1f GB", Double($0) / 1e9) } ?? "more than 2^63 bytes")
                + " \(why); " + String(format: "this machine has %.1f GB", Double(limit) / 1e9)
        }
    }
}
