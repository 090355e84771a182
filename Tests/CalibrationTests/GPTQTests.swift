@testable import Calibration
import CKernels
import Foundation
import GGMLCore
import GGUFWriter
import Families
import Inference
import Quantizers
import Testing
import Tokenizer

/// Seeded generator for reproducible test data.
struct GPTQRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func normal() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self), u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}

/// A layer-like test case: weights with heavy-ish tails and per-row scales, and activations
/// with a low-rank shared part, per-column scales and a few outlier columns (as in LLM inputs),
/// so that H has strong off-diagonal structure.
struct GPTQCase {
    let rows: Int
    let cols: Int
    let weights: [Float]
    let hessian: Hessian

    init(rows: Int, cols: Int, tokens: Int, seed: UInt64) {
        var rng = GPTQRandom(state: seed)
        self.rows = rows
        self.cols = cols
        var w = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            let s = 0.02 * Float(exp(Double(rng.normal()) * 0.3))
            for c in 0..<cols {
                let z = rng.normal()
                // a mixture: mostly Gaussian, some wider entries
                w[r * cols + c] = s * z * (Float.random(in: 0..<1, using: &rng) < 0.05 ? 4 : 1)
            }
        }
        weights = w
        let rank = 12
        var basis = [Float](repeating: 0, count: rank * cols)
        for i in basis.indices { basis[i] = rng.normal() }
        var colScale = [Float](repeating: 0, count: cols)
        for c in 0..<cols { colScale[c] = Float(exp(Double(rng.normal()) * 0.5)) * (c % 97 == 5 ? 8 : 1) }
        var x = [Float](repeating: 0, count: tokens * cols)
        for t in 0..<tokens {
            var f = [Float](repeating: 0, count: rank)
            for k in 0..<rank { f[k] = rng.normal() }
            for c in 0..<cols {
                var v = 2 * rng.normal()
                for k in 0..<rank { v += f[k] * basis[k * cols + c] }
                x[t * cols + c] = v * colScale[c]
            }
        }
        hessian = Hessian(cols: cols)
        x.withUnsafeBufferPointer { hessian.add($0.baseAddress!, rows: tokens) }
    }
}

/// GPTQ into a new byte array.
func gptqQuantize(_ w: [Float], cols: Int, type: GGMLType, factor: GPTQ.Factor, importance: [Float],
                  options: GPTQ.Options) throws -> ([UInt8], GPTQ.Report) {
    var bytes = [UInt8](repeating: 0, count: w.count / cols * type.rowSize(cols)!)
    let report = try w.withUnsafeBufferPointer { src in
        try importance.withUnsafeBufferPointer { imp in
            try bytes.withUnsafeMutableBytes {
                try GPTQ.quantize(src, cols: cols, type: type, factor: factor, importance: imp, options: options, into: $0)
            }
        }
    }
    return (bytes, report)
}

/// Rows quantized with llama-quantize's importance-weighted rounding, dequantized.
func gptqRTN(_ w: [Float], cols: Int, type: GGMLType, importance: [Float]) -> [Float] {
    let q = Quantizers.quantizer(for: type)!
    let rows = w.count / cols
    var bytes = [UInt8](repeating: 0, count: rows * type.rowSize(cols)!)
    w.withUnsafeBufferPointer { src in
        importance.withUnsafeBufferPointer { imp in
            bytes.withUnsafeMutableBytes { q.quantizeRows(src, rowLength: cols, importance: imp, into: $0) }
        }
    }
    return gptqDequantize(bytes, rows: rows, cols: cols, type: type)
}

func gptqDequantize(_ bytes: [UInt8], rows: Int, cols: Int, type: GGMLType) -> [Float] {
    let q = Quantizers.quantizer(for: type)!
    let rb = type.rowSize(cols)!
    var out = [Float](repeating: 0, count: rows * cols)
    bytes.withUnsafeBytes { b in
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<rows {
                q.dequantizeRow(UnsafeRawBufferPointer(rebasing: b[(r * rb)..<((r + 1) * rb)]),
                                into: UnsafeMutableBufferPointer(rebasing: o[(r * cols)..<((r + 1) * cols)]))
            }
        }
    }
    return out
}

/// tr(ΔW H ΔWᵀ) per token.
func gptqError(_ w: [Float], _ q: [Float], cols: Int, hessian: Hessian) -> Double {
    let delta = zip(w, q).map { $0 - $1 }
    return delta.withUnsafeBufferPointer { GPTQ.outputError($0, cols: cols, hessian: hessian) }
}

let gptqTypes: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

@Suite struct GPTQTests {
    static let shared = GPTQCase(rows: 48, cols: 512, tokens: 2048, seed: 7)

    /// The second moments' memory is known before the first chunk runs: 8·cols² per distinct input.
    @Test func hessianMemoryIsComputedUpFront() throws {
        let (model, _) = try tinyModel()
        // 2 layers × (q/k/v input 32² + output input 32² + gate/up input 32² + down input 64²) × 4 bytes
        #expect(HessianCollector.bytesNeeded(model.hparams) == 2 * (32 * 32 * 3 + 64 * 64) * 4)
        try HessianCollector.checkMemory(model)
        let smol = try Llama(TensorSet.shapes(path: "smollm2", metadata: [
            "general.architecture": .string("llama"), "llama.embedding_length": .uint32(576), "llama.block_count": .uint32(30),
            "llama.attention.head_count": .uint32(9), "llama.attention.head_count_kv": .uint32(3), "llama.feed_forward_length": .uint32(1536),
        ], shapes: Dictionary(uniqueKeysWithValues: [("token_embd.weight", [576, 49152]), ("output_norm.weight", [576])]
            + (0..<30).flatMap { i in
                [("attn_norm.weight", [576]), ("ffn_norm.weight", [576]), ("attn_q.weight", [576, 576]), ("attn_k.weight", [576, 192]),
                 ("attn_v.weight", [576, 192]), ("attn_output.weight", [576, 576]), ("ffn_gate.weight", [576, 1536]),
                 ("ffn_up.weight", [576, 1536]), ("ffn_down.weight", [1536, 576])].map { ("blk.\(i).\($0.0)", $0.1) }
            }))).dims
        // the figure HessianCollector's documentation gives for SmolLM2: 402 MB
        #expect(HessianCollector.bytesNeeded(smol) == 30 * (3 * 576 * 576 + 1536 * 1536) * 4)
    }

    /// The factorisation as it was written first, in Swift (one dot at a time), which every GPTQ
    /// file so far was made with: the C kernels must give the same bits on every level.
    static func referenceInverseCholeskyUpper(_ h: [Double], n: Int, dampening: Double) -> [Double]? {
        func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
            var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
            var i = 0
            while i + 4 <= n {
                s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]
                i += 4
            }
            while i < n { s0 += a[i] * b[i]; i += 1 }
            return (s0 + s1) + (s2 + s3)
        }
        var meanDiag = 0.0
        for i in 0..<n { meanDiag += h[i * n + i] }
        meanDiag /= Double(n)
        if !(meanDiag > 0) { meanDiag = 1 }
        let damp = dampening * meanDiag
        let a = UnsafeMutablePointer<Double>.allocate(capacity: n * n)
        defer { a.deallocate() }
        a.initialize(repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var v = h[(n - 1 - i) * n + (n - 1 - j)]
                if i == j { if v == 0 { v = 1 }; v += damp }
                a[i * n + j] = v
            }
        }
        for i in 0..<n {
            let ri = a + i * n
            for j in 0...i {
                let rj = a + j * n
                let s = ri[j] - dot(ri, rj, j)
                if i == j {
                    guard s > 0, s.isFinite else { return nil }
                    ri[i] = s.squareRoot()
                } else {
                    ri[j] = s / rj[j]
                }
            }
        }
        var u = [Double](repeating: 0, count: n * n)
        var m = [Double](repeating: 0, count: n)
        m.withUnsafeMutableBufferPointer { mp in
            let m = mp.baseAddress!
            for c in 0..<n {
                m[c] = 1 / a[c * n + c]
                for i in (c + 1)..<max(c + 1, n) {
                    let row = a + i * n
                    m[i] = -dot(row + c, m + c, i - c) / row[i]
                }
                for i in c..<n { u[(n - 1 - i) * n + (n - 1 - c)] = m[i] }
            }
        }
        return u
    }

    @Test(arguments: [1, 2, 3, 5, 8, 9, 13, 64, 130])
    func factorIsTheFirstAlgorithmBitForBitOnEveryLevel(_ n: Int) throws {
        var rng = GPTQRandom(state: UInt64(n))
        let k = max(1, n / 2)  // fewer samples than columns: near-singular, as a short calibration gives
        var x = [Double](repeating: 0, count: k * n)
        for i in x.indices { x[i] = Double(rng.normal()) * (i % 7 == 3 ? 40 : 1) }
        var h = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for t in 0..<k { h[i * n + j] += x[t * n + i] * x[t * n + j] } } }
        if n > 4 { for j in 0..<n { h[2 * n + j] = 0; h[j * n + 2] = 0 } }  // a column never seen
        let want = try #require(Self.referenceInverseCholeskyUpper(h, n: n, dampening: 0.01))
        let top = ek_detected_level()
        for level in [EK_LEVEL_GENERIC, EK_LEVEL_AVX2, EK_LEVEL_AVX512] where level.rawValue <= top.rawValue {
            // the level is this thread's: the inverse's columns stay on it
            ek_force_level(level)
            defer { ek_unforce_level() }
            let u = try #require(h.withUnsafeBufferPointer { GPTQ.inverseCholeskyUpper($0.baseAddress!, n: n, dampening: 0.01, threads: 1) })
            defer { u.deallocate() }
            let got = (0..<(n * n)).map { u[$0].bitPattern }
            #expect(got == want.map(\.bitPattern), "n \(n), level \(level.rawValue)")
        }
        // not positive definite: refused by both
        var bad = h
        bad[0] = -1e9
        if n > 1 {
            #expect(Self.referenceInverseCholeskyUpper(bad, n: n, dampening: 0) == nil)
            #expect(bad.withUnsafeBufferPointer { GPTQ.inverseCholeskyUpper($0.baseAddress!, n: n, dampening: 0) } == nil)
        }
    }

    @Test func factorInvertsTheDampedHessian() throws {
        let n = 40
        var rng = GPTQRandom(state: 3)
        var a = [Double](repeating: 0, count: n * n)
        for i in a.indices { a[i] = Double(rng.normal()) }
        var h = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { h[i * n + j] += a[k * n + i] * a[k * n + j] } } }
        h[5 * n + 5] = 0  // a column never seen: diag 0, row and column 0
        for j in 0..<n { h[5 * n + j] = 0; h[j * n + 5] = 0 }
        let lambda = 0.01
        let u = try #require(h.withUnsafeBufferPointer { GPTQ.inverseCholeskyUpper($0.baseAddress!, n: n, dampening: lambda) })
        defer { u.deallocate() }
        var mean = 0.0
        for i in 0..<n { mean += h[i * n + i] }
        mean /= Double(n)
        var damped = h
        for i in 0..<n { damped[i * n + i] = (damped[i * n + i] == 0 ? 1 : damped[i * n + i]) + lambda * mean }
        // Uᵀ U · H' = I, U upper with a positive diagonal
        var worst = 0.0
        for i in 0..<n {
            #expect(u[i * n + i] > 0)
            for j in 0..<i { #expect(u[i * n + j] == 0) }
            for j in 0..<n {
                var s = 0.0
                for k in 0..<n {
                    var uu = 0.0
                    for m in 0...min(i, k) { uu += u[m * n + i] * u[m * n + k] }
                    s += uu * damped[k * n + j]
                }
                worst = max(worst, abs(s - (i == j ? 1 : 0)))
            }
        }
        #expect(worst < 1e-9)
    }

    /// The point of it all: on inputs with correlated columns, GPTQ's output error is below
    /// importance-weighted round-to-nearest's for every type, by a clear margin on average.
    @Test func beatsImportanceWeightedRounding() throws {
        let c = Self.shared
        let imp = c.hessian.importance
        let tokens = Double(c.hessian.tokens)
        let factor = try GPTQ.Factor(c.hessian)
        var ratios: [Double] = []
        var report: [String] = []
        for type in gptqTypes {
            let rtn = gptqRTN(c.weights, cols: c.cols, type: type, importance: imp)
            // pure GPTQ, then with the per-row fallback to rounding
            let (bytes, r) = try gptqQuantize(c.weights, cols: c.cols, type: type, factor: factor, importance: imp,
                                             options: GPTQ.Options(fallbackToRounding: false))
            let (_, rf) = try gptqQuantize(c.weights, cols: c.cols, type: type, factor: factor, importance: imp,
                                          options: GPTQ.Options(fallbackToRounding: true))
            let gptq = gptqDequantize(bytes, rows: c.rows, cols: c.cols, type: type)
            let eR = gptqError(c.weights, rtn, cols: c.cols, hessian: c.hessian)
            let eG = gptqError(c.weights, gptq, cols: c.cols, hessian: c.hessian)
            let ratio = eG / eR
            ratios.append(ratio)
            report.append(String(format: "%@ %.3f", type.name, ratio))
            #expect(ratio < 0.9, "\(type.name): GPTQ \(eG) vs RTN \(eR)")
            // the report's errors (f32 products) are the double-precision ones
            #expect(r.rows == c.rows && r.roundingError == nil && r.roundedRows == 0)
            #expect(abs(r.error / tokens / eG - 1) < 1e-3, "\(type.name): report \(r.error / tokens) vs \(eG)")
            let rounding = try #require(rf.roundingError)
            #expect(abs(rounding / tokens / eR - 1) < 1e-3, "\(type.name): report \(rounding / tokens) vs \(eR)")
            #expect(rf.error <= r.error * (1 + 1e-6) && rf.error <= rounding * (1 + 1e-6))
        }
        let mean = ratios.reduce(0, +) / Double(ratios.count)
        print("GPTQ / importance-weighted RTN output error: " + report.joined(separator: ", ") + String(format: "; mean %.3f", mean))
        #expect(mean < 0.6)
    }

    /// The lazy batches only reorder the same updates: batches of 32, 128 or the whole row give
    /// the same rounding but for float summation order. (A wrong batched update would not.)
    @Test(arguments: [GGMLType.q4_0, .q4_K])
    func batchSizeDoesNotMatter(_ type: GGMLType) throws {
        let c = Self.shared
        let factor = try GPTQ.Factor(c.hessian)
        let imp = c.hessian.importance
        func run(_ bs: Int) throws -> [Float] {
            let (bytes, _) = try gptqQuantize(c.weights, cols: c.cols, type: type, factor: factor, importance: imp,
                                              options: GPTQ.Options(blockSize: bs, fallbackToRounding: false))
            return gptqDequantize(bytes, rows: c.rows, cols: c.cols, type: type)
        }
        let ref = try run(128)
        for bs in [32, 512] {
            let other = try run(bs)
            let differing = zip(ref, other).filter { $0 != $1 }.count
            // A float-order difference that flips one group's scale changes all its values (and
            // what is carried on from them), so some whole groups may differ.
            #expect(Double(differing) < 0.05 * Double(ref.count), "block size \(bs): \(differing) of \(ref.count) values differ")
            let e0 = gptqError(c.weights, ref, cols: c.cols, hessian: c.hessian)
            let e1 = gptqError(c.weights, other, cols: c.cols, hessian: c.hessian)
            #expect(abs(e1 / e0 - 1) < 0.02, "block size \(bs): \(e1) vs \(e0)")
        }
    }

    /// Every block GPTQ writes is an ordinary block: each element dequantizes to a value of the
    /// grid its block's stored scales imply.
    @Test(arguments: gptqTypes)
    func blocksLieOnTheirGrid(_ type: GGMLType) throws {
        let c = Self.shared
        let q = try #require(Quantizers.gridQuantizer(for: type))
        let bytes = try c.weights.withUnsafeBufferPointer { try GPTQ.quantize($0, cols: c.cols, type: type, hessian: c.hessian).bytes }
        let deq = gptqDequantize(bytes, rows: c.rows, cols: c.cols, type: type)
        let values = q.levelValues
        let g = q.groupSize, gb = q.groupBytes
        var scale = [Float](repeating: 0, count: g), offset = [Float](repeating: 0, count: g)
        var offGrid = 0
        bytes.withUnsafeBytes { b in
            for gi in 0..<(c.rows * c.cols / g) {
                q.grid(of: b.baseAddress! + gi * gb, scale: &scale, offset: &offset)
                for e in 0..<g {
                    let v = deq[gi * g + e]
                    if !values.contains(where: { scale[e] * $0 + offset[e] == v }) { offGrid += 1 }
                }
            }
        }
        #expect(offGrid == 0)
    }

    /// storeLevels writes exactly the levels it is given: any levels under a block's scales
    /// dequantize to scale·levelValues[L] + offset.
    @Test(arguments: gptqTypes)
    func storedLevelsDequantize(_ type: GGMLType) throws {
        let q = try #require(Quantizers.gridQuantizer(for: type))
        var rng = GPTQRandom(state: 19 &+ UInt64(type.rawValue))
        let g = q.groupSize, values = q.levelValues
        let x = (0..<g).map { _ in rng.normal() * 0.1 }
        let imp = (0..<g).map { _ in Float.random(in: 0.1..<2, using: &rng) }
        var block = [UInt8](repeating: 0, count: q.groupBytes)
        let levels = (0..<g).map { _ in UInt8.random(in: 0...UInt8(values.count - 1), using: &rng) }
        var scale = [Float](repeating: 0, count: g), offset = [Float](repeating: 0, count: g)
        var deq = [Float](repeating: 0, count: g)
        block.withUnsafeMutableBytes { b in
            q.quantizeGroup(x, importance: imp, rowMeanSquare: 0.01, into: b.baseAddress!)
            q.grid(of: b.baseAddress!, scale: &scale, offset: &offset)
            q.storeLevels(levels, into: b.baseAddress!)
            deq.withUnsafeMutableBufferPointer { q.dequantizeRow(UnsafeRawBufferPointer(b), into: $0) }
        }
        #expect(scale.contains { $0 != 0 })
        for e in 0..<g { #expect(deq[e] == scale[e] * values[Int(levels[e])] + offset[e], "element \(e)") }
    }

    /// With H = I and no dampening nothing is carried between columns: GPTQ is rounding to the
    /// nearest value under ggml's scales. For the k-quants that is ggml's own requantization, so
    /// the bytes are llama-quantize's; the legacy types and iq4_nl take their levels from the
    /// search's unrounded scale, so a few elements on a rounding edge may differ.
    @Test(arguments: gptqTypes)
    func identityReducesToRounding(_ type: GGMLType) throws {
        let c = Self.shared
        let n = c.cols
        let h = Hessian(cols: n)
        var eye = [Float](repeating: 0, count: n * n)
        for i in 0..<n { eye[i * n + i] = 1 }
        eye.withUnsafeBufferPointer { h.add($0.baseAddress!, rows: n) }
        let imp = h.importance
        let factor = try GPTQ.Factor(h, dampening: 0)
        #expect(factor.dampening == 0)
        let rb = type.rowSize(n)!
        let (bytes, _) = try gptqQuantize(c.weights, cols: n, type: type, factor: factor, importance: imp,
                                          options: GPTQ.Options(dampening: 0, fallbackToRounding: false))
        var ref = [UInt8](repeating: 0, count: c.rows * rb)
        let q = Quantizers.quantizer(for: type)!
        c.weights.withUnsafeBufferPointer { w in
            imp.withUnsafeBufferPointer { i in ref.withUnsafeMutableBytes { q.quantizeRows(w, rowLength: n, importance: i, into: $0) } }
        }
        let a = gptqDequantize(bytes, rows: c.rows, cols: n, type: type)
        let b = gptqDequantize(ref, rows: c.rows, cols: n, type: type)
        let differing = zip(a, b).filter { $0 != $1 }.count
        let eA = gptqError(c.weights, a, cols: n, hessian: h), eB = gptqError(c.weights, b, cols: n, hessian: h)
        if [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K].contains(type) {
            #expect(differing == 0, "\(type.name): \(differing) values differ")
        } else {
            #expect(Double(differing) < 0.01 * Double(a.count), "\(type.name): \(differing) of \(a.count) values differ")
            #expect(abs(eA / eB - 1) < 0.01, "\(type.name): \(eA) vs \(eB)")
        }
    }

    /// The stream's one-layer-at-a-time Hessians are the all-layers collector's, value for value:
    /// the writer's GPTQ bytes do not depend on which collected them. Going back a layer starts over.
    @Test func streamMatchesCollector() throws {
        let model = try gptqTinyModel()
        var rng = GPTQRandom(state: 9)
        let nCtx = 40
        let chunks = (0..<3).map { _ in (0..<nCtx).map { _ in Int32.random(in: 0..<Int32(model.hparams.nVocab), using: &rng) } }
        let all = HessianCollector.collect(model: model, chunks: chunks, threads: 2)
        let stream = HessianStream(model: model, chunks: chunks, threads: 2)
        func same(_ name: String) throws {
            let a = try #require(all.hessians[name]), b = try #require(stream.hessian(for: name))
            #expect(a.tokens == b.tokens && a.values == b.values && a.importance == b.importance, "\(name)")
        }
        for l in 0..<model.hparams.nLayer {
            for k in ["attn_k", "attn_output", "attn_q", "attn_v", "ffn_down", "ffn_gate", "ffn_up"] { try same("blk.\(l).\(k).weight") }
        }
        try same("blk.0.ffn_down.weight")
        #expect(stream.hessian(for: "token_embd.weight") == nil && stream.hessian(for: "blk.99.attn_q.weight") == nil)
    }

    /// A spilling stream walked again reads each layer back from its file: the same values, counts
    /// and importance as collecting, one object per shared input; its file is never in the
    /// temporary directory.
    @Test func spillingStreamReadsLayersBack() throws {
        let model = try gptqTinyModel()
        var rng = GPTQRandom(state: 11)
        let chunks = (0..<2).map { _ in (0..<33).map { _ in Int32.random(in: 0..<Int32(model.hparams.nVocab), using: &rng) } }
        let all = HessianCollector.collect(model: model, chunks: chunks, threads: 2)
        let tmp = HessianSpill.directory
        func spills() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).filter { $0.hasPrefix("edgequant-hessians-") }.count }
        let stream = HessianStream(model: model, chunks: chunks, threads: 2, spilling: true)
        let kinds = ["attn_k", "attn_output", "attn_q", "attn_v", "ffn_down", "ffn_gate", "ffn_up"]
        for walk in 0..<2 {
            for l in 0..<model.hparams.nLayer {
                for k in kinds {
                    let name = "blk.\(l).\(k).weight"
                    let a = try #require(all.hessians[name]), b = try #require(stream.hessian(for: name))
                    #expect(a.tokens == b.tokens && a.values == b.values && a.importance == b.importance, "walk \(walk) \(name)")
                }
                let q = stream.hessian(for: "blk.\(l).attn_q.weight"), k = stream.hessian(for: "blk.\(l).attn_k.weight")
                #expect(q != nil && q === k, "walk \(walk) layer \(l): q and k share one input")
            }
            #expect(spills() == 0)
            #expect(stream.layersRun == model.hparams.nLayer, "walk \(walk): the second reads back, runs nothing")
        }
    }

    /// A factor read back from the store is the one made: the same Ũ, transpose and H, bit for
    /// bit, and the dampening; an input of the same width is not taken for another.
    @Test func factorStoreGivesBackTheFactorMade() throws {
        let model = try gptqTinyModel()
        var rng = GPTQRandom(state: 12)
        let chunks = (0..<2).map { _ in (0..<33).map { _ in Int32.random(in: 0..<Int32(model.hparams.nVocab), using: &rng) } }
        let all = HessianCollector.collect(model: model, chunks: chunks, threads: 2)
        let q = try #require(all.hessians["blk.0.attn_q.weight"]), gate = try #require(all.hessians["blk.0.ffn_gate.weight"])
        #expect(q.cols == gate.cols && q.fingerprint != gate.fingerprint)
        let store = FactorStore(bytes: 1 << 20)
        func bits(_ f: GPTQ.Factor) -> [[UInt32]] {
            let n = f.cols * f.cols
            return [f.rows, f.columns, f.hessian].map { p in (0..<n).map { p[$0].bitPattern } }
        }
        for h in [q, gate, q, gate] {
            let made = try GPTQ.Factor(h)
            let stored = try #require(store.factor(h))
            #expect(bits(stored) == bits(made) && stored.dampening == made.dampening)
        }
    }

    /// The collector's H is Σ x xᵀ of every product input, once per distinct input.
    @Test func collectorMatchesDirectSums() throws {
        let model = try gptqTinyModel()
        let capture = GPTQCapture()
        let collector = HessianCollector(inner: capture, threads: 2, sinkWeight: 1)
        // the same products with each chunk's first position weighted 5
        let weighted = HessianCollector(inner: collector, threads: 2, sinkWeight: 5)
        let forward = Forward(model: model, engine: weighted, threads: 2)
        var rng = GPTQRandom(state: 5)
        let nCtx = 70, chunks = 3
        for _ in 0..<chunks {
            let tokens = (0..<nCtx).map { _ in Int32.random(in: 0..<Int32(model.hparams.nVocab), using: &rng) }
            forward.logits(tokens, outputsFrom: nCtx - 1).free()
        }
        let hs = collector.hessians
        #expect(Set(hs.keys) == Set(capture.inputs.keys.filter { $0.hasPrefix("blk.") }))
        for l in 0..<model.hparams.nLayer {
            let p = "blk.\(l)."
            let q = try #require(hs[p + "attn_q.weight"]), gate = try #require(hs[p + "ffn_gate.weight"])
            #expect(hs[p + "attn_k.weight"] === q && hs[p + "attn_v.weight"] === q)
            #expect(hs[p + "ffn_up.weight"] === gate)
            #expect(Set([q, gate, hs[p + "attn_output.weight"]!, hs[p + "ffn_down.weight"]!].map(ObjectIdentifier.init)).count == 4)
        }
        #expect(collector.sharedInputs.contains(["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"]))
        #expect(collector.sharedInputs.contains(["blk.1.ffn_gate.weight", "blk.1.ffn_up.weight"]))
        #expect(collector.sharedInputs.count == 4 * model.hparams.nLayer)
        #expect(Set(weighted.hessians.keys) == Set(hs.keys))
        for (name, h) in hs {
            let rows = try #require(capture.inputs[name])
            #expect(h.tokens == rows.count && h.tokens == chunks * nCtx)
            let hw = try #require(weighted.hessians[name])
            #expect(hw.tokens == h.tokens)
            let n = h.cols
            for (collected, sink) in [(h, 1.0), (hw, 5.0)] {
                // Σ over tokens of x xᵀ, x (the first position's scaled by √sink) rounded to bf16
                var direct = [Double](repeating: 0, count: n * n)
                for (t, x) in rows.enumerated() {
                    let s = Float(t % nCtx == 0 ? sink.squareRoot() : 1)
                    let xr = x.map { v -> Double in
                        var b = [UInt16](repeating: 0, count: 1)
                        [v * s].withUnsafeBufferPointer { ek_f32_to_bf16($0.baseAddress!, 1, &b) }
                        return Double(Float(bitPattern: UInt32(b[0]) << 16))
                    }
                    for i in 0..<n { for j in 0..<n { direct[i * n + j] += xr[i] * xr[j] } }
                }
                let scale = direct.map(abs).max()!
                let v = collected.values
                var worst = 0.0
                for k in 0..<(n * n) { worst = max(worst, abs(v[k] - direct[k])) }
                #expect(worst <= 1e-5 * scale, "\(name), sink weight \(sink): off by \(worst) of \(scale)")
                for i in 0..<n { for j in 0..<n { #expect(v[i * n + j] == v[j * n + i]) } }
                // the importance is llama-imatrix's whatever the weighting
                for i in 0..<n {
                    var sq = 0.0
                    for x in rows { sq += Double(x[i] * x[i]) }
                    #expect(abs(Double(collected.importance[i]) - sq / Double(rows.count)) <= 1e-5 * sq / Double(rows.count))
                }
            }
        }
    }
}

/// Keeps a copy of every product's input rows, per weight name.
final class GPTQCapture: MatMulEngine, @unchecked Sendable {
    let inner = GGMLEngine(threads: 2)
    var inputs: [String: [[Float]]] = [:]
    func multiply(_ w: Weight, _ x: Matrix, into out: Matrix) {
        for r in 0..<x.rows { inputs[w.name, default: []].append(Array(UnsafeBufferPointer(start: x.row(r), count: x.cols))) }
        inner.multiply(w, x, into: out)
    }
}

/// Keeps the f32 tensors of an in-memory model alive.
final class GPTQTensorStorage {
    var buffers: [UnsafeMutablePointer<Float>] = []
    deinit { for b in buffers { b.deallocate() } }
}

/// A two-layer llama with random f32 weights (64 wide, GQA 4/2 heads, FFN 96), built in memory.
func gptqTinyModel() throws -> Model {
    let nEmbd = 64, nFF = 96, nHead = 4, nHeadKV = 2, nLayer = 2, nVocab = 50
    let headDim = nEmbd / nHead
    var rng = GPTQRandom(state: 11)
    let storage = GPTQTensorStorage()
    var tensors: [String: Weight] = [:]
    func add(_ name: String, rows: Int, cols: Int, value: (() -> Float)? = nil) {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: rows * cols)
        for i in 0..<(rows * cols) { p[i] = value?() ?? rng.normal() * 0.3 }
        storage.buffers.append(p)
        tensors[name] = Weight(type: .f32, rows: rows, cols: cols, data: UnsafeRawPointer(p), name: name)
    }
    add("token_embd.weight", rows: nVocab, cols: nEmbd)
    add("output_norm.weight", rows: 1, cols: nEmbd) { 1 }
    for l in 0..<nLayer {
        let p = "blk.\(l)."
        add(p + "attn_norm.weight", rows: 1, cols: nEmbd) { 1 }
        add(p + "ffn_norm.weight", rows: 1, cols: nEmbd) { 1 }
        add(p + "attn_q.weight", rows: nHead * headDim, cols: nEmbd)
        add(p + "attn_k.weight", rows: nHeadKV * headDim, cols: nEmbd)
        add(p + "attn_v.weight", rows: nHeadKV * headDim, cols: nEmbd)
        add(p + "attn_output.weight", rows: nEmbd, cols: nHead * headDim)
        add(p + "ffn_gate.weight", rows: nFF, cols: nEmbd)
        add(p + "ffn_up.weight", rows: nFF, cols: nEmbd)
        add(p + "ffn_down.weight", rows: nEmbd, cols: nFF)
    }
    let meta: [String: GGUFValue] = [
        "general.architecture": .string("llama"),
        "llama.embedding_length": .uint32(UInt32(nEmbd)), "llama.block_count": .uint32(UInt32(nLayer)),
        "llama.attention.head_count": .uint32(UInt32(nHead)), "llama.attention.head_count_kv": .uint32(UInt32(nHeadKV)),
        "llama.feed_forward_length": .uint32(UInt32(nFF)), "llama.attention.layer_norm_rms_epsilon": .float32(1e-5),
    ]
    return try Model(path: "tiny", metadata: meta, tensors: tensors, storage: [storage])
}

/// The real model (opt-in; a release build, which needs testable imports for the other suites):
/// `swift build -c release -j 1 --scratch-path .build-gptq-rel --build-tests -Xswiftc -enable-testing`,
/// `GPTQ_SMOLLM2=1 swift test -c release -j 1 --scratch-path .build-gptq-rel --skip-build --filter GPTQSmolLM2`.
/// H from 32 chunks of 512 tokens of wiki-calib.txt; per layer and type the output error of GPTQ
/// against llama-quantize's importance-weighted rounding; the time for a whole model; the mean KL
/// divergence from the f32 model on 8 chunks of wiki-eval-100k with every blk.* matrix quantized
/// either way. Environment: GPTQ_MODEL, GPTQ_TEXT, GPTQ_EVAL, GPTQ_CHUNKS, GPTQ_EVAL_CHUNKS,
/// GPTQ_THREADS, GPTQ_LAYERS (0,10,20,29), GPTQ_TYPES, GPTQ_MODEL_TYPES, GPTQ_KLD_TYPES (q4_0; empty:
/// none), GPTQ_SINK_WEIGHT; GPTQ_GENERALIZE=1 adds errors under the evaluation text's H and each
/// tensor's KLD alone, GPTQ_SINK=1 the error at the chunks' first position against the others.
///
/// Caveat: this SmolLM2 was dequantized from a Q4_1 release (scripts/smollm2-checkpoint.py), so its
/// weights sit on a grid q4_1 and the k-quants nearly reproduce; rounding is unusually good there.
@Suite struct GPTQSmolLM2 {
    static let env = ProcessInfo.processInfo.environment

    @Test(.enabled(if: env["GPTQ_SMOLLM2"] == "1"))
    func measure() throws {
        let modelPath = Self.env["GPTQ_MODEL"] ?? "/work/ref/lq/smol-f32.gguf"
        let textPath = Self.env["GPTQ_TEXT"] ?? "/work/data/wiki/wiki-calib.txt"
        let nChunks = Int(Self.env["GPTQ_CHUNKS"] ?? "32") ?? 32
        let threads = Int(Self.env["GPTQ_THREADS"] ?? "2") ?? 2
        let model = try Model(gguf: GGUFFile(path: modelPath))
        let tokenizer = try Tokenizer(ggufPath: modelPath)
        // As `perplexity --text` reads a file: trailing newline dropped, escapes processed,
        // special tokens added but not parsed; BOS first in each chunk when the vocabulary adds it.
        let text = try #require(FileManager.default.contents(atPath: textPath))
        let prompt = Tokenizer.llamaCppFilePrompt(Array(text))
        let tokens = prompt.withUnsafeBytes { tokenizer.encode(utf8: $0, addSpecial: true, parseSpecial: false) }
        let nCtx = 512
        let addBOS = model.metadata["tokenizer.ggml.add_bos_token"].map { $0 == .bool(true) }
            ?? (model.metadata["tokenizer.ggml.model"]?.stringValue == "llama")
        let bos = addBOS ? Int32(model.metadata["tokenizer.ggml.bos_token_id"]?.intValue ?? 1) : nil
        let chunks: [[Int32]] = (0..<min(nChunks, tokens.count / nCtx)).map { c in
            var chunk = Array(tokens[(c * nCtx)..<((c + 1) * nCtx)])
            if let bos { chunk[0] = bos }
            return chunk
        }
        print("SmolLM2: \(tokens.count) tokens, \(chunks.count) chunks of \(nCtx), BOS \(bos.map(String.init) ?? "none")")

        var t0 = Date()
        let plain = Forward(model: model, engine: GGMLEngine(threads: threads), threads: threads)
        for chunk in chunks.prefix(4) { plain.logits(chunk, outputsFrom: nCtx - 1).free() }
        print(String(format: "forward alone: %.2f s per chunk", Date().timeIntervalSince(t0) / Double(min(4, chunks.count))))
        t0 = Date()
        let sinkWeight = Self.env["GPTQ_SINK_WEIGHT"].flatMap(Double.init) ?? HessianCollector.defaultSinkWeight
        let collector = HessianCollector.collect(model: model, chunks: chunks, threads: threads, sinkWeight: sinkWeight)
        let collectSeconds = Date().timeIntervalSince(t0)
        let distinct = Set(collector.hessians.values.map(ObjectIdentifier.init)).count
        let totalBytes = collector.sharedInputs.reduce(0) { $0 + collector.hessians[$1[0]]!.cols * collector.hessians[$1[0]]!.cols * 4 }
        print(String(format: "H collection: %.1f s for %d chunks (%d distinct inputs, %.0f MB)", collectSeconds, chunks.count,
                     distinct, Double(totalBytes) / 1e6))

        let options = GPTQ.Options(threads: threads)
        func f32(_ w: Weight) -> UnsafeBufferPointer<Float> {
            precondition(w.type == .f32)
            return UnsafeBufferPointer(start: w.data.assumingMemoryBound(to: Float.self), count: w.rows * w.cols)
        }
        /// Per-token output errors: rounding, pure GPTQ, GPTQ with the per-row fallback (and the
        /// rows that fell back), and the seconds the latter took.
        func errors(_ w: Weight, _ type: GGMLType, _ h: Hessian, _ factor: GPTQ.Factor) throws
            -> (rtn: Double, pure: Double, kept: Double, roundedRows: Int, seconds: Double) {
            let src = Array(f32(w)), imp = h.importance, tokens = Double(h.tokens)
            let (_, pure) = try gptqQuantize(src, cols: w.cols, type: type, factor: factor, importance: imp,
                                             options: GPTQ.Options(threads: threads, fallbackToRounding: false))
            let t = Date()
            let (_, kept) = try gptqQuantize(src, cols: w.cols, type: type, factor: factor, importance: imp, options: options)
            let s = Date().timeIntervalSince(t)
            return (kept.roundingError! / tokens, pure.error / tokens, kept.error / tokens, kept.roundedRows, s)
        }

        let layers = (Self.env["GPTQ_LAYERS"] ?? "0,10,20,29").split(separator: ",").compactMap { Int($0) }
        let types = (Self.env["GPTQ_TYPES"] ?? "q4_0,q5_0,q4_K,q6_K").split(separator: ",").compactMap { GGMLType(name: String($0)) }
        var sums: [GGMLType: (pure: Double, kept: Double, n: Int)] = [:]
        for l in layers where l < model.hparams.nLayer {
            let layer = model.layerMatrices(l)
            var factors: [ObjectIdentifier: GPTQ.Factor] = [:]
            for w in layer {
                let h = try #require(collector.hessians[w.name])
                let factor = try factors[ObjectIdentifier(h)] ?? GPTQ.Factor(h, dampening: options.dampening)
                factors[ObjectIdentifier(h)] = factor
                var line = "\(w.name) \(w.rows)x\(w.cols):"
                for type in types where w.cols % type.blockSize == 0 {
                    let e = try errors(w, type, h, factor)
                    line += String(format: "  %@ %.4g→%.4g (%+.1f%%; %d rows rounded → %+.1f%%)", type.name, e.rtn, e.pure,
                                   100 * (e.pure / e.rtn - 1), e.roundedRows, 100 * (e.kept / e.rtn - 1))
                    let s = sums[type] ?? (0, 0, 0)
                    sums[type] = (s.pure + log(e.pure / e.rtn), s.kept + log(e.kept / e.rtn), s.n + 1)
                }
                print(line)
            }
        }
        for type in types {
            if let s = sums[type] {
                print(String(format: "%@: geometric mean of error / rounding's over %d matrices: GPTQ %.3f, with fallback %.3f",
                             type.name, s.n, exp(s.pure / Double(s.n)), exp(s.kept / Double(s.n))))
            }
        }

        // A whole model: every blk.* matrix, one factor per distinct input.
        for type in (Self.env["GPTQ_MODEL_TYPES"] ?? "q4_0,q4_K").split(separator: ",").compactMap({ GGMLType(name: String($0)) }) {
            t0 = Date()
            var factorSeconds = 0.0
            var matrices = 0
            for layer in (0..<model.hparams.nLayer).map(model.layerMatrices) {
                var factors: [ObjectIdentifier: GPTQ.Factor] = [:]
                for w in layer where w.cols % type.blockSize == 0 {
                    let h = collector.hessians[w.name]!
                    let tf = Date()
                    let factor = try factors[ObjectIdentifier(h)] ?? GPTQ.Factor(h, dampening: options.dampening)
                    factorSeconds += Date().timeIntervalSince(tf)
                    factors[ObjectIdentifier(h)] = factor
                    let imp = h.importance
                    _ = try gptqQuantize(Array(f32(w)), cols: w.cols, type: type, factor: factor, importance: imp, options: options)
                    matrices += 1
                }
            }
            print(String(format: "GPTQ %@, whole model: %.1f s for %d matrices (factors %.1f s)", type.name,
                         Date().timeIntervalSince(t0), matrices, factorSeconds))
        }

        // End to end: every blk.* matrix in one type, importance-weighted rounding against GPTQ,
        // mean KL divergence from the f32 model on evaluation text (not the calibration text).
        let kldTypes = (Self.env["GPTQ_KLD_TYPES"] ?? "q4_0").split(separator: ",").compactMap { GGMLType(name: String($0)) }
        guard !kldTypes.isEmpty else { return }
        let evalPath = Self.env["GPTQ_EVAL"] ?? "/work/data/wiki/wiki-eval-100k.txt"
        let evalText = try #require(FileManager.default.contents(atPath: evalPath))
        let evalTokens = Tokenizer.llamaCppFilePrompt(Array(evalText)).withUnsafeBytes {
            tokenizer.encode(utf8: $0, addSpecial: true, parseSpecial: false)
        }
        let evalChunks: [[Int32]] = (0..<min(Int(Self.env["GPTQ_EVAL_CHUNKS"] ?? "8") ?? 8, evalTokens.count / nCtx)).map { c in
            var chunk = Array(evalTokens[(c * nCtx)..<((c + 1) * nCtx)])
            if let bos { chunk[0] = bos }
            return chunk
        }
        let sensitivity = Sensitivity(reference: model, chunks: evalChunks, threads: threads)
        if Self.env["GPTQ_GENERALIZE"] == "1" {
            // Does the calibrated gain hold on other text? The same matrices' errors under H of
            // the evaluation chunks, and KLD with one tensor alone quantized.
            let evalH = HessianCollector.collect(model: model, chunks: evalChunks, threads: threads, sinkWeight: sinkWeight)
            let type = kldTypes[0]
            for l in layers where l < model.hparams.nLayer {
                let layer = model.layerMatrices(l)
                var factors: [ObjectIdentifier: GPTQ.Factor] = [:]
                for w in layer where w.cols % type.blockSize == 0 {
                    let h = collector.hessians[w.name]!, he = evalH.hessians[w.name]!
                    let factor = try factors[ObjectIdentifier(h)] ?? GPTQ.Factor(h, dampening: options.dampening)
                    factors[ObjectIdentifier(h)] = factor
                    let src = Array(f32(w))
                    let rtn = gptqRTN(src, cols: w.cols, type: type, importance: h.importance)
                    let (bytes, _) = try gptqQuantize(src, cols: w.cols, type: type, factor: factor, importance: h.importance, options: options)
                    let g = gptqDequantize(bytes, rows: w.rows, cols: w.cols, type: type)
                    let eR = gptqError(src, rtn, cols: w.cols, hessian: he), eG = gptqError(src, g, cols: w.cols, hessian: he)
                    let keep = GPTQByteStorage()
                    func alone(_ values: [Float]) throws -> Double {
                        // the tensor alone, as f32 values on the quantized grid
                        let p = keep.allocate(values.count * 4)
                        values.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                        let f = try GGUFFile(path: modelPath)
                        var tensors: [String: Weight] = [:]
                        for t in f.tensors {
                            tensors[t.name] = Weight(type: t.type, rows: t.ne.count > 1 ? t.ne.dropFirst().reduce(1, *) : 1,
                                                     cols: t.ne[0], data: f.data(t).baseAddress!, name: t.name)
                        }
                        tensors[w.name] = Weight(type: .f32, rows: w.rows, cols: w.cols, data: UnsafeRawPointer(p), name: w.name)
                        return sensitivity.meanKLD(of: try Model(path: modelPath, metadata: model.metadata, tensors: tensors,
                                                                 storage: [f, keep]), changed: w.name)
                    }
                    if Self.env["GPTQ_SINK"] == "1" {
                        // the output error at each chunk's first position (the attention sink) and elsewhere
                        let capture = GPTQFilteredCapture(name: w.name)
                        let fw = Forward(model: model, engine: capture, threads: threads)
                        for chunk in evalChunks { fw.logits(chunk, outputsFrom: nCtx - 1).free() }
                        var first = [0.0, 0.0], rest = [0.0, 0.0]
                        for (k, q) in [rtn, g].enumerated() {
                            for (t, x) in capture.rows.enumerated() {
                                var e = 0.0
                                for r in 0..<w.rows {
                                    var y: Float = 0
                                    for c in 0..<w.cols { y += (src[r * w.cols + c] - q[r * w.cols + c]) * x[c] }
                                    e += Double(y * y)
                                }
                                if t % nCtx == 0 { first[k] += e } else { rest[k] += e }
                            }
                        }
                        let nFirst = Double(evalChunks.count), nRest = Double(capture.rows.count) - nFirst
                        print(String(format: "    %@: first position %.4g→%.4g, others %.4g→%.4g (mean per token)", w.name,
                                     first[0] / nFirst, first[1] / nFirst, rest[0] / nRest, rest[1] / nRest))
                    }
                    let kR = try alone(rtn), kG = try alone(g)
                    print(String(format: "  %@ %@ on eval text: error %.4g→%.4g (%+.1f%%), KLD alone %.5f→%.5f (%+.1f%%)", w.name,
                                 type.name, eR, eG, 100 * (eG / eR - 1), kR, kG, 100 * (kG / kR - 1)))
                }
            }
        }
        for type in kldTypes {
            var rtnWeights: [String: Weight] = [:], gptqWeights: [String: Weight] = [:]
            let keep = GPTQByteStorage()
            for layer in (0..<model.hparams.nLayer).map(model.layerMatrices) {
                var factors: [ObjectIdentifier: GPTQ.Factor] = [:]
                for w in layer where w.cols % type.blockSize == 0 {
                    let h = collector.hessians[w.name]!
                    let factor = try factors[ObjectIdentifier(h)] ?? GPTQ.Factor(h, dampening: options.dampening)
                    factors[ObjectIdentifier(h)] = factor
                    let imp = h.importance
                    let n = w.rows * type.rowSize(w.cols)!
                    let r = keep.allocate(n), g = keep.allocate(n)
                    imp.withUnsafeBufferPointer { i in
                        Quantizers.quantizer(for: type)!.quantizeRows(f32(w), rowLength: w.cols, importance: i,
                                                                       into: UnsafeMutableRawBufferPointer(start: r, count: n))
                    }
                    _ = try imp.withUnsafeBufferPointer { i in
                        try GPTQ.quantize(f32(w), cols: w.cols, type: type, factor: factor, importance: i, options: options,
                                          into: UnsafeMutableRawBufferPointer(start: g, count: n))
                    }
                    rtnWeights[w.name] = Weight(type: type, rows: w.rows, cols: w.cols, data: UnsafeRawPointer(r), name: w.name)
                    gptqWeights[w.name] = Weight(type: type, rows: w.rows, cols: w.cols, data: UnsafeRawPointer(g), name: w.name)
                }
            }
            // (Model.replacing would serve, but trips over the tied output's duplicate name.)
            func variant(_ replaced: [String: Weight]) throws -> Model {
                let f = try GGUFFile(path: modelPath)
                var tensors: [String: Weight] = [:]
                for t in f.tensors {
                    tensors[t.name] = replaced[t.name] ?? Weight(type: t.type, rows: t.ne.count > 1 ? t.ne.dropFirst().reduce(1, *) : 1,
                                                                 cols: t.ne[0], data: f.data(t).baseAddress!, name: t.name)
                }
                return try Model(path: modelPath, metadata: model.metadata, tensors: tensors, storage: [f, keep])
            }
            let first = "blk.0.attn_q.weight"
            let kRTN = sensitivity.meanKLD(of: try variant(rtnWeights), changed: first)
            let kGPTQ = sensitivity.meanKLD(of: try variant(gptqWeights), changed: first)
            print(String(format: "%@ (all %d blk matrices it fits), mean KLD on %d chunks of %@: imatrix RTN %.5f, GPTQ %.5f (%.1f%%)",
                         type.name, rtnWeights.count, evalChunks.count, (evalPath as NSString).lastPathComponent, kRTN, kGPTQ,
                         100 * (kGPTQ / kRTN - 1)))
        }
    }
}

/// Owns quantized tensors of a model variant.
final class GPTQByteStorage {
    var buffers: [UnsafeMutableRawPointer] = []
    func allocate(_ n: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 64)
        buffers.append(p)
        return p
    }
    deinit { for b in buffers { b.deallocate() } }
}

/// Keeps the input rows of one weight's products.
final class GPTQFilteredCapture: MatMulEngine, @unchecked Sendable {
    let name: String
    let inner = GGMLEngine(threads: 2)
    var rows: [[Float]] = []
    init(name: String) { self.name = name }
    func multiply(_ w: Weight, _ x: Matrix, into out: Matrix) {
        if w.name == name { for r in 0..<x.rows { rows.append(Array(UnsafeBufferPointer(start: x.row(r), count: x.cols))) } }
        inner.multiply(w, x, into: out)
    }
}
