import GGMLCore
import MappedIO

/// Faults of a comparison session over one model.
public enum ComparisonError: FileFault, Equatable {
    /// The evaluation text gives fewer tokens than one chunk.
    case textTooShort(path: String, tokens: Int, ctx: Int)
    /// A type name that is neither a llama-quantize file type nor one we simulate.
    case unknownType(path: String, type: String)
    /// The NF4 simulation cannot read a tensor's type.
    case nf4Unsupported(path: String, tensor: String, type: GGMLType)

    public var path: String {
        switch self {
        case .textTooShort(let p, _, _), .unknownType(let p, _), .nf4Unsupported(let p, _, _): return p
        }
    }

    public var fault: String {
        switch self {
        case .textTooShort(_, let n, let c): return "gives \(n) tokens, fewer than one chunk of \(c)"
        case .unknownType(_, let t): return "unknown type \(t)"
        case .nf4Unsupported(_, let n, let t): return "nf4: cannot write \(t.name) for \(n)"
        }
    }
}
