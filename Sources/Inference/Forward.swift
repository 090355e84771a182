import CKernels
import Dispatch
import Foundation
import Kernels
import Workers

/// A row-major f32 matrix owned by the forward pass.
public struct Matrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let data: UnsafeMutablePointer<Float>

    /// Uninitialised: every matrix of the forward pass is written whole before it is read.
    public init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        data = .allocate(capacity: max(rows * cols, 1))
    }

    public func free() { data.deallocate() }

    /// A copy the caller frees.
    public func copy() -> Matrix {
        let c = Matrix(rows: rows, cols: cols)
        c.data.update(from: data, count: rows * cols)
        return c
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeMutablePointer<Float> { data + r * cols }
}

/// How weight × activation products are computed.
public protocol MatMulEngine: Sendable {
    /// out[t][r] = Σ_c W[r][c] · x[t][c], for all tokens t of `x` and rows r of `w`.
    func multiply(_ w: Weight, _ x: Matrix, into out: Matrix)
}

/// A forward pass over a batch of consecutive positions starting at 0 (or continuing a KV cache),
/// as llama.cpp computes it: the model's family supplies the embedding, each layer and the output
/// head from the shared layers of `Pass`. Memory is a few activations of the batch, independent of
/// the text length.
public struct Forward: Sendable {
    public let model: Model
    public let engine: any MatMulEngine
    public let threads: Int

    public init(model: Model, engine: any MatMulEngine, threads: Int) {
        self.model = model
        self.engine = engine
        self.threads = max(1, threads)
    }

    /// Logits of positions `outputsFrom..<tokens.count`: a `(tokens.count − outputsFrom) × n_vocab`
    /// matrix the caller frees (llama.cpp likewise computes the output layer only for the batch
    /// entries that ask for logits). With a cache, the tokens continue the cached sequence and
    /// their keys/values are appended to it.
    public func logits(_ tokens: [Int32], cache: KVCache? = nil, outputsFrom: Int = 0) -> Matrix {
        precondition(outputsFrom >= 0 && outputsFrom < max(tokens.count, 1), "outputsFrom \(outputsFrom) out of range")
        let pass = Pass(forward: self, rows: tokens.count, cache: cache)
        defer { pass.free() }
        let x = model.architecture.embed(tokens, pass)
        defer { x.free() }
        return run(x, layers: 0..<model.hparams.nLayer, pass: pass, outputsFrom: outputsFrom)
    }

    /// The residual stream entering each layer (element l enters layer l, element n_layer leaves
    /// the last; the caller frees them): with `logits(fromLayer:hidden:)`, the effect of changing
    /// one layer's weights is measured without recomputing the layers before it.
    public func hiddenStates(_ tokens: [Int32]) -> [Matrix] {
        let pass = Pass(forward: self, rows: tokens.count, cache: nil)
        defer { pass.free() }
        let x = model.architecture.embed(tokens, pass)
        defer { x.free() }
        var states: [Matrix] = []
        for l in 0...model.hparams.nLayer {
            states.append(x.copy())
            if l < model.hparams.nLayer { model.architecture.layer(l, x, pass) }
        }
        return states
    }

    /// The residual stream entering layer 0 for `tokens` (the caller frees it): with `applyLayer`,
    /// a chunk is taken through the model one layer at a time, so that what a layer's products
    /// see can be collected while only one layer's worth of state is held.
    public func embedded(_ tokens: [Int32]) -> Matrix {
        let pass = Pass(forward: self, rows: tokens.count, cache: nil)
        defer { pass.free() }
        return model.architecture.embed(tokens, pass)
    }

    /// Runs layer `l` on `x` (a chunk's residual stream from position 0) in place.
    public func applyLayer(_ l: Int, to x: Matrix) {
        let pass = Pass(forward: self, rows: x.rows, cache: nil)
        defer { pass.free() }
        model.architecture.layer(l, x, pass)
    }

    /// Logits of positions `outputsFrom...` continuing from `hidden`, the residual stream entering
    /// layer `first` of a chunk that starts at position 0 (`hidden` is left unchanged).
    public func logits(fromLayer first: Int, hidden: Matrix, outputsFrom: Int = 0) -> Matrix {
        let pass = Pass(forward: self, rows: hidden.rows, cache: nil)
        defer { pass.free() }
        let x = hidden.copy()
        defer { x.free() }
        return run(x, layers: first..<model.hparams.nLayer, pass: pass, outputsFrom: outputsFrom)
    }

    /// Runs `layers` on the residual stream `x` (updated in place), then the output head on the
    /// rows from `outputsFrom`.
    func run(_ x: Matrix, layers: Range<Int>, pass: Pass, outputsFrom: Int) -> Matrix {
        for l in layers { model.architecture.layer(l, x, pass) }
        let nOut = x.rows - outputsFrom
        let tail = Matrix(rows: nOut, cols: x.cols)
        defer { tail.free() }
        tail.data.update(from: x.row(outputsFrom), count: nOut * x.cols)
        let out = model.architecture.output(tail, pass)
        pass.cache?.count += x.rows
        return out
    }
}

/// One batch's trip through the layers: its scratch matrices (allocated once, reused by every
/// layer), its rope tables, its place in the KV cache — and the operations families build their
/// layers from, each computed as ggml-cpu computes it.
public final class Pass: @unchecked Sendable {
    public let engine: any MatMulEngine
    public let threads: Int
    /// Rows (positions) of the batch.
    public let rows: Int
    /// Positions already in the cache: the batch's first row sits at position `past`.
    public let past: Int
    /// The context this run holds (llama.cpp's n_ctx): the cache's capacity, else the batch.
    public var contextSize: Int { cache?.capacity ?? past + rows }
    public let cache: KVCache?
    private var scratch: [String: Matrix] = [:]
    private var ropes: [RoPE.Key: RoPE] = [:]

    init(forward: Forward, rows: Int, cache: KVCache?) {
        engine = forward.engine
        threads = forward.threads
        self.rows = rows
        self.cache = cache
        past = cache?.count ?? 0
    }

    func free() { for m in scratch.values { m.free() } }

    /// A `rows × cols` scratch matrix named `key`, the same memory each time it is asked for.
    public func matrix(_ key: String, cols: Int, rows r: Int? = nil) -> Matrix {
        let r = r ?? rows
        if let m = scratch[key], m.cols == cols, m.rows == r { return m }
        scratch[key]?.free()
        let m = Matrix(rows: r, cols: cols)
        scratch[key] = m
        return m
    }

    /// W·x for every row of `x`, into the scratch matrix `key`.
    public func mul(_ w: Weight, _ x: Matrix, _ key: String) -> Matrix {
        let out = matrix(key, cols: w.rows, rows: x.rows)
        engine.multiply(w, x, into: out)
        return out
    }

    /// ggml_get_rows of the embedding (dequantized), then ggml_scale when the family scales it.
    /// The caller frees the result.
    public func embedRows(_ w: Weight, _ tokens: [Int32], scale: Float?) -> Matrix {
        let x = Matrix(rows: tokens.count, cols: w.cols)
        for (t, id) in tokens.enumerated() {
            w.row(Int(id), into: UnsafeMutableBufferPointer(start: x.row(t), count: w.cols))
        }
        if let scale { self.scale(x, scale) }
        return x
    }

    /// ggml_rms_norm then ggml_mul: mean of squares summed in double, 1/sqrtf(mean + eps), × weight.
    /// Rows of `x` are split into `groups` equal parts normalised on their own (per-head q/k norms).
    public func rmsNorm(_ x: Matrix, _ w: [Float], eps: Float, into out: Matrix, groups: Int = 1) {
        let d = x.cols / groups
        w.withUnsafeBufferPointer { wp in
            for t in 0..<x.rows {
                for g in 0..<groups {
                    let r = x.row(t) + g * d, o = out.row(t) + g * d
                    var sum = 0.0
                    for c in 0..<d { sum += Double(r[c] * r[c]) }
                    let scale = 1 / sqrtf(Float(sum / Double(d)) + eps)
                    for c in 0..<d { o[c] = r[c] * scale * wp[c] }
                }
            }
        }
    }

    /// ggml_norm then ggml_mul and ggml_add: mean and variance summed in double, as ggml does.
    public func layerNorm(_ x: Matrix, _ w: [Float], _ b: [Float], eps: Float, into out: Matrix) {
        let d = x.cols
        for t in 0..<x.rows {
            let r = x.row(t), o = out.row(t)
            var sum = 0.0
            for c in 0..<d { sum += Double(r[c]) }
            let mean = Float(sum / Double(d))
            var sum2 = 0.0
            for c in 0..<d { let v = r[c] - mean; o[c] = v; sum2 += Double(v * v) }
            let scale = 1 / sqrtf(Float(sum2 / Double(d)) + eps)
            for c in 0..<d { o[c] = o[c] * scale * w[c] + b[c] }
        }
    }

    public func addBias(_ m: Matrix, _ b: [Float]) {
        for t in 0..<m.rows { let r = m.row(t); for c in 0..<m.cols { r[c] += b[c] } }
    }

    /// a += b.
    public func add(_ a: Matrix, _ b: Matrix) {
        let n = a.rows * a.cols
        for i in 0..<n { a.data[i] += b.data[i] }
    }

    /// ggml_scale.
    public func scale(_ m: Matrix, _ s: Float) {
        let n = m.rows * m.cols
        for i in 0..<n { m.data[i] *= s }
    }

    /// cap·tanh(x/cap) (Gemma's final logit soft-capping: ggml_scale, ggml_tanh, ggml_scale).
    public func softcap(_ m: Matrix, _ cap: Float) {
        let n = m.rows * m.cols
        let inv = 1 / cap
        for i in 0..<n { m.data[i] = tanhf(m.data[i] * inv) * cap }
    }

    /// g ← silu(g)·u (ggml_swiglu_split: ggml's vectorised exp row by row, `ek_swiglu_rows`).
    public func swiglu(_ g: Matrix, _ u: Matrix) {
        ek_swiglu_rows(g.data, u.data, Int64(g.rows), Int64(g.cols))
    }

    /// The columns `from..<from+cols` of `m` into the scratch matrix `key` (a view of a fused
    /// projection: Phi-3's qkv and gate/up).
    public func columns(_ m: Matrix, from: Int, count cols: Int, _ key: String) -> Matrix {
        let out = matrix(key, cols: cols, rows: m.rows)
        for t in 0..<m.rows { out.row(t).update(from: m.row(t) + from, count: cols) }
        return out
    }

    /// g ← gelu(g)·u (ggml_geglu_split), gelu from ggml's f16 table as GGML_GELU_FP16 builds do.
    public func geglu(_ g: Matrix, _ u: Matrix) {
        let n = g.rows * g.cols
        for i in 0..<n { g.data[i] = GELU.f16Table(g.data[i]) * u.data[i] }
    }

    /// m ← gelu(m) (ggml_gelu, f16 table).
    public func gelu(_ m: Matrix) {
        let n = m.rows * m.cols
        for i in 0..<n { m.data[i] = GELU.f16Table(m.data[i]) }
    }

    /// ggml_rope_ext on `heads` heads of every row, at positions past…past+rows−1.
    public func rope(_ m: Matrix, heads: Int, _ p: RoPE.Key) {
        let r: RoPE
        if let c = ropes[p] { r = c } else { r = RoPE(p, positions: past + rows); ropes[p] = r }
        r.apply(m, heads: heads, offset: past)
    }

    /// Causal attention of layer `il` (grouped-query, flash attention over llama.cpp's f16 KV
    /// cache). K and V are rounded to f16 as the cache stores them and appended to the cache.
    /// `window` > 0 restricts each query to the last `window` positions; `softcap` > 0 caps the
    /// scores. The result is the scratch matrix "attn".
    public func attention(layer il: Int, q: Matrix, k: Matrix, v: Matrix, heads: Int, kvHeads: Int, headDim: Int,
                          scale: Float, window: Int = 0, softcap: Float = 0) -> Matrix {
        let out = matrix("attn", cols: heads * headDim)
        roundToF16(k)
        roundToF16(v)
        let g = AttentionGeometry(heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale, window: window, softcap: softcap, threads: threads)
        if let cache {
            cache.append(layer: il, k: k, v: v)
            g.run(q: q, k: cache.keys(il), v: cache.values(il), past: past, into: out)
        } else {
            g.run(q: q, k: k.data, v: v.data, past: 0, into: out)
        }
        return out
    }

    /// K and V are stored in llama.cpp's f16 KV cache.
    func roundToF16(_ m: Matrix) {
        let n = m.rows * m.cols
        for i in 0..<n { m.data[i] = f16(m.data[i]) }
    }
}

/// ggml's gelu (tanh approximation) through its f16 lookup table (GGML_GELU_FP16).
enum GELU {
    static func exact(_ x: Float) -> Float {
        let sqrt2OverPi: Float = 0.79788456080286535587989211986876
        let a: Float = 0.044715
        return 0.5 * x * (1 + tanhf(sqrt2OverPi * x * (1 + a * x * x)))
    }

    static let table: [Float] = (0..<65536).map { i in
        Float(Float16(exact(Float(Float16(bitPattern: UInt16(i))))))
    }

    @inline(__always)
    static func f16Table(_ x: Float) -> Float {
        if x <= -10 { return 0 }
        if x >= 10 { return x }
        return table[Int(Float16(x).bitPattern)]
    }
}

/// How one layer's attention is shaped: heads sharing K/V heads, the score scale, the mask.
struct AttentionGeometry {
    let heads: Int, kvHeads: Int, headDim: Int
    let scale: Float
    let window: Int
    let softcap: Float
    let threads: Int

    func run(q: Matrix, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, past: Int, into out: Matrix) {
        if q.rows >= 64 { tiled(q: q, k: k, v: v, past: past, into: out) } else { oneChunk(q: q, k: k, v: v, past: past, into: out) }
    }

    /// Fewer than 64 queries: ggml-cpu's per-row flash attention over the f16 KV cache: Q rounded
    /// to f16, scores in f32, online softmax, and the weighted sum of V accumulated in f16
    /// (ggml_vec_mad_f16 / ggml_vec_scale_f16). Query row t sits at position past + t, key/value
    /// row s at position s.
    func oneChunk(q: Matrix, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, past: Int, into out: Matrix) {
        let d = headDim
        let group = heads / kvHeads
        let scale = softcap > 0 ? self.scale / softcap : self.scale
        let cap = softcap, window = self.window
        let n = q.rows
        let kvCols = kvHeads * d
        let kp = SendablePointer(k), vp = SendablePointer(v)
        DispatchQueue.concurrentPerform(iterations: heads) { head in
            let kvh = head / group
            let q16 = UnsafeMutablePointer<Float>.allocate(capacity: d)
            let acc = UnsafeMutablePointer<Float>.allocate(capacity: d)
            defer { q16.deallocate(); acc.deallocate() }
            for t in 0..<n {
                let qr = q.row(t) + head * d
                for i in 0..<d { q16[i] = f16(qr[i]) }
                for i in 0..<d { acc[i] = 0 }
                var m = -Float.infinity
                var sum: Float = 0
                let pos = past + t
                let first = window > 0 ? max(0, pos - window + 1) : 0
                for s in first...pos {
                    let kr = kp.p + s * kvCols + kvh * d
                    // Summed in double: closest to ggml's f16 dot (f32 lanes reduced into a double);
                    // a 4-lane f32 sum moves q4_0's PPL by 0.3% and changes greedy output.
                    var score = Float(dotF16Exact(q16, kr, d)) * scale
                    if cap > 0 { score = cap * tanhf(score) }
                    var ms: Float = 1, vs: Float = 1
                    if score > m {
                        ms = expf(m - score)
                        m = score
                        if ms != 1 { for i in 0..<d { acc[i] = f16(acc[i] * ms) } }
                    } else {
                        vs = expf(score - m)
                    }
                    let vr = vp.p + s * kvCols + kvh * d
                    madF16(acc, vr, vs, d)
                    sum = sum * ms + vs
                }
                let o = out.row(t) + head * d
                let inv = 1 / sum
                for i in 0..<d { o[i] = acc[i] * inv }
            }
        }
    }

    /// A batch of ≥ 64 queries: ggml-cpu's tiled flash attention (f32 throughout, 64×64 tiles), which
    /// is what llama.cpp runs for such batches (perplexity, long prompts), in CKernels. Work items
    /// are (head, 64-query tile) pairs, taken dynamically since later tiles see more keys.
    func tiled(q: Matrix, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, past: Int, into out: Matrix) {
        let d = headDim
        let group = heads / kvHeads
        let n = q.rows
        let tiles = (n + 63) / 64
        let kvCols = kvHeads * d
        let nkv = past + n
        let ktStride = (nkv + 63) / 64 * 64 * d
        let kt = UnsafeMutablePointer<Float>.allocate(capacity: kvHeads * ktStride)
        defer { kt.deallocate() }
        let kp = SendablePointer(k), vp = SendablePointer(v), ktp = SendablePointer(kt)
        DispatchQueue.concurrentPerform(iterations: kvHeads) { kvh in
            ek_attention_pack_k(kp.p + kvh * d, kvCols, Int64(nkv), Int64(d), ktp.p + kvh * ktStride)
        }
        let heads = self.heads, scale = self.scale, window = Int64(self.window), cap = softcap
        let counter = ChunkCounter(heads * tiles)
        DispatchQueue.concurrentPerform(iterations: min(threads, heads * tiles)) { _ in
            while let item = counter.next() {
                // the last tiles first: they are the longest
                let head = item % heads, tile = tiles - 1 - item / heads
                let kvh = head / group
                ek_attention_tiled(q.data + head * d, q.cols, ktp.p + kvh * ktStride, vp.p + kvh * d, kvCols,
                                   Int64(past), Int64(tile * 64), Int64(min(n, tile * 64 + 64)), Int64(d), Int64(d),
                                   scale, window, cap, out.data + head * d, out.cols)
            }
        }
    }
}

/// Σ a[i]·b[i] for f16-valued inputs: each product is exact in f32, and the sum is kept in double
/// (four running sums, so the adds pipeline), which is within rounding of ggml's f16 dot.
@inline(__always)
func dotF16Exact(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    var i = 0
    while i + 4 <= n {
        s0 += Double(a[i] * b[i]); s1 += Double(a[i + 1] * b[i + 1])
        s2 += Double(a[i + 2] * b[i + 2]); s3 += Double(a[i + 3] * b[i + 3])
        i += 4
    }
    while i < n { s0 += Double(a[i] * b[i]); i += 1 }
    return (s0 + s1) + (s2 + s3)
}

/// ggml_vec_mad_f16: acc[i] = f16(acc[i] + v[i]·s), rounded four lanes at a time. ggml fuses the
/// multiply-add; a separate f32 multiply and add would move q4_0's PPL by 0.15%.
@inline(__always)
func madF16(_ acc: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, _ s: Float, _ n: Int) {
    var i = 0
    let ra = UnsafeMutableRawPointer(acc)
    while i + 4 <= n {
        // The product and sum in double (exact product, one rounding) stand in for the FMA.
        let ds = Double(s)
        let x = SIMD4<Float>(Float(Double(acc[i]) + Double(v[i]) * ds), Float(Double(acc[i + 1]) + Double(v[i + 1]) * ds),
                             Float(Double(acc[i + 2]) + Double(v[i + 2]) * ds), Float(Double(acc[i + 3]) + Double(v[i + 3]) * ds))
        ra.storeBytes(of: roundF16(x), toByteOffset: i * 4, as: SIMD4<Float>.self)
        i += 4
    }
    while i < n { acc[i] = f16(Float(Double(acc[i]) + Double(v[i]) * Double(s))); i += 1 }
}

/// `f16` on four lanes: mantissa rounded to 10 bits (nearest even) on the bits, and below f16's
/// normal range rounded to a multiple of 2^-24 by adding and removing 0.75 (whose ulp is 2^-24).
@inline(__always)
func roundF16(_ x: SIMD4<Float>) -> SIMD4<Float> {
    let u = unsafeBitCast(x, to: SIMD4<UInt32>.self)
    let normal = unsafeBitCast((u &+ 0x0FFF &+ ((u &>> 13) & 1)) & ~0x1FFF, to: SIMD4<Float>.self)
    let sub = (x + 0.75) - 0.75
    let tiny = (u & 0x7FFF_FFFF) .< 0x3880_0000 // |x| < 2^-14
    return normal.replacing(with: sub, where: tiny)
}

/// Rounds to the nearest f16 value (as storing into ggml's f16 KV cache does). In f16's normal
/// range this is rounding the mantissa to 10 bits (nearest even) on the bits themselves; the
/// library conversion, a function call without F16C, is kept for subnormals and overflow.
@inline(__always)
func f16(_ x: Float) -> Float {
    let u = x.bitPattern
    let e = (u >> 23) & 0xFF
    guard e >= 113, e <= 141 else { return Float(Float16(x)) }
    let r = (u &+ 0x0FFF &+ ((u >> 13) & 1)) & ~0x1FFF
    return Float(bitPattern: r)
}

/// ggml's rope (modes NORM and NEOX; ggml_rope_ext without YaRN), with theta advanced by repeated
/// multiplication as ggml does: the first `dims` elements of each head rotate (partial rotary).
public struct RoPE: Sendable {
    /// What a layer's rope depends on.
    public struct Key: Hashable, Sendable {
        public var dims: Int
        public var neox: Bool
        public var base: Float
        /// 1/factor of linear rope scaling (ggml's freq_scale).
        public var freqScale: Float
        /// Per-frequency divisors (`rope_freqs.weight`, llama3 and LongRoPE factors).
        public var factors: [Float]?
        /// ggml's mscale: cos and sin multiplied by it (LongRoPE's `rope.scaling.attn_factor`).
        public var attnFactor: Float
        public init(dims: Int, neox: Bool, base: Float, freqScale: Float = 1, factors: [Float]? = nil, attnFactor: Float = 1) {
            self.dims = dims
            self.neox = neox
            self.base = base
            self.freqScale = freqScale
            self.factors = factors
            self.attnFactor = attnFactor
        }
    }

    let dims: Int
    let neox: Bool
    let cosTable: [Float]
    let sinTable: [Float]

    init(_ k: Key, positions: Int) {
        dims = k.dims
        neox = k.neox
        let half = dims / 2
        var c = [Float](repeating: 0, count: positions * half)
        var s = [Float](repeating: 0, count: positions * half)
        let thetaScale = powf(k.base, -2 / Float(dims))
        for p in 0..<positions {
            var theta = Float(p)
            for i in 0..<half {
                let ff = k.factors?[i] ?? 1
                let t = k.freqScale * (theta / ff)
                c[p * half + i] = cosf(t) * k.attnFactor
                s[p * half + i] = sinf(t) * k.attnFactor
                theta *= thetaScale
            }
        }
        cosTable = c
        sinTable = s
    }

    func apply(_ m: Matrix, heads: Int, offset: Int) {
        let d = m.cols / heads
        let half = dims / 2
        for t in 0..<m.rows {
            let pos = offset + t
            for hd in 0..<heads {
                let x = m.row(t) + hd * d
                for i in 0..<half {
                    let c = cosTable[pos * half + i], s = sinTable[pos * half + i]
                    let (a, b) = neox ? (i, i + half) : (2 * i, 2 * i + 1)
                    let x0 = x[a], x1 = x[b]
                    x[a] = x0 * c - x1 * s
                    x[b] = x0 * s + x1 * c
                }
            }
        }
    }
}

/// Weights dequantized to f32 row by row and multiplied in f32: measures the weights' error alone
/// (`--f32-activations`), and serves any type without a dedicated kernel.
public struct F32Engine: MatMulEngine {
    public let threads: Int
    public init(threads: Int) { self.threads = max(1, threads) }

    public func multiply(_ w: Weight, _ x: Matrix, into out: Matrix) {
        let rowsPerChunk = 16
        let chunks = (w.rows + rowsPerChunk - 1) / rowsPerChunk
        let counter = ChunkCounter(chunks)
        DispatchQueue.concurrentPerform(iterations: min(threads, chunks)) { _ in
            let buf = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerChunk * w.cols)
            defer { buf.deallocate() }
            while let c = counter.next() {
                let r0 = c * rowsPerChunk, r1 = min(w.rows, r0 + rowsPerChunk)
                for r in r0..<r1 {
                    w.row(r, into: UnsafeMutableBufferPointer(start: buf + (r - r0) * w.cols, count: w.cols))
                }
                for t in 0..<x.rows {
                    let xr = x.row(t)
                    let o = out.row(t)
                    for r in r0..<r1 { o[r] = dot(buf + (r - r0) * w.cols, xr, w.cols) }
                }
            }
        }
    }
}

@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var s0 = SIMD4<Float>(), s1 = SIMD4<Float>(), s2 = SIMD4<Float>(), s3 = SIMD4<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 16 <= n {
        s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
        s1 += ra.loadUnaligned(fromByteOffset: i * 4 + 16, as: SIMD4<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 16, as: SIMD4<Float>.self)
        s2 += ra.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD4<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD4<Float>.self)
        s3 += ra.loadUnaligned(fromByteOffset: i * 4 + 48, as: SIMD4<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 48, as: SIMD4<Float>.self)
        i += 16
    }
    var s = ((s0 + s1) + (s2 + s3)).sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// Keys and values of the positions evaluated so far, per layer (for generation).
public final class KVCache: @unchecked Sendable {
    public internal(set) var count = 0
    public let capacity: Int
    let cols: Int
    var k: [UnsafeMutablePointer<Float>]
    var v: [UnsafeMutablePointer<Float>]

    public init(model: Model, capacity: Int) {
        let h = model.hparams
        self.capacity = capacity
        cols = h.nHeadKV * h.headDim
        k = (0..<h.nLayer).map { _ in .allocate(capacity: capacity * h.nHeadKV * h.headDim) }
        v = (0..<h.nLayer).map { _ in .allocate(capacity: capacity * h.nHeadKV * h.headDim) }
    }

    deinit { for p in k + v { p.deallocate() } }

    func append(layer: Int, k nk: Matrix, v nv: Matrix) {
        precondition(count + nk.rows <= capacity, "KV cache full")
        (k[layer] + count * cols).update(from: nk.data, count: nk.rows * cols)
        (v[layer] + count * cols).update(from: nv.data, count: nv.rows * cols)
    }

    func keys(_ l: Int) -> UnsafeMutablePointer<Float> { k[l] }
    func values(_ l: Int) -> UnsafeMutablePointer<Float> { v[l] }
}



/// Products computed as ggml-cpu computes them by default: each activation row quantized to the
/// weight type's vec_dot type (Q8_0, Q8_1, Q8_K, F16, BF16) and integer dot products per block —
/// the numbers an edge engine running this file delivers.
public struct GGMLEngine: MatMulEngine {
    public let threads: Int
    public init(threads: Int) { self.threads = max(1, threads) }

    public func multiply(_ w: Weight, _ x: Matrix, into out: Matrix) {
        guard Kernels.vecDotType(for: w.type) != nil else {
            F32Engine(threads: threads).multiply(w, x, into: out)
            return
        }
        Kernels.matmul(type: w.type, weights: w.data, rowBytes: w.rowBytes, nRows: w.rows, nCols: w.cols,
                       activations: x.data, nTokens: x.rows, out: out.data, threads: threads)
    }
}
