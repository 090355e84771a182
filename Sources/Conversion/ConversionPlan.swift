import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import ModelMapping
import Quantizers
import SafetensorsReader

/// One output tensor: where its rows come from and what they become.
public struct PlannedTensor: Sendable {
    public enum Source: Sendable {
        /// A checkpoint tensor; `permuteHeads` set for llama q/k rows.
        case checkpoint(SafetensorsFile, SafetensorsTensor, permuteHeads: Int?)
        /// Computed at conversion time (llama3 `rope_freqs`).
        case generated([Float])
        /// A tensor of an existing GGUF file (requantization).
        case gguf(GGUFFile, GGUFTensorInfo)
    }

    public let name: String
    public let sourceName: String
    /// GGUF order: `ne[0]` is the row length.
    public let ne: [Int]
    public let type: GGMLType
    public let source: Source
    /// llama-quantize `--imatrix`: one weight per column, `ne[0]` values for each matrix of
    /// `ne[1]` rows (so `ne[0]·ne[2]` in all); nil quantizes without (ggml's NULL imatrix).
    public let importance: [Float]?

    public init(name: String, sourceName: String, ne: [Int], type: GGMLType, source: Source, importance: [Float]? = nil) {
        self.name = name
        self.sourceName = sourceName
        self.ne = ne
        self.type = type
        self.source = source
        self.importance = importance
    }

    /// The same tensor written as another type.
    public func with(type t: GGMLType) -> PlannedTensor {
        PlannedTensor(name: name, sourceName: sourceName, ne: ne, type: t, source: source, importance: importance)
    }

    /// The same tensor quantized with these importance weights.
    public func with(importance w: [Float]?) -> PlannedTensor {
        PlannedTensor(name: name, sourceName: sourceName, ne: ne, type: type, source: source, importance: w)
    }

    /// The element type the source holds.
    public var sourceType: GGMLType {
        switch source {
        case .generated: .f32
        case .gguf(_, let info): info.type
        case .checkpoint(_, let tensor, _):
            Self.floatType(tensor.dtype)
        }
    }

    static func floatType(_ d: SafetensorsDType) -> GGMLType {
        switch d {
        case .f16: .f16
        case .bf16: .bf16
        default: .f32
        }
    }

    public var rows: Int { ne.dropFirst().reduce(1, *) }
    public var byteCount: Int { (type.rowSize(ne[0]) ?? 0) * rows }
}

/// What the writer needs: metadata and tensors, in file order, each tensor's type decided.
public protocol OutputPlan: Sendable {
    var metadata: [(key: String, value: GGUFValue)] { get }
    var tensors: [PlannedTensor] { get }
}

/// Everything decided before a byte is written: metadata in file order and every tensor's type.
public struct ConversionPlan: OutputPlan {
    public let directory: String
    public let config: ModelConfig
    public let checkpoint: SafetensorsCheckpoint
    public let outType: OutType
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [PlannedTensor]
    public let naming: ModelNaming
    public let defaultFileName: String

    public init(directory: String, outType: OutType, preTokenizer: String? = nil) throws(FileError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw FileError(path: directory, message: "not a model directory (no such directory)")
        }
        let config = try ModelConfig(directory: directory)
        let ckpt = try SafetensorsCheckpoint(path: directory)
        self.directory = directory
        self.config = config
        self.checkpoint = ckpt
        self.outType = outType

        var tensors: [PlannedTensor] = []
        for e in ckpt.entries {
            let t = e.tensor
            if TensorNames.isIgnored(t.name) { continue }
            let path = ckpt.files[e.fileIndex].path
            guard t.dtype.isFloatSupported else {
                throw FileError(path: path, message: "tensor \"\(t.name)\": unsupported dtype \(t.dtype.rawValue) (F32, F16 and BF16 are supported)")
            }
            guard let (name, _) = TensorNames.map(t.name, blockCount: config.blockCount) else {
                throw FileError(path: path, message: "tensor \"\(t.name)\" has no GGUF name for \(config.architecture.rawValue)")
            }
            guard !t.shape.isEmpty, t.shape.count <= GGUF.maxDims else {
                throw FileError(path: path, message: "tensor \"\(t.name)\": \(t.shape.count) dimensions are not supported")
            }
            var permute: Int? = nil
            if config.architecture.permutesQK {
                if name.hasPrefix("blk."), name.contains(".attn_q.") { permute = config.headCount }
                if name.hasPrefix("blk."), name.contains(".attn_k.") { permute = config.kvHeads }
            }
            if let h = permute, t.shape[0] % (2 * h) != 0 {
                throw FileError(path: path, message: "tensor \"\(t.name)\": \(t.shape[0]) rows cannot be split into \(h) rotary heads")
            }
            let ne = Array(t.shape.reversed())
            if let h = permute, ne.count == 1 {
                // A q/k bias is permuted element by element (LlamaModel.permute of a 1-D tensor); it is
                // small and written as f32, so it is read and reordered here.
                let src = ckpt.files[e.fileIndex].data(t)
                var raw = [Float](repeating: 0, count: ne[0])
                raw.withUnsafeMutableBufferPointer { Quantizers.quantizer(for: PlannedTensor.floatType(t.dtype))!.dequantizeRow(src, into: $0) }
                let order = RowPermutation(rows: ne[0], heads: h)
                tensors.append(PlannedTensor(name: name, sourceName: t.name, ne: ne, type: .f32,
                                             source: .generated((0..<ne[0]).map { raw[order[$0]] })))
                continue
            }
            tensors.append(PlannedTensor(name: name, sourceName: t.name, ne: ne, type: outType.tensorType(name: name, ne: ne),
                                         source: .checkpoint(ckpt.files[e.fileIndex], t, permuteHeads: permute)))
        }
        for required in ["token_embd.weight", "output_norm.weight"] where !tensors.contains(where: { $0.name == required }) {
            throw FileError(path: directory, message: "checkpoint has no tensor for \(required)")
        }
        try Self.validate(config, tensors: tensors)
        // generated once the head size it is computed from is known to fit the tensors
        if let freqs = try Self.llama3RopeFactors(config) {
            tensors.insert(PlannedTensor(name: "rope_freqs.weight", sourceName: "(generated)", ne: [freqs.count],
                                         type: .f32, source: .generated(freqs)), at: 0)
        }
        self.tensors = tensors

        // general.* naming needs the parameter count of what is written.
        let totalParams = tensors.reduce(0) { $0 + $1.ne.reduce(1, *) }
        let naming: ModelNaming
        do { naming = try ModelNaming.infer(modelDirectory: directory, hfConfig: .object(config.json), totalParams: totalParams) }
        catch { throw FileError(path: directory, message: error.message) }
        self.naming = naming
        defaultFileName = ModelNaming.defaultFileName(naming: naming, fileTypeName: outType.fileType.name)

        var kv: [(String, GGUFValue)] = []
        let arch = config.architecture.ggufArchitecture
        kv.append(("general.architecture", .string(arch)))
        kv.append(("general.type", .string("model")))
        kv += naming.ggufKeys()
        kv += Self.hyperParameters(config, arch: arch, fileType: outType.fileType)
        kv.append(("general.quantization_version", .uint32(2)))
        kv += try TokenizerMetadata(directory: directory, config: config, preTokenizer: preTokenizer).entries
        metadata = kv
    }

    /// What llama.cpp's loader (and our inference) will demand of the file, proven before a byte is
    /// written: a config.json that does not match its tensors would otherwise convert "successfully"
    /// into a file no engine can run, and a vocab_size larger than the embedding would pad the
    /// vocabulary to whatever the config claims.
    static func validate(_ config: ModelConfig, tensors: [PlannedTensor]) throws(FileError) {
        let arch = config.architecture.ggufArchitecture
        var meta = Dictionary(hyperParameters(config, arch: arch, fileType: .allF32), uniquingKeysWith: { a, _ in a })
        meta["general.architecture"] = .string(arch)
        let layout = try LlamaLayout(path: config.path, metadata: meta,
                                     shapes: Dictionary(tensors.map { ($0.name, $0.ne) }, uniquingKeysWith: { a, _ in a }))
        if let v = config.vocabSize, v != layout.nVocab {
            throw FileError(path: config.path, message: "vocab_size \(v) differs from the embedding's \(layout.nVocab) rows")
        }
    }

    /// TextModel/LlamaModel `set_gguf_parameters`, in their order.
    static func hyperParameters(_ c: ModelConfig, arch: String, fileType: LlamaFileType) -> [(String, GGUFValue)] {
        var kv: [(String, GGUFValue)] = []
        kv.append(("\(arch).block_count", .uint32(UInt32(c.blockCount))))
        if let n = c.contextLength { kv.append(("\(arch).context_length", .uint32(UInt32(n)))) }
        kv.append(("\(arch).embedding_length", .uint32(UInt32(c.embeddingLength))))
        if let n = c.feedForwardLength { kv.append(("\(arch).feed_forward_length", .uint32(UInt32(n)))) }
        kv.append(("\(arch).attention.head_count", .uint32(UInt32(c.headCount))))
        if let n = c.headCountKV { kv.append(("\(arch).attention.head_count_kv", .uint32(UInt32(n)))) }
        let rope = c.rope
        if let type = rope["rope_type"]?.stringValue {
            let factor = rope["factor"]?.doubleValue
            switch type {
            case "linear" where factor != nil:
                kv.append(("\(arch).rope.scaling.type", .string("linear")))
                kv.append(("\(arch).rope.scaling.factor", .float32(Float(factor!))))
            case "yarn" where factor != nil:
                kv.append(("\(arch).rope.scaling.type", .string("yarn")))
                kv.append(("\(arch).rope.scaling.factor", .float32(Float(factor!))))
                if let o = rope["original_max_position_embeddings"]?.intValue {
                    kv.append(("\(arch).rope.scaling.original_context_length", .uint32(UInt32(o))))
                }
                if let v = rope["extrapolation_factor"]?.doubleValue { kv.append(("\(arch).rope.scaling.yarn_ext_factor", .float32(Float(v)))) }
                if let v = (rope["attention_factor"] ?? rope["attn_factor"])?.doubleValue { kv.append(("\(arch).rope.scaling.yarn_attn_factor", .float32(Float(v)))) }
                if let v = rope["beta_fast"]?.doubleValue { kv.append(("\(arch).rope.scaling.yarn_beta_fast", .float32(Float(v)))) }
                if let v = rope["beta_slow"]?.doubleValue { kv.append(("\(arch).rope.scaling.yarn_beta_slow", .float32(Float(v)))) }
            case "su", "longrope":
                kv.append(("\(arch).rope.scaling.type", .string("longrope")))
            default: break
            }
        }
        if let theta = rope["rope_theta"]?.doubleValue { kv.append(("\(arch).rope.freq_base", .float32(Float(theta)))) }
        if let eps = c.rmsNormEps { kv.append(("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(eps)))) }
        if let hd = c.headDim {
            kv.append(("\(arch).attention.key_length", .uint32(UInt32(hd))))
            kv.append(("\(arch).attention.value_length", .uint32(UInt32(hd))))
        }
        kv.append(("general.file_type", .uint32(fileType.rawValue)))
        if c.architecture != .qwen2 {
            if let v = c.vocabSize { kv.append(("\(arch).vocab_size", .uint32(UInt32(v)))) }
            kv.append(("\(arch).rope.dimension_count", .uint32(UInt32(c.ropeDimension))))
        }
        return kv
    }

    /// LlamaModel.generate_extra_tensors: per-frequency scaling factors for `rope_type: llama3`,
    /// computed in f32 as torch does there.
    static func llama3RopeFactors(_ c: ModelConfig) throws(FileError) -> [Float]? {
        guard c.architecture != .qwen2, c.rope["rope_type"]?.stringValue?.lowercased() == "llama3" else { return nil }
        let base = Float(c.rope["rope_theta"]?.doubleValue ?? 10000)
        let dim = c.ropeDimension
        let factor = c.rope["factor"]?.doubleValue ?? 8
        let low = c.rope["low_freq_factor"]?.doubleValue ?? 1
        let high = c.rope["high_freq_factor"]?.doubleValue ?? 4
        let oldCtx = Double(c.rope["original_max_position_embeddings"]?.intValue ?? 8192)
        let lowWavelen = oldCtx / low
        let highWavelen = oldCtx / high
        var out: [Float] = []
        for i in stride(from: 0, to: dim, by: 2) {
            let freq: Float = 1 / powf(base, Float(i) / Float(dim))
            let wavelen: Float = Float(2 * Double.pi) / freq
            if Double(wavelen) < highWavelen { out.append(1) }
            else if Double(wavelen) > lowWavelen { out.append(Float(factor)) }
            else {
                let smooth: Float = (Float(oldCtx) / wavelen - Float(low)) / Float(high - low)
                out.append(1 / ((1 - smooth) / Float(factor) + smooth))
            }
        }
        return out
    }
}
