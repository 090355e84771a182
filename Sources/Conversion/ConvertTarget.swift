import GGMLCore
import GGUFWriter
import MappedIO
import ModelMapping

/// What `convert --type` asks for. The four types convert_hf_to_gguf offers are written its way;
/// every other file type is written as llama-quantize would write it from convert's F32 file, in
/// one pass, without the intermediate file.
public enum ConvertTarget: Sendable, Equatable {
    case convertHF(OutType)
    case llamaQuantize(LlamaFileType)
    /// bitsandbytes NF4 has no GGUF type llama.cpp loads; written as IQ4_NL and marked.
    case nf4

    public init?(name: String) {
        let l = name.lowercased()
        if l == "nf4" { self = .nf4; return }
        if let o = OutType(rawValue: l) { self = .convertHF(o); return }
        guard let f = LlamaFileType(name: l) else { return nil }
        self = .llamaQuantize(f)
    }

    public static var names: [String] {
        ["f32", "f16", "bf16", "q8_0"] + LlamaFileType.allCases.map { $0.name.lowercased() }
            .filter { !["f32", "f16", "bf16", "q8_0"].contains($0) } + ["nf4"]
    }

    public var fileType: LlamaFileType {
        switch self {
        case .convertHF(let o): o.fileType
        case .llamaQuantize(let f): f
        case .nf4: .mostlyIQ4_NL
        }
    }

    /// Whether the type is written as llama-quantize writes it, and so can take an imatrix.
    public var isLlamaQuantize: Bool {
        if case .convertHF = self { false } else { true }
    }

    /// The output plan for a checkpoint directory. `imatrix` (llama-quantize's `--imatrix`) only
    /// for llama-quantize file types: convert_hf_to_gguf.py, whose output the other four match,
    /// takes none.
    public func plan(directory: String, directoryName: String? = nil, preTokenizer: String?, options: QuantizationPolicy.Options = .init(),
                     imatrix: ImatrixData? = nil) throws -> (plan: any OutputPlan, defaultFileName: String)
    {
        switch self {
        case .convertHF(let o):
            if let im = imatrix {
                throw ConversionError.imatrix(path: im.file, detail: "an imatrix applies to llama-quantize file types; \(o.rawValue) is written as convert_hf_to_gguf.py writes it, without one")
            }
            let p = try ConversionPlan(directory: directory, directoryName: directoryName, outType: o, preTokenizer: preTokenizer)
            return (p, p.defaultFileName)
        case .llamaQuantize, .nf4:
            let base = try ConversionPlan(directory: directory, directoryName: directoryName, outType: .f32, preTokenizer: preTokenizer)
            let model = try QuantizePlan.model(from: base.metadata, path: directory)
            var q = try QuantizePlan(base: base, fileType: fileType, model: model, options: options, imatrix: imatrix, path: directory)
            if self == .nf4 { q = q.adding((GGUFKey.EdgeQuant.requestedType, .string("nf4"))) }
            return (q, ModelNaming.defaultFileName(naming: base.naming, fileTypeName: fileType.name))
        }
    }
}
