import Foundation
import StrictJSON
import MappedIO

/// The weights of a model directory, found as convert_hf_to_gguf finds them: `model.safetensors`
/// or the shards `model.safetensors.index.json` lists; failing those, PyTorch's
/// `pytorch_model.bin`, the shards `pytorch_model.bin.index.json` lists, or every
/// `pytorch_model*.bin`. Shards are opened (mapped) up front, tensors read lazily.
public final class SafetensorsCheckpoint: @unchecked Sendable {
    public static let indexName = "model.safetensors.index.json"
    public static let singleName = "model.safetensors"
    public static let torchIndexName = "pytorch_model.bin.index.json"
    public static let torchSingleName = "pytorch_model.bin"

    public let directory: String
    /// Shard files in the order convert_hf_to_gguf reads them (sorted by file name).
    public let files: [any CheckpointFile]

    public struct Entry: Sendable {
        public let tensor: SafetensorsTensor
        public let fileIndex: Int
    }

    /// Every tensor: shards in order, names sorted by code point within a shard — the order
    /// convert_hf_to_gguf visits them.
    public let entries: [Entry]
    private let byName: [String: Int]

    /// Opens a model directory, or a single `.safetensors` file.
    public init(path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw SafetensorsError.noSuchPath(path: path)
        }
        if !isDir.boolValue {
            directory = (path as NSString).deletingLastPathComponent
            files = [try Self.open(path)]
        } else {
            directory = path
            let index = (path as NSString).appendingPathComponent(Self.indexName)
            let single = (path as NSString).appendingPathComponent(Self.singleName)
            let torchIndex = (path as NSString).appendingPathComponent(Self.torchIndexName)
            if FileManager.default.fileExists(atPath: index) {
                files = try Self.openShards(directory: path, indexPath: index)
            } else if FileManager.default.fileExists(atPath: single) {
                files = [try SafetensorsFile(path: single)]
            } else if FileManager.default.fileExists(atPath: torchIndex) {
                files = try Self.openShards(directory: path, indexPath: torchIndex)
            } else {
                // convert_hf_to_gguf's get_model_part_names(dir, "pytorch_model", ".bin"), sorted
                let parts = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                    .filter { $0.hasPrefix("pytorch_model") && $0.hasSuffix(".bin") }
                    .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                guard !parts.isEmpty else { throw SafetensorsError.noCheckpoint(directory: path) }
                files = try parts.map { try TorchFile(path: (path as NSString).appendingPathComponent($0)) }
            }
        }
        var entries: [Entry] = []
        var byName: [String: Int] = [:]
        for (fi, f) in files.enumerated() {
            for t in f.tensorsInReadOrder {
                if byName[t.name] != nil {
                    throw SafetensorsError.duplicateTensor(path: f.path, name: t.name)
                }
                byName[t.name] = entries.count
                entries.append(Entry(tensor: t, fileIndex: fi))
            }
        }
        self.entries = entries
        self.byName = byName
    }

    public subscript(name: String) -> Entry? { byName[name].map { entries[$0] } }

    public func data(_ e: Entry) -> UnsafeRawBufferPointer { files[e.fileIndex].data(e.tensor) }

    public var totalBytes: Int { files.reduce(0) { $0 + $1.file.size } }

    /// A `.bin` file is read as PyTorch's, anything else as safetensors.
    static func open(_ path: String) throws -> any CheckpointFile {
        path.hasSuffix(".bin") ? try TorchFile(path: path) : try SafetensorsFile(path: path)
    }

    static func openShards(directory: String, indexPath: String) throws -> [any CheckpointFile] {
        func fail(_ m: String) -> SafetensorsError { .badIndex(path: indexPath, detail: m) }
        let data = Data(try InputFile.readAll(indexPath))
        let root: JSONValue
        do { root = try JSONParser.parse(data) } catch { throw fail("invalid JSON: \(error)") }
        guard let map = root["weight_map"]?.objectValue else { throw fail("no \"weight_map\" object") }
        guard map.count > 0 else { throw fail("\"weight_map\" is empty") }
        let realDir = resolved(directory)
        let blobs = huggingFaceBlobs(realDir: realDir)
        var shardNames: [String] = []
        var expected: [String: Set<String>] = [:]
        for (tensor, v) in map.entries {
            guard let shard = v.stringValue else { throw fail("weight_map[\"\(tensor)\"] is not a string") }
            if expected[shard] == nil {
                try checkInside(shard: shard, directory: directory, realDir: realDir, blobs: blobs, indexPath: indexPath)
                shardNames.append(shard)
            }
            expected[shard, default: []].insert(tensor)
        }
        shardNames.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var files: [any CheckpointFile] = []
        for s in shardNames {
            let p = (directory as NSString).appendingPathComponent(s)
            guard FileManager.default.fileExists(atPath: p) else {
                throw fail("missing shard \"\(s)\" listed in weight_map")
            }
            let f = try open(p)
            let have = Set(f.tensors.map(\.name))
            let want = expected[s]!
            if let missing = want.subtracting(have).sorted().first {
                throw fail("tensor \"\(missing)\" is mapped to \"\(s)\" but that shard does not contain it")
            }
            if let extra = have.subtracting(want).sorted().first {
                throw fail("shard \"\(s)\" contains tensor \"\(extra)\" that weight_map does not list")
            }
            files.append(f)
        }
        return files
    }

    /// A weight_map entry must name a file inside the model directory: no absolute path, no `..`,
    /// and no symlink that leads out — except into the `blobs/` folder of the Hugging Face cache
    /// repository the directory is a snapshot of (`blobs`, see `huggingFaceBlobs`).
    static func checkInside(shard: String, directory: String, realDir: String, blobs: String? = nil,
                            indexPath: String) throws {
        func fail(_ m: String) -> SafetensorsError { .badIndex(path: indexPath, detail: m) }
        if shard.isEmpty { throw fail("weight_map names an empty file name") }
        if shard.hasPrefix("/") || shard.hasPrefix("\\") {
            throw fail("weight_map path \"\(shard)\" is absolute; shards must be inside the model directory")
        }
        let parts = shard.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "/" || $0 == "\\" })
        if parts.contains("..") {
            throw fail("weight_map path \"\(shard)\" contains '..'; shards must be inside the model directory")
        }
        if shard.utf8.contains(0) { throw fail("weight_map path contains a NUL byte") }
        let full = (directory as NSString).appendingPathComponent(shard)
        if FileManager.default.fileExists(atPath: full) {
            let real = resolved(full)
            if !real.hasPrefix(realDir + "/") && !(blobs.map { real.hasPrefix($0 + "/") } ?? false) {
                throw fail("weight_map path \"\(shard)\" resolves outside the model directory (to \(real))")
            }
        }
    }

    /// For a Hugging Face cache snapshot — `…/models--ORG--NAME/snapshots/REV`, every file a symlink
    /// to `…/models--ORG--NAME/blobs/<hash>` — the resolved path of that repository's `blobs` folder;
    /// nil for any other directory. Only this snapshot's own repository counts, not its neighbours.
    static func huggingFaceBlobs(realDir: String) -> String? {
        let snapshots = (realDir as NSString).deletingLastPathComponent
        let repo = (snapshots as NSString).deletingLastPathComponent
        guard (snapshots as NSString).lastPathComponent == "snapshots",
              (repo as NSString).lastPathComponent.hasPrefix("models--") else { return nil }
        let blobs = (repo as NSString).appendingPathComponent("blobs")
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: blobs, isDirectory: &isDir), isDir.boolValue else { return nil }
        return resolved(blobs)
    }

    static func resolved(_ p: String) -> String {
        guard let r = realpath(p, nil) else { return p }
        defer { free(r) }
        return String(cString: r)
    }
}
