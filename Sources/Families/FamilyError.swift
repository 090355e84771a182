import MappedIO

/// Faults of picking a model family and reading its hyper-parameters.
public enum FamilyError: FileFault, Equatable {
    /// config.json's `architectures[0]` names no family we convert; `supported` lists those we do.
    case unsupportedCheckpoint(path: String, architecture: String, supported: String)
    /// A GGUF without general.architecture.
    case noArchitecture(path: String, supported: String)
    /// A GGUF whose architecture we cannot run.
    case unsupportedForInference(path: String, architecture: String, supported: String)
    /// config.json lacks or misstates a hyper-parameter this family needs; the detail says which.
    case hyperParameters(path: String, detail: String)

    public var path: String {
        switch self {
        case .unsupportedCheckpoint(let p, _, _), .noArchitecture(let p, _), .unsupportedForInference(let p, _, _),
             .hyperParameters(let p, _):
            return p
        }
    }

    public var fault: String {
        switch self {
        case .unsupportedCheckpoint(_, let a, let s): return "unsupported architecture \(displayName(a)); supported: \(s)"
        case .noArchitecture(_, let s): return "no general.architecture; supported for inference: \(s)"
        case .unsupportedForInference(_, let a, let s): return "unsupported architecture \(displayName(a)) for inference (\(s))"
        case .hyperParameters(_, let d): return d
        }
    }
}
