import CKernels
import Foundation
import Testing

/// The C kernels on every instruction-set level this machine has: float GEMM and attention are
/// defined as exact FMA chains, so every level must give the same bits; and against plain math.
@Suite(.serialized) struct CKernelsTests {
    static var levels: [ek_level] {
        let top = ek_detected_level()
        return [EK_LEVEL_GENERIC, EK_LEVEL_AVX2, EK_LEVEL_AVX512].filter { $0.rawValue <= top.rawValue }
    }

    func withLevel<T>(_ l: ek_level, _ body: () -> T) -> T {
        let saved = ek_cpu_level()
        ek_force_level(l)
        defer { ek_force_level(saved) }
        return body()
    }

    @Test func floatGemmIsOneFMAChainOnEveryLevel() {
        var rng = TestRNG(99)
        // the last: rows long enough that the AVX2 path packs the tokens in three blocks
        for (rows, k, tokens) in [(45, 70, 17), (32, 64, 12), (3, 5, 1), (100, 576, 29), (17, 30000, 70)] {
            let w = (0..<(rows * k)).map { _ in rng.gaussian() }
            let x = (0..<(tokens * k)).map { _ in rng.gaussian() }
            var want = [Float](repeating: 0, count: rows * tokens)
            for t in 0..<tokens {
                for r in 0..<rows {
                    var acc: Float = 0
                    for kk in 0..<k { acc = acc.addingProduct(w[r * k + kk], x[t * k + kk]) } // one rounding per step
                    want[t * rows + r] = acc
                }
            }
            for level in Self.levels {
                var got = [Float](repeating: .nan, count: rows * tokens)
                withLevel(level) {
                    w.withUnsafeBytes { wp in x.withUnsafeBufferPointer { xp in got.withUnsafeMutableBufferPointer { yp in
                        // two calls over a split row range, as the threads do
                        let mid = Int64(rows / 2)
                        ek_gemm_float(EK_W_F32, wp.baseAddress!, k * 4, 0, mid, xp.baseAddress!, k, Int64(tokens), Int64(k), yp.baseAddress!, rows)
                        ek_gemm_float(EK_W_F32, wp.baseAddress!, k * 4, mid, Int64(rows), xp.baseAddress!, k, Int64(tokens), Int64(k), yp.baseAddress!, rows)
                    } } }
                }
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "level \(level.rawValue) \(rows)x\(k)x\(tokens)")
            }
        }
    }

    /// Causal softmax attention in double, for the tolerance check.
    /// With `window` > 0 a query sees only the last `window` positions; `softcap` > 0 caps scores
    /// as cap·tanh(s/cap).
    static func naiveAttention(q: [Float], k: [Float], v: [Float], n: Int, past: Int, d: Int, scale: Float,
                               window: Int = 0, softcap: Double = 0) -> [Double] {
        var out = [Double](repeating: 0, count: n * d)
        for t in 0..<n {
            let visible = past + t + 1
            let first = window > 0 ? max(0, visible - window) : 0
            var s = [Double](repeating: -.infinity, count: visible)
            for j in first..<visible {
                s[j] = 0
                for e in 0..<d { s[j] += Double(q[t * d + e]) * Double(k[j * d + e]) }
                s[j] *= Double(scale)
                if softcap > 0 { s[j] = softcap * tanh(s[j] / softcap) }
            }
            let m = s.max()!
            let p = s.map { exp($0 - m) }, z = p.reduce(0, +)
            for j in first..<visible { for e in 0..<d { out[t * d + e] += p[j] / z * Double(v[j * d + e]) } }
        }
        return out
    }

    @Test(arguments: [(n: 64, past: 0, window: 0, softcap: Float(0)), (n: 130, past: 0, window: 0, softcap: 0),
                      (n: 70, past: 37, window: 0, softcap: 0), (n: 5, past: 200, window: 0, softcap: 0),
                      (n: 200, past: 0, window: 70, softcap: 0), (n: 70, past: 100, window: 64, softcap: 0),
                      (n: 130, past: 5, window: 0, softcap: 2), (n: 100, past: 0, window: 33, softcap: 1.5)])
    func attentionMatchesSoftmaxAndAgreesAcrossLevels(_ c: (n: Int, past: Int, window: Int, softcap: Float)) {
        attention(c, d: 64, qScale: 2)
    }

    /// Head sizes off the 16-wide tiles (scalar V product) and Gemma's 256; and scores spread far
    /// enough (queries ×40) that exp(s − max) comes out subnormal or zero, where the vector
    /// exponential hands lanes to the scalar one.
    @Test(arguments: [(d: 40, qScale: Float(2)), (d: 256, qScale: 2), (d: 64, qScale: 40), (d: 128, qScale: 25)])
    func attentionAgreesAcrossLevelsForOtherHeadsAndWideScores(_ c: (d: Int, qScale: Float)) {
        attention((n: 150, past: 10, window: 0, softcap: 0), d: c.d, qScale: c.qScale)
    }

    func attention(_ c: (n: Int, past: Int, window: Int, softcap: Float), d: Int, qScale: Float) {
        var rng = TestRNG(UInt64(c.n * 7 + c.past + d))
        let nkv = c.past + c.n
        let q = (0..<(c.n * d)).map { _ in rng.gaussian() * qScale }
        let k = (0..<(nkv * d)).map { _ in rng.gaussian() }
        let v = (0..<(nkv * d)).map { _ in rng.gaussian() }
        let scale = 1 / Float(d).squareRoot()
        let want = Self.naiveAttention(q: q, k: k, v: v, n: c.n, past: c.past, d: d, scale: scale,
                                       window: c.window, softcap: Double(c.softcap))
        var results: [[UInt32]] = []
        for level in Self.levels {
            var out = [Float](repeating: .nan, count: c.n * d)
            var kt = [Float](repeating: .nan, count: (nkv + 63) / 64 * 64 * d)
            withLevel(level) {
                k.withUnsafeBufferPointer { kp in kt.withUnsafeMutableBufferPointer { ktp in
                    ek_attention_pack_k(kp.baseAddress!, d, Int64(nkv), Int64(d), ktp.baseAddress!)
                } }
                q.withUnsafeBufferPointer { qp in kt.withUnsafeBufferPointer { ktp in v.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { op in
                        ek_attention_tiled(qp.baseAddress!, d, ktp.baseAddress!, vp.baseAddress!, d, Int64(c.past), 0, Int64(c.n),
                                           Int64(d), Int64(d), scale, Int64(c.window), c.softcap, op.baseAddress!, d)
                    }
                } } }
            }
            let worst = zip(out, want).map { abs(Double($0) - $1) }.max()!
            #expect(worst < 1e-5 * Double(qScale), "level \(level.rawValue): worst |Δ| \(worst)")
            results.append(out.map(\.bitPattern))
        }
        for r in results.dropFirst() { #expect(r == results[0], "levels disagree") }
    }
}
