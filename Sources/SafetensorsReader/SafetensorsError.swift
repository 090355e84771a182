import MappedIO

/// Faults of reading a safetensors checkpoint: one file's header, or the index of a sharded one.
public enum SafetensorsError: FileFault, Equatable {
    case noSuchPath(path: String)
    /// A directory holding neither model.safetensors nor model.safetensors.index.json.
    case noCheckpoint(directory: String)
    /// A tensor name found in two shards.
    case duplicateTensor(path: String, name: String)
    /// model.safetensors.index.json is not what it must be; the detail says how.
    case badIndex(path: String, detail: String)
    /// A .safetensors file's header or data section is malformed; the detail says how.
    case malformed(path: String, detail: String)

    public var path: String {
        switch self {
        case .noSuchPath(let p), .noCheckpoint(let p), .duplicateTensor(let p, _), .badIndex(let p, _),
             .malformed(let p, _):
            return p
        }
    }

    public var fault: String {
        switch self {
        case .noSuchPath: return "no such file or directory"
        case .noCheckpoint:
            return "no \(SafetensorsCheckpoint.singleName), \(SafetensorsCheckpoint.indexName), \(SafetensorsCheckpoint.torchSingleName) "
                + "or \(SafetensorsCheckpoint.torchIndexName) in this directory"
        case .duplicateTensor(_, let n): return "tensor \"\(n)\" also appears in another shard"
        case .badIndex(_, let d): return d
        case .malformed(_, let d): return oneLine(d, limit: 400)
        }
    }
}
