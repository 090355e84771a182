import Foundation
import GGUFWriter
import Inference
import MappedIO
import ModelMapping
import StrictJSON

/// Phi-2 and Phi-1.5 (`phi2`): a parallel block — attention and the GELU MLP both read the same
/// LayerNorm output and are added to the residual together — with biases everywhere, NEOX rope on
/// the first `partial_rotary_factor` of each head, and a biased output projection.
/// conversion/phi.py `Phi2Model`, src/models/phi2.cpp.
public struct Phi2: Family {
    public static let hfArchitectures = ["PhiForCausalLM"]
    public static let ggufArchitecture = "phi2"

    // MARK: conversion

    /// transformers' PhiConfig defaults.
    public static var configDefaults: JSONObject {
        var o = JSONObject()
        o.append("vocab_size", .int(51200))
        o.append("hidden_size", .int(2048))
        o.append("intermediate_size", .int(8192))
        o.append("num_hidden_layers", .int(24))
        o.append("num_attention_heads", .int(32))
        o.append("max_position_embeddings", .int(2048))
        o.append("layer_norm_eps", .double(1e-5))
        o.append("partial_rotary_factor", .double(0.5))
        return o
    }

    /// Phi2Model.set_gguf_parameters, in its order (it does not call TextModel's: no rope base).
    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        let a = ggufArchitecture
        guard let ctx = c.int(["n_positions", "max_position_embeddings"]),
              let eps = c.double(["layer_norm_epsilon", "layer_norm_eps"]),
              let pct = c.partialRotaryFactor else {
            throw FamilyError.hyperParameters(path: c.path, detail: "max_position_embeddings, layer_norm_eps and partial_rotary_factor are required")
        }
        guard pct > 0, pct <= 1 else { throw FamilyError.hyperParameters(path: c.path, detail: "partial_rotary_factor \(pct) is outside (0, 1]") }
        guard 4 * c.embeddingLength <= Int(UInt32.max) else { throw FamilyError.hyperParameters(path: c.path, detail: "hidden_size is absurd") }
        let ropeDims = c.rotaryDims(factor: pct)
        return [
            (GGUFKey.LLM.contextLength(a), .uint32(UInt32(ctx))),
            (GGUFKey.LLM.embeddingLength(a), .uint32(UInt32(c.embeddingLength))),
            // convert writes 4·n_embd whatever intermediate_size says
            (GGUFKey.LLM.feedForwardLength(a), .uint32(UInt32(4 * c.embeddingLength))),
            (GGUFKey.LLM.blockCount(a), .uint32(UInt32(c.blockCount))),
            (GGUFKey.Attention.headCount(a), .uint32(UInt32(c.headCount))),
            (GGUFKey.Attention.headCountKv(a), .uint32(UInt32(c.headCount))),
            (GGUFKey.Attention.layerNormEpsilon(a), .float32(Float(eps))),
            (GGUFKey.Rope.dimensionCount(a), .uint32(UInt32(ropeDims))),
            (GGUFKey.General.fileType, .uint32(fileType)),
            (GGUFKey.Tokenizer.addBosToken, .bool(false)),
        ]
    }

    static let names = NameMap(global: [
        "model.embed_tokens": "token_embd",
        "model.final_layernorm": "output_norm",
        "lm_head": "output",
    ], perLayer: [
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.dense": "attn_output",
        "mlp.fc1": "ffn_up",
        "mlp.fc2": "ffn_down",
    ])

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? {
        if NameMap.isIgnored(hfName) { return .skip }
        return names.map(hfName, blockCount: c.blockCount).map { .map($0.0, .none) }
    }

    public static func tokenizerOptions(_ c: ModelConfig) -> TokenizerOptions {
        var o = TokenizerOptions()
        // convert recognises Phi's CodeGen vocabulary by its hash and names it phi-2; llama.cpp
        // splits it as gpt-2
        o.preTokenizerAliases = ["gpt-2": "phi-2"]
        return o
    }

    // MARK: inference

    struct Layer: Sendable {
        let attnNorm: [Float], attnNormB: [Float]
        /// Fused [q | k | v] (older phi2 GGUFs), or nil when separate.
        let wqkv: Weight?, bqkv: [Float]?
        let wq: Weight?, bq: [Float]?, wk: Weight?, bk: [Float]?, wv: Weight?, bv: [Float]?
        let wo: Weight, bo: [Float]
        let wUp: Weight, bUp: [Float]
        let wDown: Weight, bDown: [Float]
    }

    public let dims: ModelDims
    public let tokenEmbd: Weight
    let output: Weight
    let outputBias: [Float]
    let outputNorm: [Float], outputNormB: [Float]
    let layers: [Layer]
    let eps: Float
    let rope: RoPE.Key

    public init(_ t: TensorSet) throws {
        let d = try t.standardDims()
        dims = d
        let qWidth = d.nHead * d.headDim, kvWidth = d.nHeadKV * d.headDim
        tokenEmbd = try t.matrix(TensorName.tokenEmbd, [d.nEmbd, d.nVocab])
        output = try t.matrix(TensorName.output, [d.nEmbd, d.nVocab])
        outputBias = try t.vector("output.bias", d.nVocab)
        outputNorm = try t.vector(TensorName.outputNorm, d.nEmbd)
        outputNormB = try t.vector("output_norm.bias", d.nEmbd)
        eps = try t.float(GGUFKey.Attention.layerNormEpsilon, default: 1e-5, positive: true)
        rope = RoPE.Key(dims: try t.ropeDims(headDim: d.headDim), neox: true,
                        base: try t.float(GGUFKey.Rope.freqBase, default: 10000, positive: true))
        let fused = try t.allOrNone("attn_qkv.weight", layers: d.nLayer)
        var layers: [Layer] = []
        for i in 0..<d.nLayer {
            func n(_ s: String) -> String { TensorName.block(i, s) }
            layers.append(Layer(
                attnNorm: try t.vector(n("attn_norm.weight"), d.nEmbd), attnNormB: try t.vector(n("attn_norm.bias"), d.nEmbd),
                wqkv: fused ? try t.matrix(n("attn_qkv.weight"), [d.nEmbd, qWidth + 2 * kvWidth]) : nil,
                bqkv: fused ? try t.vector(n("attn_qkv.bias"), qWidth + 2 * kvWidth) : nil,
                wq: fused ? nil : try t.matrix(n("attn_q.weight"), [d.nEmbd, qWidth]),
                bq: fused ? nil : try t.vector(n("attn_q.bias"), qWidth),
                wk: fused ? nil : try t.matrix(n("attn_k.weight"), [d.nEmbd, kvWidth]),
                bk: fused ? nil : try t.vector(n("attn_k.bias"), kvWidth),
                wv: fused ? nil : try t.matrix(n("attn_v.weight"), [d.nEmbd, kvWidth]),
                bv: fused ? nil : try t.vector(n("attn_v.bias"), kvWidth),
                wo: try t.matrix(n("attn_output.weight"), [qWidth, d.nEmbd]), bo: try t.vector(n("attn_output.bias"), d.nEmbd),
                wUp: try t.matrix(n("ffn_up.weight"), [d.nEmbd, d.nFF]), bUp: try t.vector(n("ffn_up.bias"), d.nFF),
                wDown: try t.matrix(n("ffn_down.weight"), [d.nFF, d.nEmbd]), bDown: try t.vector(n("ffn_down.bias"), d.nEmbd)))
        }
        self.layers = layers
    }

    public func layer(_ il: Int, _ x: Matrix, _ p: Pass) {
        let l = layers[il], d = dims
        let qWidth = d.nHead * d.headDim, kvWidth = d.nHeadKV * d.headDim
        let cur = p.matrix("cur", cols: d.nEmbd)
        p.layerNorm(x, l.attnNorm, l.attnNormB, eps: eps, into: cur)
        let q: Matrix, k: Matrix, v: Matrix
        if let w = l.wqkv, let b = l.bqkv {
            let qkv = p.mul(w, cur, "qkv")
            p.addBias(qkv, b)
            q = p.columns(qkv, from: 0, count: qWidth, "q")
            k = p.columns(qkv, from: qWidth, count: kvWidth, "k")
            v = p.columns(qkv, from: qWidth + kvWidth, count: kvWidth, "v")
        } else {
            q = p.mul(l.wq!, cur, "q"); p.addBias(q, l.bq!)
            k = p.mul(l.wk!, cur, "k"); p.addBias(k, l.bk!)
            v = p.mul(l.wv!, cur, "v"); p.addBias(v, l.bv!)
        }
        p.rope(q, heads: d.nHead, rope)
        p.rope(k, heads: d.nHeadKV, rope)
        // phi2.cpp scales Q before the product (precision), then attends with scale 1
        p.scale(q, 1 / sqrtf(Float(d.headDim)))
        let attn = p.attention(layer: il, q: q, k: k, v: v, heads: d.nHead, kvHeads: d.nHeadKV, headDim: d.headDim, scale: 1)
        let attnOut = p.mul(l.wo, attn, "attn_out")
        p.addBias(attnOut, l.bo)
        let up = p.mul(l.wUp, cur, "up")
        p.addBias(up, l.bUp)
        p.gelu(up)
        let ffnOut = p.mul(l.wDown, up, "ffn_out")
        p.addBias(ffnOut, l.bDown)
        // (attn + ffn) + residual, in ggml's order
        p.add(attnOut, ffnOut)
        p.add(x, attnOut)
    }

    public func output(_ x: Matrix, _ p: Pass) -> Matrix {
        let normed = p.matrix("out_norm", cols: dims.nEmbd, rows: x.rows)
        p.layerNorm(x, outputNorm, outputNormB, eps: eps, into: normed)
        let out = Matrix(rows: x.rows, cols: dims.nVocab)
        p.engine.multiply(output, normed, into: out)
        p.addBias(out, outputBias)
        return out
    }
}
