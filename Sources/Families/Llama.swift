import Foundation
import GGUFWriter
import Inference
import MappedIO
import ModelMapping

/// Llama and Mistral (`llama`): RMSNorm, RoPE on interleaved pairs (the converter permutes q/k
/// rows for it), grouped-query attention, SwiGLU; llama3 rope factors as a generated tensor.
/// conversion/llama.py `LlamaModel`, src/models/llama.cpp.
public struct Llama: Family {
    public static let hfArchitectures = ["LlamaForCausalLM", "MistralForCausalLM"]
    public static let ggufArchitecture = "llama"

    // MARK: conversion

    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        // transformers' LlamaConfig and MistralConfig fill head_dim in when config.json omits it,
        // and convert_hf_to_gguf reads the loaded config, so key_length is written for them anyway
        // (not for a config.json transformers cannot load, read as written)
        llamaParameters(c, arch: ggufArchitecture,
                        headDim: c.headDim ?? (c.loadedThroughTransformers ? c.embeddingLength / c.headCount : nil), fileType: fileType)
    }

    /// LlamaModel.set_gguf_parameters: TextModel's keys, the vocabulary size and the rope dims.
    static func llamaParameters(_ c: ModelConfig, arch: String, headDim: Int?, fileType: UInt32) -> [(String, GGUFValue)] {
        var kv = Standard.textModel(c, arch: arch, headDim: headDim, fileType: fileType)
        if let v = c.vocabSize { kv.append((GGUFKey.LLM.vocabSize(arch), .uint32(UInt32(v)))) }
        kv.append((GGUFKey.Rope.dimensionCount(arch), .uint32(UInt32(c.headDim ?? c.embeddingLength / c.headCount))))
        return kv
    }

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? {
        if NameMap.isIgnored(hfName) { return .skip }
        guard let (name, bid) = NameMap.llama.map(hfName, blockCount: c.blockCount) else { return nil }
        if bid != nil, name.contains(".attn_q.") { return .map(name, .permuteHeads(c.headCount)) }
        if bid != nil, name.contains(".attn_k.") { return .map(name, .permuteHeads(c.kvHeads)) }
        return .map(name, .none)
    }

    /// LlamaModel.generate_extra_tensors: per-frequency scaling factors for `rope_type: llama3`,
    /// computed in f32 as torch does there.
    public static func generatedTensors(_ c: ModelConfig) throws -> [(name: String, values: [Float])] {
        guard c.rope["rope_type"]?.stringValue?.lowercased() == "llama3" else { return [] }
        let base = Float(c.rope["rope_theta"]?.doubleValue ?? 10000)
        let dim = c.headDim ?? c.embeddingLength / c.headCount
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
        return [(TensorName.ropeFreqs, out)]
    }

    public static func tokenizerOptions(_ c: ModelConfig) -> TokenizerOptions { TokenizerOptions(llamaQuirks: true) }

    // MARK: inference

    public let dims: ModelDims
    public let tokenEmbd: Weight
    let block: StandardBlock

    public init(_ t: TensorSet) throws {
        dims = try t.standardDims()
        tokenEmbd = try t.matrix(TensorName.tokenEmbd, [dims.nEmbd, dims.nVocab])
        block = try StandardBlock(t, dims: dims, neox: false)
    }

    public func layer(_ il: Int, _ x: Matrix, _ pass: Pass) { block.layer(il, x, pass) }
    public func output(_ x: Matrix, _ pass: Pass) -> Matrix { block.output(x, pass) }
}
