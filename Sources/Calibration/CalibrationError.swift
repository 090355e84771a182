import MappedIO

/// Faults of calibration: an importance matrix or sensitivity file that cannot be used, a
/// calibration text too short, activations that are not numbers, a budget nothing fits.
public enum CalibrationError: FileFault, Equatable {
    /// An imatrix file (GGUF or legacy .dat) that is malformed or incomplete; the detail says how.
    case imatrix(path: String, detail: String)
    /// A sensitivity file that is malformed or measured for other weights; the detail says how.
    case sensitivity(path: String, detail: String)
    /// The calibration text or context cannot make the chunks asked for; the detail says why.
    case text(path: String, detail: String)
    /// The forward pass over the calibration text gave inf or NaN activations into `tensor`.
    case nonFiniteActivations(path: String, tensor: String, chunk: Int)
    /// No mix of types fits `target` bytes (`smallest`: the smallest mix, when known).
    case budgetTooSmall(path: String, target: Int, smallest: Int?)

    public var path: String {
        switch self {
        case .imatrix(let p, _), .sensitivity(let p, _), .text(let p, _), .nonFiniteActivations(let p, _, _),
             .budgetTooSmall(let p, _, _):
            return p
        }
    }

    public var fault: String {
        switch self {
        case .imatrix(_, let d): return oneLine(d, limit: 300)
        case .sensitivity(_, let d), .text(_, let d): return d
        case .nonFiniteActivations(_, let t, let c): return "non-finite values detected in \(t) (chunk \(c + 1))"
        case .budgetTooSmall(_, let t, let s): return "no mix of types fits \(t) bytes" + (s.map { " (at least \($0) bytes)" } ?? "")
        }
    }
}
