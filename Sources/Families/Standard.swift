import Foundation
import GGUFWriter
import Inference
import MappedIO
import ModelMapping

/// What several families share: convert_hf_to_gguf's TextModel hyper-parameters, and llama.cpp's
/// llama-style decoder block.
enum Standard {
    /// TextModel.set_gguf_parameters, in its order (key_length/value_length when `headDim` is
    /// given).
    /// `ropeThetaDefault`/`slidingThetaDefault` stand for rope bases the family's transformers
    /// config class always has.
    static func textModel(_ c: ModelConfig, arch: String, headDim: Int?, fileType: UInt32,
                          ropeThetaDefault: Double? = nil, slidingThetaDefault: Double? = nil) -> [(String, GGUFValue)] {
        var kv: [(String, GGUFValue)] = []
        kv.append((GGUFKey.LLM.blockCount(arch), .uint32(UInt32(c.blockCount))))
        if let n = c.contextLength { kv.append((GGUFKey.LLM.contextLength(arch), .uint32(UInt32(n)))) }
        kv.append((GGUFKey.LLM.embeddingLength(arch), .uint32(UInt32(c.embeddingLength))))
        if let n = c.feedForwardLength { kv.append((GGUFKey.LLM.feedForwardLength(arch), .uint32(UInt32(n)))) }
        kv.append((GGUFKey.Attention.headCount(arch), .uint32(UInt32(c.headCount))))
        if let n = c.headCountKV { kv.append((GGUFKey.Attention.headCountKv(arch), .uint32(UInt32(n)))) }
        let rope = c.rope
        if let type = rope["rope_type"]?.stringValue {
            let factor = rope["factor"]?.doubleValue
            switch type {
            case "linear" where factor != nil:
                kv.append((GGUFKey.Rope.scalingType(arch), .string("linear")))
                kv.append((GGUFKey.Rope.scalingFactor(arch), .float32(Float(factor!))))
            case "yarn" where factor != nil:
                kv.append((GGUFKey.Rope.scalingType(arch), .string("yarn")))
                kv.append((GGUFKey.Rope.scalingFactor(arch), .float32(Float(factor!))))
                if let o = rope["original_max_position_embeddings"]?.intValue {
                    kv.append((GGUFKey.Rope.scalingOriginalContextLength(arch), .uint32(UInt32(o))))
                }
                if let v = rope["extrapolation_factor"]?.doubleValue { kv.append((GGUFKey.Rope.scalingYarnExtFactor(arch), .float32(Float(v)))) }
                if let v = (rope["attention_factor"] ?? rope["attn_factor"])?.doubleValue { kv.append((GGUFKey.Rope.scalingYarnAttnFactor(arch), .float32(Float(v)))) }
                if let v = rope["beta_fast"]?.doubleValue { kv.append((GGUFKey.Rope.scalingYarnBetaFast(arch), .float32(Float(v)))) }
                if let v = rope["beta_slow"]?.doubleValue { kv.append((GGUFKey.Rope.scalingYarnBetaSlow(arch), .float32(Float(v)))) }
            case "su", "longrope":
                kv.append((GGUFKey.Rope.scalingType(arch), .string("longrope")))
            default: break
            }
        }
        if let theta = rope["rope_theta"]?.doubleValue ?? ropeThetaDefault { kv.append((GGUFKey.Rope.freqBase(arch), .float32(Float(theta)))) }
        if let theta = c.ropeThetaSliding ?? slidingThetaDefault { kv.append((GGUFKey.Rope.freqBaseSwa(arch), .float32(Float(theta)))) }
        if let eps = c.rmsNormEps { kv.append((GGUFKey.Attention.layerNormRmsEpsilon(arch), .float32(Float(eps)))) }
        if let hd = headDim {
            kv.append((GGUFKey.Attention.keyLength(arch), .uint32(UInt32(hd))))
            kv.append((GGUFKey.Attention.valueLength(arch), .uint32(UInt32(hd))))
        }
        kv.append((GGUFKey.General.fileType, .uint32(fileType)))
        return kv
    }

    /// Sets `key` in place (gguf-py's writer is a dict: a second add overwrites the value and keeps
    /// the first position), or appends it.
    static func set(_ kv: inout [(String, GGUFValue)], _ key: String, _ value: GGUFValue) {
        if let i = kv.firstIndex(where: { $0.0 == key }) { kv[i].1 = value } else { kv.append((key, value)) }
    }
}

/// llama.cpp's llama-style layer (src/models/llama.cpp, qwen2.cpp, qwen3.cpp): RMSNorm, q/k/v with
/// optional biases and per-head q/k RMSNorm, RoPE (pairs or NEOX halves), causal GQA, the output
/// projection, RMSNorm, SwiGLU, and the tied or untied output head.
struct StandardBlock: Sendable {
    struct Layer: Sendable {
        let attnNorm: [Float], ffnNorm: [Float]
        let wq: Weight, wk: Weight, wv: Weight, wo: Weight
        let bq: [Float]?, bk: [Float]?, bv: [Float]?
        /// `attn_output.bias` (optional).
        let bo: [Float]?
        let qNorm: [Float]?, kNorm: [Float]?
        let wGate: Weight, wUp: Weight, wDown: Weight
    }

    let dims: ModelDims
    let layers: [Layer]
    let output: Weight
    let outputNorm: [Float]
    let eps: Float
    let rope: RoPE.Key
    /// Layers that skip RoPE (SmolLM3's NoPE layers).
    let noRope: [Bool]
    /// Each residual branch scaled before it is added (MiniCPM's scale_depth/√n_layer); 0: none.
    let residualScale: Float

    /// Takes the tensors llama.cpp's loader creates for these families. `qkNorm` makes
    /// `attn_q_norm`/`attn_k_norm` required.
    init(_ t: TensorSet, dims: ModelDims, neox: Bool, qkNorm: Bool = false, noRope: [Bool]? = nil,
         residualScale: Float = 0) throws {
        self.dims = dims
        self.residualScale = residualScale
        let d = dims
        let qWidth = d.nHead * d.headDim, kvWidth = d.nHeadKV * d.headDim
        let ropeDims = try t.ropeDims(headDim: d.headDim)
        eps = try t.float(GGUFKey.Attention.layerNormRmsEpsilon, default: 1e-5)
        let base = try t.float(GGUFKey.Rope.freqBase, default: 10000, positive: true)
        let factors = try t.optionalVector(TensorName.ropeFreqs, ropeDims / 2)
        rope = RoPE.Key(dims: ropeDims, neox: neox, base: base, factors: factors)
        self.noRope = noRope ?? Array(repeating: false, count: d.nLayer)
        let tied = try t.matrix(TensorName.tokenEmbd, [d.nEmbd, d.nVocab])
        output = try t.optionalMatrix(TensorName.output, [d.nEmbd, d.nVocab]) ?? tied
        outputNorm = try t.vector(TensorName.outputNorm, d.nEmbd)
        let hasBias = try t.allOrNone("attn_q.bias", layers: d.nLayer)
        var layers: [Layer] = []
        for i in 0..<d.nLayer {
            func n(_ s: String) -> String { TensorName.block(i, s) }
            func bias(_ s: String, _ w: Int) throws -> [Float]? {
                if hasBias { return try t.vector(n(s), w) }
                if t.has(n(s)) { throw t.fail("tensor \(n(s)) is present, but layer 0 has no attn_q.bias") }
                return nil
            }
            layers.append(Layer(
                attnNorm: try t.vector(n("attn_norm.weight"), d.nEmbd), ffnNorm: try t.vector(n("ffn_norm.weight"), d.nEmbd),
                wq: try t.matrix(n("attn_q.weight"), [d.nEmbd, qWidth]), wk: try t.matrix(n("attn_k.weight"), [d.nEmbd, kvWidth]),
                wv: try t.matrix(n("attn_v.weight"), [d.nEmbd, kvWidth]), wo: try t.matrix(n("attn_output.weight"), [qWidth, d.nEmbd]),
                bq: try bias("attn_q.bias", qWidth), bk: try bias("attn_k.bias", kvWidth), bv: try bias("attn_v.bias", kvWidth),
                bo: try t.optionalVector(n("attn_output.bias"), d.nEmbd),
                qNorm: qkNorm ? try t.vector(n("attn_q_norm.weight"), d.headDim) : nil,
                kNorm: qkNorm ? try t.vector(n("attn_k_norm.weight"), d.headDim) : nil,
                wGate: try t.matrix(n("ffn_gate.weight"), [d.nEmbd, d.nFF]), wUp: try t.matrix(n("ffn_up.weight"), [d.nEmbd, d.nFF]),
                wDown: try t.matrix(n("ffn_down.weight"), [d.nFF, d.nEmbd])))
        }
        self.layers = layers
    }

    func layer(_ il: Int, _ x: Matrix, _ p: Pass) {
        let l = layers[il], d = dims
        let cur = p.matrix("cur", cols: d.nEmbd)
        p.rmsNorm(x, l.attnNorm, eps: eps, into: cur)
        let q = p.mul(l.wq, cur, "q"), k = p.mul(l.wk, cur, "k"), v = p.mul(l.wv, cur, "v")
        if let b = l.bq { p.addBias(q, b) }
        if let b = l.bk { p.addBias(k, b) }
        if let b = l.bv { p.addBias(v, b) }
        if let w = l.qNorm { p.rmsNorm(q, w, eps: eps, into: q, groups: d.nHead) }
        if let w = l.kNorm { p.rmsNorm(k, w, eps: eps, into: k, groups: d.nHeadKV) }
        if !noRope[il] {
            p.rope(q, heads: d.nHead, rope)
            p.rope(k, heads: d.nHeadKV, rope)
        }
        let attn = p.attention(layer: il, q: q, k: k, v: v, heads: d.nHead, kvHeads: d.nHeadKV, headDim: d.headDim,
                               scale: 1 / sqrtf(Float(d.headDim)))
        let proj = p.mul(l.wo, attn, "proj")
        if let b = l.bo { p.addBias(proj, b) }
        if residualScale != 0 { p.scale(proj, residualScale) }
        p.add(x, proj)
        p.rmsNorm(x, l.ffnNorm, eps: eps, into: cur)
        let gate = p.mul(l.wGate, cur, "gate"), up = p.mul(l.wUp, cur, "up")
        p.swiglu(gate, up)
        let down = p.mul(l.wDown, gate, "proj")
        if residualScale != 0 { p.scale(down, residualScale) }
        p.add(x, down)
    }

    func output(_ x: Matrix, _ p: Pass) -> Matrix {
        let normed = p.matrix("out_norm", cols: dims.nEmbd, rows: x.rows)
        p.rmsNorm(x, outputNorm, eps: eps, into: normed)
        let out = Matrix(rows: x.rows, cols: dims.nVocab)
        p.engine.multiply(output, normed, into: out)
        return out
    }
}
