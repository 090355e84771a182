import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import Quantizers

/// A weight matrix of `rows` × `cols` (GGUF ne1 × ne0) in any type we can read, left in the mmap.
public struct Weight: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer
    /// The GGUF tensor name (`blk.0.attn_q.weight`): what an engine observing the products (the
    /// imatrix collector) keys them by. A tied output layer is `token_embd.weight`, as in llama.cpp.
    public var name: String
    /// The GGUF shape (`ne`, innermost first): `[cols, rows]` for a matrix, `[cols]` for a vector,
    /// and what a file says for more dimensions.
    public let ne: [Int]
    /// Known by shape only (`TensorSet.shapes`): validates, is never read.
    public let shapeOnly: Bool
    public var rowBytes: Int { type.rowSize(cols)! }

    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer, name: String = "", shapeOnly: Bool = false, ne: [Int]? = nil) {
        self.type = type
        self.rows = rows
        self.cols = cols
        self.data = data
        self.name = name
        self.shapeOnly = shapeOnly
        self.ne = ne ?? (rows == 1 ? [cols] : [cols, rows])
    }

    /// Row `r` as f32 (ggml's get_rows / dequantize).
    public func row(_ r: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        Quantizers.quantizer(for: type)!.dequantizeRow(UnsafeRawBufferPointer(start: data + r * rowBytes, count: rowBytes), into: dst)
    }
}

/// A model ready to run: its family's `Architecture` built over weights viewed in place (the GGUF
/// mapping, or a checkpoint and copies).
public final class Model: @unchecked Sendable {
    public let architecture: any Architecture
    /// Every tensor by GGUF name, as the model was built from them (`replacing` rebuilds from it).
    public let tensors: [String: Weight]
    /// Keeps the memory the weights point into alive (the GGUF mapping, or the checkpoint and copies).
    public let storage: [AnyObject]
    public let metadata: [String: GGUFValue]
    /// The file or directory it was loaded from, named in errors about it.
    public let path: String

    public var hparams: ModelDims { architecture.dims }

    /// A model of `family` from named weights and GGUF-style metadata (what a GGUF file, or a
    /// checkpoint mapped to GGUF names, provides). Shapes and hyper-parameters are proven
    /// consistent before any buffer is sized from them.
    public init(path: String, metadata: [String: GGUFValue], tensors: [String: Weight], storage: [AnyObject],
                family: any Architecture.Type) throws {
        self.storage = storage
        self.metadata = metadata
        self.path = path
        var named = tensors
        for (k, var w) in tensors where w.name != k { w.name = k; named[k] = w }
        self.tensors = named
        architecture = try family.init(TensorSet(path: path, metadata: metadata, weights: named))
    }

    /// Every tensor of a GGUF file as a `Weight` viewing the mapping.
    public static func weights(of f: GGUFFile) -> [String: Weight] {
        var tensors: [String: Weight] = [:]
        for t in f.tensors {
            tensors[t.name] = Weight(type: t.type, rows: t.ne.count > 1 ? t.ne.dropFirst().reduce(1, *) : 1, cols: t.ne[0],
                                     data: f.data(t).baseAddress!, name: t.name, ne: t.ne)
        }
        return tensors
    }

    /// Every weight matrix (2-D and more) keyed by GGUF name: what quantization changes.
    public var weightMatrices: [String: Weight] { tensors.filter { $0.value.ne.count >= 2 } }

    /// The weight matrices of layer `il`, by name.
    public func layerMatrices(_ il: Int) -> [Weight] {
        let prefix = TensorName.blockPrefix(il)
        return weightMatrices.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map(\.value)
    }

    /// This model with some weight matrices replaced (keyed by GGUF name; `keepAlive` owns their
    /// memory): how the effect of quantizing one tensor alone is measured.
    public func replacing(_ replacements: [String: Weight], keepAlive: [AnyObject]) throws -> Model {
        var t = tensors
        for (name, w) in replacements {
            precondition(t[name] != nil, "no weight matrix \(name)")
            var w = w
            w.name = name
            t[name] = w
        }
        return try Model(path: "(variant)", metadata: metadata, tensors: t, storage: storage + keepAlive, family: type(of: architecture))
    }
}

extension Model {
    /// Refuses token ids the embedding has no row for (a `--token-ids` file, a logits file, a BOS
    /// id from metadata), before the forward pass would read past the weights.
    public func checkTokens(_ ids: some Sequence<Int32>, from path: String) throws {
        let n = hparams.nVocab
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= n }) {
            throw InferenceError.tokenOutsideVocabulary(path: path, id: bad, vocabulary: n)
        }
    }

    /// Refuses a run whose buffers (`ModelDims.workingSetBytes` plus `extra`) would not fit in
    /// this machine's memory, with the figure, instead of dying in an allocation half-way.
    public func checkMemory(tokens: Int, cacheTokens: Int = 0, extra: Int = 0, path: String) throws {
        let need = tokens < 0 || cacheTokens < 0 || tokens > 1 << 40 || cacheTokens > 1 << 40 ? nil
            : checkedSum(hparams.workingSetBytes(tokens: tokens, cacheTokens: cacheTokens), extra)
        try Self.checkFits(need, path: path, what: "\(tokens) positions\(cacheTokens > 0 ? " with a cache of \(cacheTokens)" : "")",
                           why: "of working memory (n_vocab \(hparams.nVocab), n_ff \(hparams.nFF), \(hparams.nLayer) layers)")
    }

    /// Refuses `need` bytes (nil: more than an Int holds) when they exceed this machine's memory:
    /// "`what` need N GB `why`; this machine has M GB".
    public static func checkFits(_ need: Int?, path: String, what: String, why: String) throws {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        let limit = physical > 0 ? physical : Int.max
        if let need, need <= limit { return }
        throw InferenceError.doesNotFit(path: path, what: what, need: need, why: why, limit: limit)
    }
}
