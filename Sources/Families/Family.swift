import GGUFWriter
import Inference
import MappedIO
import ModelMapping
import StrictJSON

/// A model family, whole: which Hugging Face classes it accepts, how convert_hf_to_gguf writes
/// their hyper-parameters and tensors, and (as an `Architecture`) how llama.cpp runs the result.
/// One file per family, registered in `Families.all` — as llama.cpp keeps `conversion/<family>.py`
/// and `src/models/<family>.cpp`.
public protocol Family: Architecture {
    /// `config.json` `architectures[0]` values converted as this family.
    static var hfArchitectures: [String] { get }
    /// `general.architecture` written and run.
    static var ggufArchitecture: String { get }
    /// What transformers' config class fills in for keys config.json leaves out (convert reads
    /// `AutoConfig.from_pretrained(...).to_dict()`), as far as the conversion reads them.
    static var configDefaults: JSONObject { get }
    /// The `<arch>.*` keys (and `general.file_type`) in convert_hf_to_gguf's order.
    static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)]
    /// Keys convert writes while preparing tensors, before the rest of the metadata (right after
    /// `general.architecture`).
    static func earlyKeys(_ c: ModelConfig) throws -> [(String, GGUFValue)]
    /// What becomes of one checkpoint tensor; nil when the family has no GGUF name for it.
    static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule?
    /// Tensors computed at conversion time (llama3's `rope_freqs`), once the hyper-parameters are
    /// known to fit the tensors; written first.
    static func generatedTensors(_ c: ModelConfig) throws -> [(name: String, values: [Float])]
    /// How the vocabulary is written.
    static func tokenizerOptions(_ c: ModelConfig) -> TokenizerOptions
}

extension Family {
    public static var configDefaults: JSONObject { JSONObject() }
    public static func earlyKeys(_ c: ModelConfig) throws -> [(String, GGUFValue)] { [] }
    public static func generatedTensors(_ c: ModelConfig) throws -> [(name: String, values: [Float])] { [] }
    public static func tokenizerOptions(_ c: ModelConfig) -> TokenizerOptions { TokenizerOptions() }
}

/// One checkpoint tensor's fate in convert_hf_to_gguf.
public enum TensorRule: Sendable, Equatable {
    /// Dropped (rotary caches, an lm_head the family ignores).
    case skip
    /// Written under `name`, after `transform`.
    case map(String, Transform)

    public enum Transform: Sendable, Equatable {
        case none
        /// LlamaModel.permute: rows regrouped from HF's half-split rotary layout to interleaved
        /// pairs, `heads` heads (q: n_head, k: n_head_kv).
        case permuteHeads(Int)
        /// `data_torch + 1` in the checkpoint's dtype (Gemma's RMSNorm weights are stored minus one).
        case addOne
        /// The first `n` rows only (Gemma 3 drops embedding rows past the tokenizer's vocabulary).
        case trimRows(Int)
    }
}

/// HF tensor names → GGUF names, the subset of gguf-py `tensor_mapping.py` a family uses: globals
/// by full base name, per-layer ones by the name after `model.layers.N.`.
public struct NameMap: Sendable {
    public let global: [String: String]
    public let perLayer: [String: String]
    public let layerPrefix: String

    public init(global: [String: String], perLayer: [String: String], layerPrefix: String = "model.layers.") {
        self.global = global
        self.perLayer = perLayer
        self.layerPrefix = layerPrefix
    }

    /// (GGUF name with `.weight`/`.bias`, layer) or nil.
    public func map(_ hf: String, blockCount: Int) -> (String, Int?)? {
        let suffix: String
        let base: String
        if hf.hasSuffix(".weight") { suffix = ".weight"; base = String(hf.dropLast(7)) }
        else if hf.hasSuffix(".bias") { suffix = ".bias"; base = String(hf.dropLast(5)) }
        else { return nil }
        if let g = global[base] { return (g + suffix, nil) }
        guard base.hasPrefix(layerPrefix) else { return nil }
        let rest = base.dropFirst(layerPrefix.count)
        guard let dot = rest.firstIndex(of: "."), let bid = Int(rest[..<dot]), bid >= 0, bid < blockCount,
              let g = perLayer[String(rest[rest.index(after: dot)...])] else { return nil }
        return (TensorName.block(bid, g + suffix), bid)
    }

    /// Tensors every converter drops without mapping.
    public static func isIgnored(_ name: String) -> Bool {
        name.hasSuffix(".attention.masked_bias") || name.hasSuffix(".attention.bias") || name.hasSuffix(".rotary_emb.inv_freq")
    }

    /// The llama layout most families start from (`model.embed_tokens`, `self_attn.q_proj`, …).
    public static let llama = NameMap(global: [
        "model.embed_tokens": "token_embd",
        "model.norm": "output_norm",
        "lm_head": "output",
    ], perLayer: [
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    ])

    public func adding(global g: [String: String] = [:], perLayer p: [String: String] = [:]) -> NameMap {
        NameMap(global: global.merging(g) { _, b in b }, perLayer: perLayer.merging(p) { _, b in b }, layerPrefix: layerPrefix)
    }
}

/// The families we convert and run. Adding one is its file and a line here.
public enum Families {
    public static let all: [any Family.Type] = [
        Llama.self, Qwen2.self, Qwen3.self, Gemma.self, Gemma2.self, Gemma3.self, Phi2.self, Phi3.self, MiniCPM.self, SmolLM3.self,
    ]

    /// The family converting HF class `name`.
    public static func forHF(_ name: String) -> (any Family.Type)? { all.first { $0.hfArchitectures.contains(name) } }

    /// The family running `general.architecture` `name`.
    public static func forGGUF(_ name: String) -> (any Family.Type)? { all.first { $0.ggufArchitecture == name } }

    public static var supportedHF: String { all.flatMap { $0.hfArchitectures }.joined(separator: ", ") }
    public static var supportedGGUF: String { all.map { $0.ggufArchitecture }.joined(separator: ", ") }

    /// The family of a checkpoint's `config.json` (`architectures[0]` named `hf`, read from `path`),
    /// or a one-line error listing the supported ones.
    public static func family(hf: String, path: String) throws -> any Family.Type {
        guard let f = forHF(hf) else {
            throw FamilyError.unsupportedCheckpoint(path: path, architecture: hf, supported: supportedHF)
        }
        return f
    }

    /// The family of GGUF metadata, or a one-line error.
    public static func family(path: String, metadata: [String: GGUFValue]) throws -> any Family.Type {
        guard let arch = metadata[GGUFKey.General.architecture]?.stringValue else {
            throw FamilyError.noArchitecture(path: path, supported: supportedGGUF)
        }
        guard let f = forGGUF(arch) else {
            throw FamilyError.unsupportedForInference(path: path, architecture: arch, supported: supportedGGUF)
        }
        return f
    }
}

extension Model {
    /// A model of whatever family the metadata names.
    public convenience init(path: String, metadata: [String: GGUFValue], tensors: [String: Weight], storage: [AnyObject]) throws {
        try self.init(path: path, metadata: metadata, tensors: tensors, storage: storage,
                      family: Families.family(path: path, metadata: metadata))
    }

    /// The model of a GGUF file, its weights viewed in the mapping.
    public convenience init(gguf f: GGUFFile) throws {
        try self.init(gguf: [f])
    }

    /// The model of a split GGUF (`GGUFFile.model`): metadata from the first file, weights from all.
    public convenience init(gguf files: [GGUFFile]) throws {
        var tensors: [String: Weight] = [:]
        for f in files { tensors.merge(Model.weights(of: f)) { a, _ in a } }
        try self.init(path: files[0].path,
                      metadata: Dictionary(GGUFFile.modelMetadata(files).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }),
                      tensors: tensors, storage: files)
    }
}
