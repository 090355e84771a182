import Foundation
import GGUFWriter
import Inference
import MappedIO
import ModelMapping
import StrictJSON

/// Gemma (`gemma`, Gemma-2B/7B): the Gemma layer without post-norms, always tied; RMSNorm weights
/// stored minus one. conversion/gemma.py `GemmaModel`, src/models/gemma.cpp.
public struct Gemma: Family {
    public static let hfArchitectures = ["GemmaForCausalLM"]
    public static let ggufArchitecture = "gemma"

    // MARK: conversion

    /// transformers' GemmaConfig defaults.
    public static var configDefaults: JSONObject {
        var o = JSONObject()
        o.append("hidden_size", .int(3072))
        o.append("intermediate_size", .int(24576))
        o.append("num_hidden_layers", .int(28))
        o.append("num_attention_heads", .int(16))
        o.append("num_key_value_heads", .int(16))
        o.append("head_dim", .int(256))
        o.append("rms_norm_eps", .double(1e-6))
        o.append("max_position_embeddings", .int(8192))
        o.append("vocab_size", .int(256000))
        return o
    }

    /// GemmaModel.set_gguf_parameters (not TextModel's): no rope keys, llama.cpp's default base.
    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        try gemmaParameters(c, arch: ggufArchitecture, fileType: fileType)
    }

    static func gemmaParameters(_ c: ModelConfig, arch a: String, fileType: UInt32) throws -> [(String, GGUFValue)] {
        guard let ctx = c.contextLength, let ff = c.feedForwardLength, let eps = c.rmsNormEps, let hd = c.headDim else {
            throw FamilyError.hyperParameters(path: c.path, detail: "max_position_embeddings, intermediate_size, rms_norm_eps and head_dim are required")
        }
        return [
            (GGUFKey.LLM.contextLength(a), .uint32(UInt32(ctx))),
            (GGUFKey.LLM.embeddingLength(a), .uint32(UInt32(c.embeddingLength))),
            (GGUFKey.LLM.blockCount(a), .uint32(UInt32(c.blockCount))),
            (GGUFKey.LLM.feedForwardLength(a), .uint32(UInt32(ff))),
            (GGUFKey.Attention.headCount(a), .uint32(UInt32(c.headCount))),
            (GGUFKey.Attention.headCountKv(a), .uint32(UInt32(c.kvHeads))),
            (GGUFKey.Attention.layerNormRmsEpsilon(a), .float32(Float(eps))),
            (GGUFKey.Attention.keyLength(a), .uint32(UInt32(hd))),
            (GGUFKey.Attention.valueLength(a), .uint32(UInt32(hd))),
            (GGUFKey.General.fileType, .uint32(fileType)),
        ]
    }

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? {
        // lm_head is not used by llama.cpp (GemmaModel.filter_tensors)
        if NameMap.isIgnored(hfName) || hfName == "lm_head.weight" { return .skip }
        guard let (name, _) = NameMap.llama.map(hfName, blockCount: c.blockCount) else { return nil }
        // GemmaRMSNorm computes x·(1 + w): the GGUF stores 1 + w.
        return .map(name, hfName.hasSuffix("norm.weight") ? .addOne : .none)
    }

    public static func tokenizerOptions(_ c: ModelConfig) -> TokenizerOptions {
        // CodeGemma's fill-in-the-middle ids, written for every Gemma
        TokenizerOptions(addSpacePrefix: false, gemmaFIMTokens: true)
    }

    // MARK: inference

    public let dims: ModelDims
    public let tokenEmbd: Weight
    let block: GemmaBlock

    public init(_ t: TensorSet) throws {
        let d = try t.standardDims()
        dims = d
        tokenEmbd = try t.matrix(TensorName.tokenEmbd, [d.nEmbd, d.nVocab])
        let ropeDims = try t.ropeDims(headDim: d.headDim)
        let rope = RoPE.Key(dims: ropeDims, neox: true, base: try t.float(GGUFKey.Rope.freqBase, default: 10000, positive: true))
        block = try GemmaBlock(
            t, dims: d, output: tokenEmbd, qkNorm: false, postNorms: false,
            eps: try t.float(GGUFKey.Attention.layerNormRmsEpsilon, default: 1e-6),
            attentionScale: 1 / sqrtf(Float(d.headDim)), attnSoftcap: 0, finalSoftcap: 0,
            rope: Array(repeating: rope, count: d.nLayer), window: Array(repeating: 0, count: d.nLayer))
    }

    public func embed(_ tokens: [Int32], _ pass: Pass) -> Matrix { block.embed(tokenEmbd, tokens, pass) }
    public func layer(_ il: Int, _ x: Matrix, _ pass: Pass) { block.layer(il, x, pass) }
    public func output(_ x: Matrix, _ pass: Pass) -> Matrix { block.output(x, pass) }
}
