import Foundation
import GGUFWriter
import Inference
import MappedIO

/// The Gemma layer all three generations share (src/models/gemma.cpp, gemma2.cpp, gemma3.cpp):
/// embeddings scaled by √n_embd, RMSNorm, NEOX rope per layer (its own base on sliding-window
/// layers), queries pre-scaled and attention at scale 1, GeGLU; Gemma 2 and 3 add RMSNorms after
/// attention and after the MLP, Gemma 3 per-head q/k norms, Gemma 2 attention soft-capping.
struct GemmaBlock: Sendable {
    struct Layer: Sendable {
        let attnNorm: [Float], ffnNorm: [Float]
        let qNorm: [Float]?, kNorm: [Float]?
        let postAttnNorm: [Float]?, postFFNNorm: [Float]?
        let wq: Weight, wk: Weight, wv: Weight, wo: Weight
        let wGate: Weight, wUp: Weight, wDown: Weight
        let rope: RoPE.Key
        /// > 0 on sliding-window layers.
        let window: Int
    }

    let dims: ModelDims
    let output: Weight
    let outputNorm: [Float]
    let layers: [Layer]
    let eps: Float
    let attentionScale: Float
    let attnSoftcap: Float
    let finalSoftcap: Float

    init(_ t: TensorSet, dims d: ModelDims, output: Weight, qkNorm: Bool, postNorms: Bool, eps: Float,
         attentionScale: Float, attnSoftcap: Float, finalSoftcap: Float, rope: [RoPE.Key], window: [Int]) throws {
        dims = d
        self.output = output
        self.eps = eps
        self.attentionScale = attentionScale
        self.attnSoftcap = attnSoftcap
        self.finalSoftcap = finalSoftcap
        outputNorm = try t.vector(TensorName.outputNorm, d.nEmbd)
        let qWidth = d.nHead * d.headDim, kvWidth = d.nHeadKV * d.headDim
        var layers: [Layer] = []
        for i in 0..<d.nLayer {
            func n(_ s: String) -> String { TensorName.block(i, s) }
            layers.append(Layer(
                attnNorm: try t.vector(n("attn_norm.weight"), d.nEmbd), ffnNorm: try t.vector(n("ffn_norm.weight"), d.nEmbd),
                qNorm: qkNorm ? try t.vector(n("attn_q_norm.weight"), d.headDim) : nil,
                kNorm: qkNorm ? try t.vector(n("attn_k_norm.weight"), d.headDim) : nil,
                postAttnNorm: postNorms ? try t.vector(n("post_attention_norm.weight"), d.nEmbd) : nil,
                postFFNNorm: postNorms ? try t.vector(n("post_ffw_norm.weight"), d.nEmbd) : nil,
                wq: try t.matrix(n("attn_q.weight"), [d.nEmbd, qWidth]), wk: try t.matrix(n("attn_k.weight"), [d.nEmbd, kvWidth]),
                wv: try t.matrix(n("attn_v.weight"), [d.nEmbd, kvWidth]), wo: try t.matrix(n("attn_output.weight"), [qWidth, d.nEmbd]),
                wGate: try t.matrix(n("ffn_gate.weight"), [d.nEmbd, d.nFF]), wUp: try t.matrix(n("ffn_up.weight"), [d.nEmbd, d.nFF]),
                wDown: try t.matrix(n("ffn_down.weight"), [d.nFF, d.nEmbd]),
                rope: rope[i], window: window[i]))
        }
        self.layers = layers
    }

    /// llama_model_base::load_swa_pattern: `attention.sliding_window_pattern` as a per-layer array,
    /// or a period n (layer il is local when il % n < n − 1; 0: all local), else `defaultPeriod`.
    static func swaPattern(_ t: TensorSet, layers: Int, defaultPeriod: Int) throws -> [Bool] {
        if let a = try t.boolArray(GGUFKey.Attention.slidingWindowPattern, count: layers) { return a }
        let n = try t.int(GGUFKey.Attention.slidingWindowPattern, default: defaultPeriod, in: 0...ModelDims.maxLayers)
        return (0..<layers).map { n == 0 || $0 % n < n - 1 }
    }

    func embed(_ tokenEmbd: Weight, _ tokens: [Int32], _ p: Pass) -> Matrix {
        p.embedRows(tokenEmbd, tokens, scale: sqrtf(Float(dims.nEmbd)))
    }

    func layer(_ il: Int, _ x: Matrix, _ p: Pass) {
        let l = layers[il], d = dims
        let cur = p.matrix("cur", cols: d.nEmbd)
        p.rmsNorm(x, l.attnNorm, eps: eps, into: cur)
        let q = p.mul(l.wq, cur, "q"), k = p.mul(l.wk, cur, "k"), v = p.mul(l.wv, cur, "v")
        if let w = l.qNorm { p.rmsNorm(q, w, eps: eps, into: q, groups: d.nHead) }
        p.rope(q, heads: d.nHead, l.rope)
        if let w = l.kNorm { p.rmsNorm(k, w, eps: eps, into: k, groups: d.nHeadKV) }
        p.rope(k, heads: d.nHeadKV, l.rope)
        p.scale(q, attentionScale)
        let attn = p.attention(layer: il, q: q, k: k, v: v, heads: d.nHead, kvHeads: d.nHeadKV, headDim: d.headDim,
                               scale: 1, window: l.window, softcap: attnSoftcap)
        let proj = p.mul(l.wo, attn, "proj")
        if let w = l.postAttnNorm { p.rmsNorm(proj, w, eps: eps, into: proj) }
        p.add(x, proj)                                   // sa_out
        p.rmsNorm(x, l.ffnNorm, eps: eps, into: cur)
        let gate = p.mul(l.wGate, cur, "gate"), up = p.mul(l.wUp, cur, "up")
        p.geglu(gate, up)
        let down = p.mul(l.wDown, gate, "proj")
        if let w = l.postFFNNorm { p.rmsNorm(down, w, eps: eps, into: down) }
        p.add(x, down)
    }

    func output(_ x: Matrix, _ p: Pass) -> Matrix {
        let normed = p.matrix("out_norm", cols: dims.nEmbd, rows: x.rows)
        p.rmsNorm(x, outputNorm, eps: eps, into: normed)
        let out = Matrix(rows: x.rows, cols: dims.nVocab)
        p.engine.multiply(output, normed, into: out)
        if finalSoftcap > 0 { p.softcap(out, finalSoftcap) }
        return out
    }
}
