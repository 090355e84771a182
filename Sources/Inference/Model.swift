import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import Quantizers

/// Hyper-parameters of a llama-family model, read from GGUF metadata.
public struct HParams: Sendable {
    public var architecture: String
    public var nEmbd: Int
    public var nLayer: Int
    public var nHead: Int
    public var nHeadKV: Int
    public var headDim: Int
    public var nFF: Int
    public var nVocab: Int
    public var rmsEps: Float
    public var ropeBase: Float
    /// Qwen2 rotates the two halves of a head (NEOX); llama rotates adjacent pairs (GGUF's q/k rows
    /// were permuted by the converter for exactly that).
    public var ropeNeox: Bool
    public var ropeDims: Int
}

/// A weight matrix of `rows` × `cols` (GGUF ne1 × ne0) in any type we can read, left in the mmap.
public struct Weight: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer
    /// The GGUF tensor name (`blk.0.attn_q.weight`): what an engine observing the products (the
    /// imatrix collector) keys them by. A tied output layer is `token_embd.weight`, as in llama.cpp.
    public var name: String
    public var rowBytes: Int { type.rowSize(cols)! }

    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer, name: String = "") {
        self.type = type
        self.rows = rows
        self.cols = cols
        self.data = data
        self.name = name
    }

    /// Row `r` as f32 (ggml's get_rows / dequantize).
    public func row(_ r: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        Quantizers.quantizer(for: type)!.dequantizeRow(UnsafeRawBufferPointer(start: data + r * rowBytes, count: rowBytes), into: dst)
    }
}

public struct Layer: Sendable {
    public let attnNorm: [Float], ffnNorm: [Float]
    public let wq: Weight, wk: Weight, wv: Weight, wo: Weight
    public let bq: [Float]?, bk: [Float]?, bv: [Float]?
    public let wGate: Weight, wUp: Weight, wDown: Weight
}

/// A model ready to run: hyper-parameters and weights viewed in place in the GGUF mapping.
public final class Model: @unchecked Sendable {
    public let hparams: HParams
    public let tokenEmbd: Weight
    public let output: Weight
    public let outputNorm: [Float]
    public let layers: [Layer]
    /// llama3 per-frequency rope divisors (`rope_freqs.weight`).
    public let ropeFreqs: [Float]?
    /// Keeps the memory the weights point into alive (the GGUF mapping, or the checkpoint and copies).
    public let storage: [AnyObject]
    public let metadata: [String: GGUFValue]
    /// The file or directory it was loaded from, named in errors about it.
    public let path: String
    /// The validated hyper-parameters and shapes this model was built from.
    public let layout: LlamaLayout

    public convenience init(gguf f: GGUFFile) throws(FileError) {
        var tensors: [String: Weight] = [:]
        for t in f.tensors {
            tensors[t.name] = Weight(type: t.type, rows: t.ne.count > 1 ? t.ne.dropFirst().reduce(1, *) : 1, cols: t.ne[0],
                                     data: f.data(t).baseAddress!, name: t.name)
        }
        try self.init(path: f.path, metadata: Dictionary(f.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }),
                      tensors: tensors, storage: [f])
    }

    /// A model from named weights and GGUF-style metadata (what a GGUF file, or a checkpoint
    /// mapped to GGUF names, provides).
    public init(path: String, metadata: [String: GGUFValue], tensors: [String: Weight], storage: [AnyObject]) throws(FileError) {
        self.storage = storage
        self.metadata = metadata
        self.path = path
        func fail(_ m: String) -> FileError { FileError(path: path, message: m) }
        // Shapes and hyper-parameters are proven consistent before any buffer is sized from them.
        let layout = try LlamaLayout(path: path, metadata: metadata, shapes: tensors.mapValues { [$0.cols, $0.rows] })
        func weight(_ name: String) throws(FileError) -> Weight {
            guard var t = tensors[name] else { throw fail("missing tensor \(name)") }
            guard Quantizers.quantizer(for: t.type) != nil else {
                throw fail("tensor \(name): type \(t.type.name) is not supported for inference")
            }
            // the key is the GGUF name whoever built the weight (a checkpoint loader need not set it)
            t.name = name
            return t
        }
        func vector(_ name: String) throws(FileError) -> [Float] {
            let w = try weight(name)
            var v = [Float](repeating: 0, count: w.cols * w.rows)
            v.withUnsafeMutableBufferPointer { w.row(0, into: $0) }
            return v
        }
        func optionalVector(_ name: String) throws(FileError) -> [Float]? {
            tensors[name] == nil ? nil : try vector(name)
        }
        let embd = try weight("token_embd.weight")
        hparams = HParams(
            architecture: layout.architecture, nEmbd: layout.nEmbd, nLayer: layout.nLayer, nHead: layout.nHead,
            nHeadKV: layout.nHeadKV, headDim: layout.headDim, nFF: layout.nFF, nVocab: layout.nVocab,
            rmsEps: layout.rmsEps, ropeBase: layout.ropeBase, ropeNeox: layout.architecture == "qwen2",
            ropeDims: layout.ropeDims)
        self.layout = layout
        tokenEmbd = embd
        output = tensors["output.weight"] == nil ? embd : try weight("output.weight")
        outputNorm = try vector("output_norm.weight")
        ropeFreqs = try optionalVector("rope_freqs.weight")
        var layers: [Layer] = []
        for i in 0..<hparams.nLayer {
            let p = "blk.\(i)."
            layers.append(Layer(
                attnNorm: try vector(p + "attn_norm.weight"), ffnNorm: try vector(p + "ffn_norm.weight"),
                wq: try weight(p + "attn_q.weight"), wk: try weight(p + "attn_k.weight"),
                wv: try weight(p + "attn_v.weight"), wo: try weight(p + "attn_output.weight"),
                bq: try optionalVector(p + "attn_q.bias"), bk: try optionalVector(p + "attn_k.bias"),
                bv: try optionalVector(p + "attn_v.bias"),
                wGate: try weight(p + "ffn_gate.weight"), wUp: try weight(p + "ffn_up.weight"),
                wDown: try weight(p + "ffn_down.weight")))
        }
        self.layers = layers
    }
}

extension Model {
    /// Refuses token ids the embedding has no row for (a `--token-ids` file, a logits file, a BOS
    /// id from metadata), before the forward pass would read past the weights.
    public func checkTokens(_ ids: some Sequence<Int32>, from path: String) throws(FileError) {
        let n = hparams.nVocab
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= n }) {
            throw FileError(path: path, message: "token id \(bad) is outside the model's vocabulary of \(n)")
        }
    }

    /// Refuses a run whose buffers (`LlamaLayout.workingSetBytes` plus `extra`) would not fit in
    /// this machine's memory, with the figure, instead of dying in an allocation half-way.
    public func checkMemory(tokens: Int, cacheTokens: Int = 0, extra: Int = 0, path: String) throws(FileError) {
        let need = tokens < 0 || cacheTokens < 0 || tokens > 1 << 40 || cacheTokens > 1 << 40 ? nil
            : checkedSum(layout.workingSetBytes(tokens: tokens, cacheTokens: cacheTokens), extra)
        try Self.checkFits(need, path: path, what: "\(tokens) positions\(cacheTokens > 0 ? " with a cache of \(cacheTokens)" : "")",
                           why: "of working memory (n_vocab \(hparams.nVocab), n_ff \(hparams.nFF), \(hparams.nLayer) layers)")
    }

    /// Refuses `need` bytes (nil: more than an Int holds) when they exceed this machine's memory:
    /// "`what` need N GB `why`; this machine has M GB".
    public static func checkFits(_ need: Int?, path: String, what: String, why: String) throws(FileError) {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        let limit = physical > 0 ? physical : Int.max
        if let need, need <= limit { return }
        throw FileError(path: path, message: "\(what) need " + (need.map { String(format: "%.1f GB", Double($0) / 1e9) } ?? "more than 2^63 bytes")
                        + " \(why); " + String(format: "this machine has %.1f GB", Double(limit) / 1e9))
    }
}
