import Foundation
import MappedIO

/// Faults the subcommands find themselves, before handing work to a library module.
enum CommandError: FileFault, Equatable {
    /// A path that must be a directory (of a checkpoint, of outputs to clean) is not one.
    case notADirectory(path: String, what: String)
    case cannotRemove(path: String, errno: Int32)
    /// An output's directory is not writable.
    case cannotWriteInto(path: String, directory: String, errno: Int32)
    /// A --token-ids file holds a word that is not a token id.
    case notATokenID(path: String, word: String)
    /// `convert` given a GGUF file, which `quantize` reads.
    case ggufGivenToConvert(path: String)

    var path: String {
        switch self {
        case .notADirectory(let p, _), .cannotRemove(let p, _), .cannotWriteInto(let p, _, _), .notATokenID(let p, _),
             .ggufGivenToConvert(let p):
            return p
        }
    }

    var fault: String {
        switch self {
        case .notADirectory(_, let what): return "not a \(what)"
        case .cannotRemove(_, let e): return "cannot remove: \(String(cString: strerror(e)))"
        case .cannotWriteInto(_, let d, let e): return "cannot write into \(d): \(String(cString: strerror(e)))"
        case .notATokenID(_, let w): return "\"\(displayName(w, limit: 40))\" is not a token id"
        case .ggufGivenToConvert(let p):
            return "is a GGUF file; convert reads Hugging Face checkpoints. To requantize it: edgequant quantize \(displayName(p)) OUT.gguf TYPE"
        }
    }
}
