import Foundation
import GGMLCore
import GGUFWriter
import Inference
import MappedIO
import Quantizers

/// A plan laid out as llama-quantize writes its output: the input's metadata with
/// `general.quantization_version` and `general.file_type` re-set (gguf moves a re-set key to the
/// end), then the `quantize.imatrix.*` keys when an imatrix is given, tensors in
/// llama_model_loader's order, each tensor's type chosen by `QuantizationPolicy`.
public struct QuantizePlan: OutputPlan {
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [PlannedTensor]
    public let fileType: LlamaFileType
    /// Tensors quantized without imatrix data although an imatrix was given: no entry for them
    /// (llama-quantize: "did not find weights for …"), or a token embedding whose entry does not fit.
    public let tensorsWithoutImatrix: [String]

    /// Requantizes an existing plan (a checkpoint converted to F32 in memory, or a GGUF file).
    /// `imatrix` as llama-quantize `--imatrix`: with any entries, the policy takes its imatrix
    /// branches and every tensor that changes type is quantized with its entry.
    public init(base: any OutputPlan, fileType: LlamaFileType, model: QuantizationPolicy.Model,
                options: QuantizationPolicy.Options = .init(), allowRequantize: Bool = false,
                imatrix: ImatrixData? = nil, path: String) throws {
        self.fileType = fileType
        let ordered = base.tensors.sorted { QuantizationPolicy.fileOrder($0.name, $1.name) }
        // llama-quantize passes no imatrix at all when none of its entries survive the filters.
        let imatrix = imatrix.flatMap { $0.weights.isEmpty ? nil : $0 }
        if let im = imatrix, let (name, v) = im.firstNonFinite() {
            throw ConversionError.imatrix(path: im.file, detail: "imatrix contains non-finite value \(v) (entry \(name))")
        }
        var options = options
        if imatrix != nil { options.hasImatrix = true }
        let policy = QuantizationPolicy(fileType: fileType, model: model, options: options)
        let types: [GGMLType]
        do {
            types = try policy.assignTypes(names: ordered.map(\.name), ne: ordered.map(\.ne), current: ordered.map(\.type))
        } catch {
            throw ConversionError.metadata(path: path, detail: error.message)
        }
        var out: [PlannedTensor] = []
        var without: [String] = []
        for (t, newType) in zip(ordered, types) {
            var importance: [Float]? = nil
            // llama-quantize looks an entry up only for tensors it converts, whatever the new type.
            if newType != t.type, let im = imatrix {
                if let w = im.weights[t.name] {
                    let expected = t.ne[0] * (t.ne.count > 2 ? t.ne[2] : 1)
                    if w.count == expected, t.ne.count < 4 || t.ne[3] == 1 {
                        importance = w
                    } else if QuantizationPolicy.category(t.name) == .tokenEmbd {
                        // An entry for the embedding never fits its shape; llama-quantize skips it.
                        without.append(t.name)
                    } else {
                        throw ConversionError.imatrix(path: im.file, detail: "imatrix size \(w.count) is different from tensor size \(expected) for \(t.name)")
                    }
                } else {
                    without.append(t.name)
                }
            }
            if newType != t.type, t.type.isQuantized, !allowRequantize {
                throw ConversionError.requantize(path: path, name: t.name, type: t.type)
            }
            // llama-quantize refuses before writing anything when no imatrix is given, and when
            // quantizing a tensor whose entry is missing.
            if newType != t.type, importance == nil, QuantizationPolicy.requiresImatrix(name: t.name, type: newType) {
                if let im = imatrix { throw ConversionError.imatrixMissing(path: im.file, name: t.name, type: newType) }
                if !options.hasImatrix { throw ConversionError.imatrixRequired(path: path, name: t.name, type: newType) }
            }
            guard newType == t.type || Quantizers.canWrite(newType) else {
                throw ConversionError.unsupportedTensor(path: path, name: t.name, detail: "writing \(newType.name) is not supported")
            }
            out.append(t.with(type: newType).with(importance: importance))
        }
        tensors = out
        tensorsWithoutImatrix = without
        var kv = base.metadata.filter { $0.key != GGUFKey.General.quantizationVersion && $0.key != GGUFKey.General.fileType }
        kv.removeAll { $0.key.hasPrefix("split.") }
        kv.append((GGUFKey.General.quantizationVersion, .uint32(2)))
        kv.append((GGUFKey.General.fileType, .uint32(fileType.rawValue)))
        for (k, v) in imatrix?.metadata ?? [] {
            kv.removeAll { $0.key == k }
            kv.append((k, v))
        }
        metadata = kv
    }

    init(metadata: [(key: String, value: GGUFValue)], tensors: [PlannedTensor], fileType: LlamaFileType,
         tensorsWithoutImatrix: [String]) {
        self.metadata = metadata
        self.tensors = tensors
        self.fileType = fileType
        self.tensorsWithoutImatrix = tensorsWithoutImatrix
    }

    /// The same plan with one more metadata key at the end.
    public func adding(_ kv: (key: String, value: GGUFValue)) -> QuantizePlan {
        QuantizePlan(metadata: metadata + [kv], tensors: tensors, fileType: fileType, tensorsWithoutImatrix: tensorsWithoutImatrix)
    }

    /// What the policy needs, read from GGUF metadata.
    public static func model(from metadata: [(key: String, value: GGUFValue)], path: String) throws -> QuantizationPolicy.Model {
        func value(_ k: String) -> GGUFValue? { metadata.first { $0.key == k }?.value }
        guard let arch = value(GGUFKey.General.architecture)?.stringValue else {
            throw ConversionError.metadata(path: path, detail: "no general.architecture in metadata")
        }
        guard value(GGUFKey.LLM.blockCount(arch)) != nil, value(GGUFKey.Attention.headCount(arch)) != nil else {
            throw ConversionError.metadata(path: path, detail: "no \(displayName(arch)).block_count or \(displayName(arch)).attention.head_count in metadata")
        }
        // The policy counts layers and divides by them: bounded here, as ModelDims bounds them.
        func int(_ k: ArchKey, _ range: ClosedRange<Int>, default d: Int) throws -> Int {
            guard let raw = value(k(arch)) else { return d }
            guard let v = raw.intValue, range.contains(v) else {
                throw ConversionError.metadata(path: path, detail: "\(displayName(arch)).\(k.suffix) is out of range \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        let blocks = try int(GGUFKey.LLM.blockCount, 0...ModelDims.maxLayers, default: 0)
        let heads = try int(GGUFKey.Attention.headCount, 0...ModelDims.maxHeads, default: 0)
        let kv = try int(GGUFKey.Attention.headCountKv, 0...ModelDims.maxHeads, default: heads)
        return .init(architecture: arch, blockCount: blocks, headCount: heads, headCountKV: kv,
                     expertCount: try int(GGUFKey.LLM.expertCount, 0...ModelDims.maxHeads, default: 0))
    }
}

/// An existing GGUF file as a plan that writes it back unchanged.
public struct GGUFSourcePlan: OutputPlan {
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [PlannedTensor]

    public init(_ f: GGUFFile) {
        metadata = f.metadata
        tensors = f.tensors.map { PlannedTensor(name: $0.name, sourceName: $0.name, ne: $0.ne, type: $0.type, source: .gguf(f, $0)) }
    }

    /// A split model (`GGUFFile.model`): its metadata without the split keys, every file's tensors in order.
    public init(_ files: [GGUFFile]) {
        metadata = GGUFFile.modelMetadata(files)
        tensors = files.flatMap { f in
            f.tensors.map { PlannedTensor(name: $0.name, sourceName: $0.name, ne: $0.ne, type: $0.type, source: .gguf(f, $0)) }
        }
    }
}
