import Foundation
import GGUFWriter
import Inference
import MappedIO
import ModelMapping
import StrictJSON

/// Phi-3 and Phi-4-mini (`phi3`): the llama layer with fused q/k/v and gate/up projections,
/// NEOX rope on the first `rope.dimension_count` dims of each head (Phi-4-mini rotates ¾ of it),
/// queries pre-scaled, and LongRoPE's per-frequency factors (short below the original context,
/// long above) with their attention factor. conversion/phi.py `Phi3MiniModel`, src/models/phi3.cpp.
public struct Phi3: Family {
    public static let hfArchitectures = ["Phi3ForCausalLM"]
    public static let ggufArchitecture = "phi3"

    // MARK: conversion

    /// transformers' Phi3Config defaults.
    public static var configDefaults: JSONObject {
        var o = JSONObject()
        o.append("hidden_size", .int(3072))
        o.append("intermediate_size", .int(8192))
        o.append("num_hidden_layers", .int(32))
        o.append("num_attention_heads", .int(32))
        o.append("num_key_value_heads", .int(32))
        o.append("rms_norm_eps", .double(1e-5))
        o.append("max_position_embeddings", .int(4096))
        o.append("original_max_position_embeddings", .int(4096))
        o.append("rope_theta", .double(10000))
        o.append("vocab_size", .int(32064))
        return o
    }

    static func ropeDims(_ c: ModelConfig) -> Int {
        c.rotaryDims(factor: c.partialRotaryFactor ?? 1)
    }

    /// Phi3MiniModel.set_gguf_parameters (not TextModel's), in its order.
    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        let a = ggufArchitecture
        guard let ctx = c.contextLength, let orig = c.rope["original_max_position_embeddings"]?.intValue ?? c.int(["original_max_position_embeddings"]),
              let ff = c.feedForwardLength, let eps = c.rmsNormEps, let theta = c.rope["rope_theta"]?.doubleValue else {
            throw FamilyError.hyperParameters(path: c.path, detail: "max_position_embeddings, original_max_position_embeddings, intermediate_size, rms_norm_eps and rope_theta are required")
        }
        let window = c.int(["sliding_window"]) ?? 0
        guard orig >= 0, orig <= Int(UInt32.max), window >= 0, window <= Int(UInt32.max) else {
            throw FamilyError.hyperParameters(path: c.path, detail: "original_max_position_embeddings and sliding_window must be 32-bit non-negative integers")
        }
        return [
            (GGUFKey.LLM.contextLength(a), .uint32(UInt32(ctx))),
            (GGUFKey.Rope.scalingOriginalContextLength(a), .uint32(UInt32(orig))),
            (GGUFKey.LLM.embeddingLength(a), .uint32(UInt32(c.embeddingLength))),
            (GGUFKey.LLM.feedForwardLength(a), .uint32(UInt32(ff))),
            (GGUFKey.LLM.blockCount(a), .uint32(UInt32(c.blockCount))),
            (GGUFKey.Attention.headCount(a), .uint32(UInt32(c.headCount))),
            (GGUFKey.Attention.headCountKv(a), .uint32(UInt32(c.kvHeads))),
            (GGUFKey.Attention.layerNormRmsEpsilon(a), .float32(Float(eps))),
            (GGUFKey.Rope.dimensionCount(a), .uint32(UInt32(ropeDims(c)))),
            (GGUFKey.Rope.freqBase(a), .float32(Float(theta))),
            (GGUFKey.General.fileType, .uint32(fileType)),
            // zero distinguishes Phi-4 from other phi3 models
            (GGUFKey.Attention.slidingWindow(a), .uint32(UInt32(window))),
        ]
    }

    /// generate_extra_tensors runs before the metadata is written: its key follows general.architecture.
    public static func earlyKeys(_ c: ModelConfig) throws -> [(String, GGUFValue)] {
        guard let f = try longRoPE(c) else { return [] }
        return [(GGUFKey.Rope.scalingAttnFactor(ggufArchitecture), .float32(Float(f.attnFactor)))]
    }

    /// generate_extra_tensors: LongRoPE factors and their attention factor, when the config has them.
    static func longRoPE(_ c: ModelConfig) throws -> (long: [Float], short: [Float], attnFactor: Double)? {
        guard let long = c.rope["long_factor"]?.arrayValue, !long.isEmpty else { return nil }
        let type = c.rope["rope_type"]?.stringValue?.lowercased() ?? ""
        guard let ctx = c.contextLength, let orig = c.rope["original_max_position_embeddings"]?.intValue ?? c.int(["original_max_position_embeddings"]),
              orig > 0 else {
            throw FamilyError.hyperParameters(path: c.path, detail: "LongRoPE factors need max_position_embeddings and original_max_position_embeddings")
        }
        let scale = Double(ctx) / Double(orig)
        let attn: Double
        switch type {
        case "su", "longrope": attn = scale > 1 ? (1 + log(scale) / log(Double(orig))).squareRoot() : 1
        case "yarn": attn = scale > 1 ? 0.1 * log(scale) + 1 : 1
        default: throw FamilyError.hyperParameters(path: c.path, detail: "rope scaling type \(displayName(type)) is not supported with long_factor")
        }
        guard let short = c.rope["short_factor"]?.arrayValue else { throw FamilyError.hyperParameters(path: c.path, detail: "long_factor without short_factor") }
        let dims = ropeDims(c)
        guard long.count == short.count, 2 * long.count == dims else {
            throw FamilyError.hyperParameters(path: c.path, detail: "rope long/short factors must have \(dims / 2) entries (have \(long.count), \(short.count))")
        }
        func floats(_ a: [JSONValue]) throws -> [Float] {
            var out: [Float] = []
            for v in a {
                guard let d = v.doubleValue else { throw FamilyError.hyperParameters(path: c.path, detail: "rope factors must be numbers") }
                out.append(Float(d))
            }
            return out
        }
        return (try floats(long), try floats(short), attn)
    }

    public static func generatedTensors(_ c: ModelConfig) throws -> [(name: String, values: [Float])] {
        guard let f = try longRoPE(c) else { return [] }
        return [("rope_factors_long.weight", f.long), ("rope_factors_short.weight", f.short)]
    }

    static let names = NameMap.llama.adding(perLayer: ["self_attn.qkv_proj": "attn_qkv", "mlp.gate_up_proj": "ffn_up"])

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? {
        if NameMap.isIgnored(hfName) { return .skip }
        return names.map(hfName, blockCount: c.blockCount).map { .map($0.0, .none) }
    }

    public static func tokenizerOptions(_ c: ModelConfig) -> TokenizerOptions {
        var o = TokenizerOptions()
        o.phi3Vocab = true
        return o
    }

    // MARK: inference

    struct Layer: Sendable {
        let attnNorm: [Float], ffnNorm: [Float]
        /// Fused [q | k | v], or nil when separate.
        let wqkv: Weight?
        let wq: Weight?, wk: Weight?, wv: Weight?
        let wo: Weight
        /// Fused [gate | up].
        let wUp: Weight
        let wDown: Weight
    }

    public let dims: ModelDims
    public let tokenEmbd: Weight
    let output: Weight
    let outputBias: [Float]?
    let outputNorm: [Float]
    let layers: [Layer]
    let eps: Float
    let ropeShort: RoPE.Key
    let ropeLong: RoPE.Key
    let nCtxOrig: Int

    public init(_ t: TensorSet) throws {
        let d = try t.standardDims()
        dims = d
        let qWidth = d.nHead * d.headDim, kvWidth = d.nHeadKV * d.headDim
        tokenEmbd = try t.matrix(TensorName.tokenEmbd, [d.nEmbd, d.nVocab])
        let untied = try t.optionalMatrix(TensorName.output, [d.nEmbd, d.nVocab])
        output = untied ?? tokenEmbd
        outputBias = try t.optionalVector("output.bias", d.nVocab)
        outputNorm = try t.vector(TensorName.outputNorm, d.nEmbd)
        eps = try t.float(GGUFKey.Attention.layerNormRmsEpsilon, default: 1e-5)
        let ropeDims = try t.ropeDims(headDim: d.headDim)
        let base = try t.float(GGUFKey.Rope.freqBase, default: 10000, positive: true)
        let attnFactor = try t.float(GGUFKey.Rope.scalingAttnFactor, default: 1, positive: true)
        let short = try t.optionalVector("rope_factors_short.weight", ropeDims / 2)
        let long = try t.optionalVector("rope_factors_long.weight", ropeDims / 2)
        ropeShort = RoPE.Key(dims: ropeDims, neox: true, base: base, factors: short, attnFactor: attnFactor)
        ropeLong = RoPE.Key(dims: ropeDims, neox: true, base: base, factors: long, attnFactor: attnFactor)
        nCtxOrig = try t.int(GGUFKey.Rope.scalingOriginalContextLength, default: t.int(GGUFKey.LLM.contextLength, default: 0, in: 0...Int(UInt32.max)),
                             in: 0...Int(UInt32.max))
        let fused = try t.allOrNone("attn_qkv.weight", layers: d.nLayer)
        var layers: [Layer] = []
        for i in 0..<d.nLayer {
            func n(_ s: String) -> String { TensorName.block(i, s) }
            layers.append(Layer(
                attnNorm: try t.vector(n("attn_norm.weight"), d.nEmbd), ffnNorm: try t.vector(n("ffn_norm.weight"), d.nEmbd),
                wqkv: fused ? try t.matrix(n("attn_qkv.weight"), [d.nEmbd, qWidth + 2 * kvWidth]) : nil,
                wq: fused ? nil : try t.matrix(n("attn_q.weight"), [d.nEmbd, qWidth]),
                wk: fused ? nil : try t.matrix(n("attn_k.weight"), [d.nEmbd, kvWidth]),
                wv: fused ? nil : try t.matrix(n("attn_v.weight"), [d.nEmbd, kvWidth]),
                wo: try t.matrix(n("attn_output.weight"), [qWidth, d.nEmbd]),
                wUp: try t.matrix(n("ffn_up.weight"), [d.nEmbd, 2 * d.nFF]),
                wDown: try t.matrix(n("ffn_down.weight"), [d.nFF, d.nEmbd])))
        }
        self.layers = layers
    }

    public func layer(_ il: Int, _ x: Matrix, _ p: Pass) {
        let l = layers[il], d = dims
        let qWidth = d.nHead * d.headDim, kvWidth = d.nHeadKV * d.headDim
        let cur = p.matrix("cur", cols: d.nEmbd)
        p.rmsNorm(x, l.attnNorm, eps: eps, into: cur)
        let q: Matrix, k: Matrix, v: Matrix
        if let w = l.wqkv {
            let qkv = p.mul(w, cur, "qkv")
            q = p.columns(qkv, from: 0, count: qWidth, "q")
            k = p.columns(qkv, from: qWidth, count: kvWidth, "k")
            v = p.columns(qkv, from: qWidth + kvWidth, count: kvWidth, "v")
        } else {
            q = p.mul(l.wq!, cur, "q"); k = p.mul(l.wk!, cur, "k"); v = p.mul(l.wv!, cur, "v")
        }
        // llama_model::get_rope_factors: the long factors once the context exceeds the original one
        let rope = nCtxOrig > 0 && p.contextSize > nCtxOrig ? ropeLong : ropeShort
        p.rope(q, heads: d.nHead, rope)
        p.rope(k, heads: d.nHeadKV, rope)
        p.scale(q, 1 / sqrtf(Float(d.headDim)))
        let attn = p.attention(layer: il, q: q, k: k, v: v, heads: d.nHead, kvHeads: d.nHeadKV, headDim: d.headDim, scale: 1)
        let proj = p.mul(l.wo, attn, "proj")
        p.add(x, proj)
        p.rmsNorm(x, l.ffnNorm, eps: eps, into: cur)
        let gateUp = p.mul(l.wUp, cur, "gate_up")
        let gate = p.columns(gateUp, from: 0, count: d.nFF, "gate"), up = p.columns(gateUp, from: d.nFF, count: d.nFF, "up")
        p.swiglu(gate, up)
        let down = p.mul(l.wDown, gate, "proj")
        p.add(x, down)
    }

    public func output(_ x: Matrix, _ p: Pass) -> Matrix {
        let normed = p.matrix("out_norm", cols: dims.nEmbd, rows: x.rows)
        p.rmsNorm(x, outputNorm, eps: eps, into: normed)
        let out = Matrix(rows: x.rows, cols: dims.nVocab)
        p.engine.multiply(output, normed, into: out)
        if let b = outputBias { p.addBias(out, b) }
        return out
    }
}
