import Foundation
import GGMLCore
import Families
import GGUFWriter
import Inference
import MappedIO
import ModelMapping
import Quantizers
import SafetensorsReader

/// One output tensor: where its rows come from and what they become.
public struct PlannedTensor: Sendable {
    public enum Source: Sendable {
        /// A checkpoint tensor; `permuteHeads` set for llama q/k rows.
        case checkpoint(any CheckpointFile, SafetensorsTensor, permuteHeads: Int?)
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
    /// Bytes of the source this tensor reads: all of it, or the first rows of a trimmed one.
    public var sourceByteCount: Int { (sourceType.rowSize(ne[0]) ?? 0) * rows }
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

    public let family: any Family.Type

    /// - Parameter directoryName: the model's name where the directory's own name is not it (a hub
    ///   cache snapshot), for the output name and `general.name`.
    public init(directory: String, directoryName: String? = nil, outType: OutType, preTokenizer: String? = nil) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw ConversionError.notModelDirectory(path: directory)
        }
        guard FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("config.json")) else {
            throw ConversionError.noConfig(directory: directory)
        }
        let raw = try ModelConfig.architecture(directory: directory)
        let family = try Families.family(hf: raw.architecture, path: raw.path)
        let config = try ModelConfig(path: raw.path, json: raw.json, defaults: family.configDefaults)
        let ckpt = try SafetensorsCheckpoint(path: directory)
        self.directory = directory
        self.config = config
        self.checkpoint = ckpt
        self.outType = outType
        self.family = family

        var tensors: [PlannedTensor] = []
        for e in ckpt.entries {
            let t = e.tensor
            let path = ckpt.files[e.fileIndex].path
            guard let rule = family.tensor(t.name, config) else {
                throw ConversionError.unmappedTensor(path: path, name: t.name, architecture: config.architecture)
            }
            guard case .map(let name, let transform) = rule else { continue }
            guard t.dtype.isFloatSupported else {
                throw ConversionError.unsupportedTensor(path: path, name: t.name, detail: "unsupported dtype \(t.dtype.rawValue) (F32, F16 and BF16 are supported)")
            }
            guard !t.shape.isEmpty, t.shape.count <= GGUF.maxDims else {
                throw ConversionError.unsupportedTensor(path: path, name: t.name, detail: "\(t.shape.count) dimensions are not supported")
            }
            var ne = Array(t.shape.reversed())
            var permute: Int? = nil
            switch transform {
            case .none: break
            case .permuteHeads(let h):
                guard h > 0, t.shape[0] % (2 * h) == 0 else {
                    throw ConversionError.unsupportedTensor(path: path, name: t.name, detail: "\(t.shape[0]) rows cannot be split into \(h) rotary heads")
                }
                permute = h
            case .trimRows(let n):
                if ne.count >= 2, ne[ne.count - 1] > n, n > 0 { ne[ne.count - 1] = n }
            case .addOne:
                break
            }
            // Small tensors the converter changes element by element (a permuted q/k bias, Gemma's
            // shifted norms) are read and computed here, as torch computes them (`roundTo`).
            if ne.count == 1, permute != nil || transform == .addOne {
                let src = ckpt.files[e.fileIndex].data(t)
                let dtype = PlannedTensor.floatType(t.dtype)
                var raw = [Float](repeating: 0, count: ne[0])
                raw.withUnsafeMutableBufferPointer { Quantizers.quantizer(for: dtype)!.dequantizeRow(src, into: $0) }
                if let h = permute {
                    let order = RowPermutation(rows: ne[0], heads: h)
                    raw = (0..<ne[0]).map { raw[order[$0]] }
                }
                if transform == .addOne { raw = raw.map { Self.roundTo(dtype, $0 + 1) } }
                tensors.append(PlannedTensor(name: name, sourceName: t.name, ne: ne, type: .f32, source: .generated(raw)))
                continue
            }
            if transform == .addOne {
                throw ConversionError.unsupportedTensor(path: path, name: t.name, detail: "a norm shift applies to 1-D tensors only")
            }
            tensors.append(PlannedTensor(name: name, sourceName: t.name, ne: ne, type: outType.tensorType(name: name, ne: ne),
                                         source: .checkpoint(ckpt.files[e.fileIndex], t, permuteHeads: permute)))
        }
        for required in [TensorName.tokenEmbd, TensorName.outputNorm] where !tensors.contains(where: { $0.name == required }) {
            throw ConversionError.missingTensor(path: directory, name: required)
        }
        let hparams = try family.hyperParameters(config, fileType: outType.fileType.rawValue)
        try Self.validate(config, family: family, hparams: hparams, tensors: tensors)
        // generated once the hyper-parameters they are computed from are known to fit the tensors
        for g in try family.generatedTensors(config).reversed() {
            tensors.insert(PlannedTensor(name: g.name, sourceName: "(generated)", ne: [g.values.count],
                                         type: .f32, source: .generated(g.values)), at: 0)
        }
        self.tensors = tensors

        // general.* naming needs the parameter count of what is written.
        let totalParams = tensors.reduce(0) { $0 + $1.ne.reduce(1, *) }
        let naming: ModelNaming
        do { naming = try ModelNaming.infer(modelDirectory: directory, directoryName: directoryName, hfConfig: .object(config.json), totalParams: totalParams) }
        catch { throw ConversionError.config(path: directory, detail: error.message) }
        self.naming = naming
        defaultFileName = ModelNaming.defaultFileName(naming: naming, fileTypeName: outType.fileType.name)

        var kv: [(String, GGUFValue)] = []
        kv.append((GGUFKey.General.architecture, .string(family.ggufArchitecture)))
        kv += try family.earlyKeys(config)
        kv.append((GGUFKey.General.type, .string("model")))
        kv += naming.ggufKeys()
        kv += hparams
        kv.append((GGUFKey.General.quantizationVersion, .uint32(2)))
        kv += try TokenizerMetadata(directory: directory, config: config, options: family.tokenizerOptions(config),
                                    preTokenizer: preTokenizer).entries
        metadata = kv
    }

    /// A computed value as torch holds it: convert_hf_to_gguf upcasts bf16 tensors to f32 before
    /// `modify_tensors`, but computes on f16 tensors in f16.
    static func roundTo(_ t: GGMLType, _ x: Float) -> Float {
        switch t {
        case .f16: return Float(Float16(x))
        default: return x
        }
    }

    /// What llama.cpp's loader (and our inference) will demand of the file, proven before a byte is
    /// written: a config.json that does not match its tensors would otherwise convert "successfully"
    /// into a file no engine can run, and a vocab_size larger than the embedding would pad the
    /// vocabulary to whatever the config claims.
    static func validate(_ config: ModelConfig, family: any Family.Type, hparams: [(String, GGUFValue)], tensors: [PlannedTensor]) throws {
        var meta = Dictionary(hparams, uniquingKeysWith: { a, _ in a })
        meta[GGUFKey.General.architecture] = .string(family.ggufArchitecture)
        let shapes = Dictionary(tensors.map { ($0.name, $0.ne) }, uniquingKeysWith: { a, _ in a })
        let model = try family.init(TensorSet.shapes(path: config.path, metadata: meta, shapes: shapes))
        if let v = config.vocabSize, v != model.dims.nVocab {
            throw ConversionError.config(path: config.path, detail: "vocab_size \(v) differs from the embedding's \(model.dims.nVocab) rows")
        }
    }
}
