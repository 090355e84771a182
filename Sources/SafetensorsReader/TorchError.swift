import MappedIO

/// Faults of reading a PyTorch `.bin` checkpoint (torch.save's zip of a pickled state dict).
///
/// Pickle faults carry the byte offset inside `data.pkl`, so a hostile or damaged file can be
/// inspected with `pickletools.dis`; tensor faults carry the state-dict key.
public enum TorchError: FileFault, Equatable {
    /// The file does not start with a zip local header, as torch.load's own `_is_zipfile` checks.
    case notZip(path: String)
    /// The pre-1.6 format: a bare pickle stream whose loading needs arbitrary unpickling.
    case legacyFormat(path: String)
    /// The zip container is malformed; the detail says how.
    case badZip(path: String, detail: String)
    /// A compressed (or encrypted) entry: torch.save stores everything, and data must be mappable.
    case compressedEntry(path: String, entry: String, method: Int)
    /// `<prefix>/byteorder` says the storages are not little-endian.
    case byteOrder(path: String, found: String)
    case unsupportedOpcode(path: String, opcode: UInt8, offset: Int)
    /// A GLOBAL outside the allow-list; nothing is ever imported or called.
    case disallowedGlobal(path: String, module: String, name: String, offset: Int)
    /// REDUCE applied to something that is not one of the callables modelled as data.
    case disallowedReduce(path: String, callable: String, offset: Int)
    /// A pickle that is well-formed opcode by opcode but not what torch.save writes, or one that
    /// exceeds a size limit; the detail says how.
    case badPickle(path: String, detail: String)
    /// A storage (`<prefix>/data/<key>`) missing or not matching its persistent id.
    case badStorage(path: String, key: String, detail: String)
    /// A tensor whose description cannot be mapped onto its storage.
    case badTensor(path: String, name: String, detail: String)
    /// A tensor whose strides are not the row-major ones for its shape: its bytes are not one run.
    case nonContiguous(path: String, name: String, shape: [Int], stride: [Int])
    /// A state-dict value that is not a tensor (an optimizer step, a nested dict, …).
    case notATensor(path: String, key: String, found: String)
    case duplicateTensor(path: String, name: String)
    /// The pickled object is not a dict (e.g. a whole pickled model).
    case notAStateDict(path: String, found: String)

    public var path: String {
        switch self {
        case .notZip(let p), .legacyFormat(let p), .badZip(let p, _), .compressedEntry(let p, _, _), .byteOrder(let p, _),
             .unsupportedOpcode(let p, _, _), .disallowedGlobal(let p, _, _, _), .disallowedReduce(let p, _, _),
             .badPickle(let p, _), .badStorage(let p, _, _), .badTensor(let p, _, _), .nonContiguous(let p, _, _, _),
             .notATensor(let p, _, _), .duplicateTensor(let p, _), .notAStateDict(let p, _):
            return p
        }
    }

    public var fault: String {
        switch self {
        case .notZip:
            return "not a zip archive, so not a torch.save file of torch ≥ 1.6; convert it to safetensors"
        case .legacyFormat:
            return "legacy (pre-1.6) torch.save format, which only an unrestricted unpickler reads; "
                + "re-save it with torch ≥ 1.6 (torch.save(torch.load(f, weights_only=True), f)) or convert it to safetensors"
        case .badZip(_, let d):
            return "zip archive: \(oneLine(d, limit: 400))"
        case .compressedEntry(_, let e, let m):
            let how = m == 8 ? "deflated" : m == -1 ? "encrypted" : "compressed (method \(m))"
            return "zip entry \"\(displayName(e))\" is \(how); torch.save stores entries uncompressed, "
                + "re-save the checkpoint with torch.save or convert it to safetensors"
        case .byteOrder(_, let b):
            return "storages are \"\(displayName(b))\"-endian; only little-endian checkpoints are read"
        case .unsupportedOpcode(_, let op, let off):
            return "data.pkl: unsupported pickle opcode 0x\(hex2(op)) at byte \(off) (only what torch.save writes for a state dict is read)"
        case .disallowedGlobal(_, let m, let n, let off):
            return "data.pkl: pickle GLOBAL \"\(displayName(m)) \(displayName(n))\" at byte \(off) is not allowed "
                + "(only tensor, storage and OrderedDict globals are; nothing in the file is imported or run)"
        case .disallowedReduce(_, let c, let off):
            return "data.pkl: REDUCE of \(oneLine(c, limit: 120)) at byte \(off) is not allowed (only OrderedDict and tensor rebuilds are)"
        case .badPickle(_, let d):
            return "data.pkl: \(oneLine(d, limit: 400))"
        case .badStorage(_, let k, let d):
            return "storage \"\(displayName(k))\": \(oneLine(d, limit: 400))"
        case .badTensor(_, let n, let d):
            return "tensor \"\(displayName(n))\": \(oneLine(d, limit: 400))"
        case .nonContiguous(_, let n, let shape, let stride):
            return "tensor \"\(displayName(n))\" is not contiguous (shape \(shape), stride \(stride)); "
                + "save it with .contiguous() or convert the checkpoint to safetensors"
        case .notATensor(_, let k, let found):
            return "state dict entry \"\(displayName(k))\" is \(withArticle(found)), not a tensor"
        case .duplicateTensor(_, let n):
            return "tensor \"\(displayName(n))\" appears twice in the state dict"
        case .notAStateDict(_, let found):
            return "data.pkl holds \(withArticle(found)), not a state dict (a dict of tensors)"
        }
    }
}

/// "an int", "a str", "an OrderedDict": Python type names in messages.
func withArticle(_ typeName: String) -> String {
    (typeName.first.map { "aeiouAEIOU".contains($0) } ?? false ? "an " : "a ") + typeName
}

func hex2(_ b: UInt8) -> String {
    let s = String(b, radix: 16)
    return s.count < 2 ? "0" + s : s
}
