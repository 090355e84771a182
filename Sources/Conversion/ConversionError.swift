import GGMLCore
import MappedIO

/// Faults of planning and writing a conversion or quantization: the checkpoint, its tensors, the
/// importance matrix, or the metadata a policy reads.
public enum ConversionError: FileFault, Equatable {
    case notModelDirectory(path: String)
    /// A directory without config.json: the message says what a model directory holds.
    case noConfig(directory: String)
    /// A checkpoint tensor this family has no GGUF name for.
    case unmappedTensor(path: String, name: String, architecture: String)
    /// A tensor we cannot convert or write as planned; the detail says why.
    case unsupportedTensor(path: String, name: String, detail: String)
    /// A tensor the family needs is absent from the checkpoint.
    case missingTensor(path: String, name: String)
    /// A tensor holds inf or NaN where the target type has no defined result for it.
    case nonFiniteTensor(path: String, name: String, row: Int, type: GGMLType)
    /// A source tensor type we cannot read.
    case unreadableType(path: String, type: GGMLType)
    /// A quantized tensor would be quantized again without --allow-requantize.
    case requantize(path: String, name: String, type: GGMLType)
    /// config.json disagrees with the checkpoint's tensors, or its naming metadata cannot be derived.
    case config(path: String, detail: String)
    /// The importance matrix cannot be applied; the detail says why.
    case imatrix(path: String, detail: String)
    /// A GGUF's metadata lacks or misstates what the quantization policy reads.
    case metadata(path: String, detail: String)
    /// A tensor's type needs importance weights (iq1/iq2/iq3_xxs), and no imatrix was given.
    case imatrixRequired(path: String, name: String, type: GGMLType)
    /// The imatrix has no entry for a tensor whose type needs one.
    case imatrixMissing(path: String, name: String, type: GGMLType)

    public var path: String {
        switch self {
        case .notModelDirectory(let p), .noConfig(let p), .unmappedTensor(let p, _, _), .unsupportedTensor(let p, _, _), .missingTensor(let p, _),
             .nonFiniteTensor(let p, _, _, _), .unreadableType(let p, _), .requantize(let p, _, _), .config(let p, _),
             .imatrix(let p, _), .metadata(let p, _), .imatrixRequired(let p, _, _), .imatrixMissing(let p, _, _):
            return p
        }
    }

    public var fault: String {
        switch self {
        case .notModelDirectory: return "not a model directory (no such directory)"
        case .noConfig:
            return "not a model directory: no config.json (a Hugging Face checkpoint directory holds config.json, "
                + "the weights as model.safetensors or shards listed in model.safetensors.index.json, "
                + "and tokenizer.json or tokenizer.model)"
        case .unmappedTensor(_, let n, let a): return "tensor \"\(n)\" has no GGUF name for \(a)"
        case .unsupportedTensor(_, let n, let d): return "tensor \"\(n)\": \(d)"
        case .missingTensor(_, let n): return "checkpoint has no tensor for \(n)"
        case .nonFiniteTensor(_, let n, let r, let t):
            return "tensor \"\(n)\" holds inf or NaN (row \(r)); \(t.name) has no defined result for it"
        case .unreadableType(_, let t): return "cannot read tensors of type \(t.name)"
        case .requantize(_, let n, let t):
            return "tensor \"\(n)\" is already \(t.name); requantizing is disabled (pass --allow-requantize)"
        case .config(_, let d), .imatrix(_, let d), .metadata(_, let d): return d
        case .imatrixRequired(_, let n, let t):
            return "this quantization requires an importance matrix (offending tensor \(n), target type \(t.name)): "
                + "give --imatrix FILE or --calibrate TEXT"
        case .imatrixMissing(_, let n, let t):
            return "missing importance matrix for tensor \(n) in a very low-bit quantization (\(t.name)): the result would be garbage"
        }
    }
}
