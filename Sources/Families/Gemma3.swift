import Foundation
import GGUFWriter
import Inference
import MappedIO
import ModelMapping
import StrictJSON

/// Gemma 3 (`gemma3`): embeddings scaled by √n_embd, per-head q/k RMSNorm, NEOX rope with its own
/// base on sliding-window layers (5 of every 6), queries pre-scaled, RMSNorm after attention and
/// after the GeGLU MLP, optional final logit soft-capping. The checkpoint stores every RMSNorm
/// weight minus one. conversion/gemma.py `Gemma3Model`, src/models/gemma3.cpp.
public struct Gemma3: Family {
    public static let hfArchitectures = ["Gemma3ForCausalLM"]
    public static let ggufArchitecture = "gemma3"

    // MARK: conversion

    /// transformers' Gemma3TextConfig defaults (rope bases are defaulted in `hyperParameters`, so a
    /// config stating them the old way is read as it states them).
    public static var configDefaults: JSONObject {
        var o = JSONObject()
        o.append("hidden_size", .int(2304))
        o.append("intermediate_size", .int(9216))
        o.append("num_hidden_layers", .int(26))
        o.append("num_attention_heads", .int(8))
        o.append("num_key_value_heads", .int(4))
        o.append("head_dim", .int(256))
        o.append("rms_norm_eps", .double(1e-6))
        o.append("max_position_embeddings", .int(131072))
        o.append("query_pre_attn_scalar", .int(256))
        o.append("sliding_window", .int(4096))
        o.append("vocab_size", .int(262208))
        return o
    }

    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        let a = ggufArchitecture
        var kv = Standard.textModel(c, arch: a, headDim: c.headDim, fileType: fileType,
                                    ropeThetaDefault: 1_000_000, slidingThetaDefault: 10000)
        // Gemma3Model.set_gguf_parameters re-adds these after TextModel's: a dict, so in place.
        Standard.set(&kv, GGUFKey.LLM.contextLength(a), .uint32(UInt32(c.contextLength ?? 131072)))
        Standard.set(&kv, GGUFKey.Attention.headCount(a), .uint32(UInt32(c.headCount)))
        Standard.set(&kv, GGUFKey.Attention.layerNormRmsEpsilon(a), .float32(Float(c.rmsNormEps ?? 1e-6)))
        Standard.set(&kv, GGUFKey.Attention.keyLength(a), .uint32(UInt32(c.headDim ?? 256)))
        Standard.set(&kv, GGUFKey.Attention.valueLength(a), .uint32(UInt32(c.headDim ?? 256)))
        Standard.set(&kv, GGUFKey.Rope.freqBase(a), .float32(Float(c.rope["rope_theta"]?.doubleValue ?? 1_000_000)))
        if c.json["attn_logit_softcapping"].map({ !$0.isNull }) == true {
            throw FamilyError.hyperParameters(path: c.path, detail: "attn_logit_softcapping is set, which Gemma 3 does not have")
        }
        if let cap = c.double(["final_logit_softcapping"]), cap != 0 {
            Standard.set(&kv, GGUFKey.LLM.finalLogitSoftcapping(a), .float32(Float(cap)))
        }
        if c.int(["sliding_window_pattern"]) != 1 {
            guard let w = c.int(["sliding_window"]), w <= Int(UInt32.max) else {
                throw FamilyError.hyperParameters(path: c.path, detail: "\"sliding_window\" must be a non-negative integer")
            }
            Standard.set(&kv, GGUFKey.Attention.slidingWindow(a), .uint32(UInt32(w)))
        }
        Standard.set(&kv, GGUFKey.Attention.headCountKv(a), .uint32(UInt32(c.headCountKV ?? 4)))
        return kv
    }

    static let names = NameMap.llama.adding(perLayer: [
        "self_attn.q_norm": "attn_q_norm",
        "self_attn.k_norm": "attn_k_norm",
        "post_attention_layernorm": "post_attention_norm",
        "pre_feedforward_layernorm": "ffn_norm",
        "post_feedforward_layernorm": "post_ffw_norm",
    ])

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? {
        if NameMap.isIgnored(hfName) { return .skip }
        guard let (name, _) = names.map(hfName, blockCount: c.blockCount) else { return nil }
        // Gemma3RMSNorm computes x·(1 + w): the GGUF stores 1 + w.
        if hfName.hasSuffix("norm.weight") { return .map(name, .addOne) }
        // rows past the tokenizer's vocabulary (padded to vocab_size) are dropped
        if name == TensorName.tokenEmbd, let v = c.vocabSize { return .map(name, .trimRows(v)) }
        return .map(name, .none)
    }

    public static func tokenizerOptions(_ c: ModelConfig) -> TokenizerOptions { TokenizerOptions(addSpacePrefix: false) }

    // MARK: inference

    public let dims: ModelDims
    public let tokenEmbd: Weight
    let block: GemmaBlock

    public init(_ t: TensorSet) throws {
        let d = try t.standardDims()
        dims = d
        tokenEmbd = try t.matrix(TensorName.tokenEmbd, [d.nEmbd, d.nVocab])
        let untied = try t.optionalMatrix(TensorName.output, [d.nEmbd, d.nVocab])
        let ropeDims = try t.ropeDims(headDim: d.headDim)
        let base = try t.float(GGUFKey.Rope.freqBase, default: 10000, positive: true)
        let baseSWA = try t.float(GGUFKey.Rope.freqBaseSwa, default: 10000, positive: true)
        if let type = t.string(GGUFKey.Rope.scalingType), type != "linear", type != "none" {
            throw t.fail("\(t.architecture).rope.scaling.type \(displayName(type)) is not supported for inference")
        }
        let factor = try t.float(GGUFKey.Rope.scalingFactor, default: 0)
        let global = RoPE.Key(dims: ropeDims, neox: true, base: base, freqScale: factor == 0 ? 1 : 1 / factor)
        let local = RoPE.Key(dims: ropeDims, neox: true, base: baseSWA)
        // llama_model_gemma3::load_arch_hparams: sliding-window layers when a window is given, by
        // the pattern array or period (default 6: five local layers, then a global one)
        let nSWA = try t.int(GGUFKey.Attention.slidingWindow, default: 0, in: 0...Int(Int32.max))
        let isSWA = nSWA > 0 ? try GemmaBlock.swaPattern(t, layers: d.nLayer, defaultPeriod: 6) : Array(repeating: false, count: d.nLayer)
        block = try GemmaBlock(
            t, dims: d, output: untied ?? tokenEmbd, qkNorm: true, postNorms: true,
            eps: try t.float(GGUFKey.Attention.layerNormRmsEpsilon, default: 1e-6),
            // gemma_pytorch: the 27B model scales queries by 1/√(n_embd/n_head), the others by 1/√head_dim
            attentionScale: d.nLayer == 62 ? 1 / sqrtf(Float(d.nEmbd / d.nHead)) : 1 / sqrtf(Float(d.headDim)),
            attnSoftcap: 0, finalSoftcap: try t.float(GGUFKey.LLM.finalLogitSoftcapping, default: 0),
            rope: isSWA.map { $0 ? local : global }, window: isSWA.map { $0 ? nSWA : 0 })
    }

    public func embed(_ tokens: [Int32], _ pass: Pass) -> Matrix { block.embed(tokenEmbd, tokens, pass) }
    public func layer(_ il: Int, _ x: Matrix, _ pass: Pass) { block.layer(il, x, pass) }
    public func output(_ x: Matrix, _ pass: Pass) -> Matrix { block.output(x, pass) }
}
