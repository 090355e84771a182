import Foundation
import GGUFWriter
import Inference
import MappedIO
import ModelMapping
import StrictJSON

/// Gemma 2 (`gemma2`): the Gemma layer with RMSNorms after attention and MLP, attention and final
/// logit soft-capping, and a sliding window on every other layer (even layers local).
/// conversion/gemma.py `Gemma2Model`, src/models/gemma2.cpp.
public struct Gemma2: Family {
    public static let hfArchitectures = ["Gemma2ForCausalLM"]
    public static let ggufArchitecture = "gemma2"

    // MARK: conversion

    /// transformers' Gemma2Config defaults.
    public static var configDefaults: JSONObject {
        var o = JSONObject()
        o.append("hidden_size", .int(2304))
        o.append("intermediate_size", .int(9216))
        o.append("num_hidden_layers", .int(26))
        o.append("num_attention_heads", .int(8))
        o.append("num_key_value_heads", .int(4))
        o.append("head_dim", .int(256))
        o.append("rms_norm_eps", .double(1e-6))
        o.append("max_position_embeddings", .int(8192))
        o.append("query_pre_attn_scalar", .int(256))
        o.append("sliding_window", .int(4096))
        o.append("final_logit_softcapping", .double(30))
        o.append("attn_logit_softcapping", .double(50))
        o.append("vocab_size", .int(256000))
        return o
    }

    /// Gemma2Model.set_gguf_parameters: GemmaModel's keys, then the soft-caps and the window.
    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        let a = ggufArchitecture
        var kv = try Gemma.gemmaParameters(c, arch: a, fileType: fileType)
        guard let attnCap = c.double(["attn_logit_softcapping"]), let finalCap = c.double(["final_logit_softcapping"]),
              let window = c.int(["sliding_window"]), window >= 0, window <= Int(UInt32.max) else {
            throw FamilyError.hyperParameters(path: c.path, detail: "attn_logit_softcapping, final_logit_softcapping and sliding_window are required")
        }
        kv.append((GGUFKey.LLM.attnLogitSoftcapping(a), .float32(Float(attnCap))))
        kv.append((GGUFKey.LLM.finalLogitSoftcapping(a), .float32(Float(finalCap))))
        kv.append((GGUFKey.Attention.slidingWindow(a), .uint32(UInt32(window))))
        return kv
    }

    static let names = NameMap.llama.adding(perLayer: [
        "post_attention_layernorm": "post_attention_norm",
        "pre_feedforward_layernorm": "ffn_norm",
        "post_feedforward_layernorm": "post_ffw_norm",
    ])

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? {
        if NameMap.isIgnored(hfName) || hfName == "lm_head.weight" { return .skip }
        guard let (name, _) = names.map(hfName, blockCount: c.blockCount) else { return nil }
        return .map(name, hfName.hasSuffix("norm.weight") ? .addOne : .none)
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
        let ropeDims = try t.ropeDims(headDim: d.headDim)
        // llama_model_gemma2::load_arch_hparams: local layers share the global rope unless a
        // separate base is given; the window defaults to 4096
        let base = try t.float(GGUFKey.Rope.freqBase, default: 10000, positive: true)
        let factor = try t.float(GGUFKey.Rope.scalingFactor, default: 0)
        let global = RoPE.Key(dims: ropeDims, neox: true, base: base, freqScale: factor == 0 ? 1 : 1 / factor)
        var local = global
        local.base = try t.float(GGUFKey.Rope.freqBaseSwa, default: base, positive: true)
        let nSWA = try t.int(GGUFKey.Attention.slidingWindow, default: 4096, in: 0...Int(Int32.max))
        let isSWA = try GemmaBlock.swaPattern(t, layers: d.nLayer, defaultPeriod: 2)
        // gemma_pytorch: the 27B model scales queries by 1/√(n_embd/n_head), the others by 1/√head_dim
        block = try GemmaBlock(
            t, dims: d, output: tokenEmbd, qkNorm: false, postNorms: true,
            eps: try t.float(GGUFKey.Attention.layerNormRmsEpsilon, default: 1e-6),
            attentionScale: d.nLayer == 46 ? 1 / sqrtf(Float(d.nEmbd / d.nHead)) : 1 / sqrtf(Float(d.headDim)),
            attnSoftcap: try t.float(GGUFKey.LLM.attnLogitSoftcapping, default: 50),
            finalSoftcap: try t.float(GGUFKey.LLM.finalLogitSoftcapping, default: 30),
            rope: isSWA.map { $0 ? local : global }, window: isSWA.map { $0 ? nSWA : 0 })
    }

    public func embed(_ tokens: [Int32], _ pass: Pass) -> Matrix { block.embed(tokenEmbd, tokens, pass) }
    public func layer(_ il: Int, _ x: Matrix, _ pass: Pass) { block.layer(il, x, pass) }
    public func output(_ x: Matrix, _ pass: Pass) -> Matrix { block.output(x, pass) }
}
