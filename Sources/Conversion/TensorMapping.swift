import GGMLCore
import ModelMapping

/// HF tensor names → GGUF names for the llama family (gguf-py `tensor_mapping.py`, the subset
/// these architectures use).
enum TensorNames {
    static let global: [String: String] = [
        "model.embed_tokens": "token_embd",
        "model.norm": "output_norm",
        "lm_head": "output",
    ]
    static let perLayer: [String: String] = [
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    ]

    /// Tensors convert_hf_to_gguf drops without mapping.
    static func isIgnored(_ name: String) -> Bool {
        name.hasSuffix(".attention.masked_bias") || name.hasSuffix(".attention.bias") || name.hasSuffix(".rotary_emb.inv_freq")
    }

    /// (GGUF name, layer) or nil when the name is not part of these architectures.
    static func map(_ hf: String, blockCount: Int) -> (String, Int?)? {
        let suffix: String
        let base: String
        if hf.hasSuffix(".weight") { suffix = ".weight"; base = String(hf.dropLast(7)) }
        else if hf.hasSuffix(".bias") { suffix = ".bias"; base = String(hf.dropLast(5)) }
        else { return nil }
        if let g = global[base] { return (g + suffix, nil) }
        let prefix = "model.layers."
        guard base.hasPrefix(prefix) else { return nil }
        let rest = base.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let bid = Int(rest[..<dot]), bid >= 0, bid < blockCount,
              let g = perLayer[String(rest[rest.index(after: dot)...])] else { return nil }
        return ("blk.\(bid).\(g)\(suffix)", bid)
    }
}

/// What `--type` asks of convert: the four convert_hf_to_gguf output types, and the file type each writes.
public enum OutType: String, CaseIterable, Sendable {
    case f32, f16, bf16, q8_0

    public var fileType: LlamaFileType {
        switch self {
        case .f32: .allF32
        case .f16: .mostlyF16
        case .bf16: .mostlyBF16
        case .q8_0: .mostlyQ8_0
        }
    }

    /// convert_hf_to_gguf's per-tensor rule: 1-D tensors, norms and non-`.weight` tensors stay F32;
    /// a row that is not a whole number of blocks falls back to F16.
    func tensorType(name: String, ne: [Int]) -> GGMLType {
        if ne.count <= 1 || name.hasSuffix("_norm.weight") || !name.hasSuffix(".weight") { return .f32 }
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return ne[0] % GGMLType.q8_0.blockSize == 0 ? .q8_0 : .f16
        }
    }
}
