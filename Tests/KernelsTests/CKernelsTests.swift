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
        ek_force_level(l)
        defer { ek_unforce_level() }
        return body()
    }

    /// GPTQ's output errors: H·d as the scalar loop sums it (rounded product, rounded sum, columns in
    /// order), bit for bit on every level, for widths around every vector and tile edge.
    @Test(arguments: [(1, 1), (7, 3), (16, 4), (17, 5), (33, 9), (40, 8), (576, 6), (250, 1)])
    func symmetricProductIsTheScalarLoopOnEveryLevel(_ c: (n: Int, rows: Int)) {
        var rng = TestRNG(UInt64(c.n * 31 + c.rows))
        let n = c.n
        var h = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { let v = rng.gaussian() * (i == j ? 8 : 1); h[i * n + j] = v; h[j * n + i] = v } }
        // errors spanning magnitudes, with zeros (columns GPTQ left exact)
        let d = (0..<(c.rows * n)).map { k -> Float in k % 5 == 2 ? 0 : rng.gaussian() * Float(1 << (k % 7)) / 64 }
        var want = [Float](repeating: 0, count: c.rows * n)
        for r in 0..<c.rows {
            for i in 0..<n {
                var s: Float = 0
                for j in 0..<n {
                    let p = h[i * n + j] * d[r * n + j]
                    s = s + p
                }
                want[r * n + i] = s
            }
        }
        for level in Self.levels {
            var got = [Float](repeating: .nan, count: c.rows * n)
            withLevel(level) {
                h.withUnsafeBufferPointer { hp in d.withUnsafeBufferPointer { dp in got.withUnsafeMutableBufferPointer { yp in
                    ek_symv_rows(hp.baseAddress!, Int64(n), dp.baseAddress!, Int64(c.rows), yp.baseAddress!)
                } } }
            }
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "level \(level.rawValue)")
        }
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

    /// f32 weights packed once (`ek_pack_float_panels`) give `ek_gemm_float`'s bits on every level,
    /// over the whole row range and from a later panel on.
    @Test func prepackedFloatGemmEqualsPackingEachCall() {
        var rng = TestRNG(7)
        for (rows, k, tokens) in [(45, 70, 17), (576, 64, 29), (3, 5, 1), (100, 576, 13)] {
            let w = (0..<(rows * k)).map { _ in rng.gaussian() }
            let x = (0..<(tokens * k)).map { _ in rng.gaussian() }
            for level in Self.levels {
                withLevel(level) {
                    let mr = Int(ek_float_panel_rows())
                    var panels = [Float](repeating: .nan, count: (rows + mr - 1) / mr * mr * k)
                    ek_pack_float_panels(w, Int64(rows), Int64(k), Int32(mr), &panels)
                    var want = [Float](repeating: .nan, count: rows * tokens), got = want
                    w.withUnsafeBytes { wp in
                        ek_gemm_float(EK_W_F32, wp.baseAddress!, k * 4, 0, Int64(rows), x, k, Int64(tokens), Int64(k), &want, rows)
                    }
                    let mid = Int64(rows / 2 / mr * mr)
                    ek_gemm_float_panels(panels, Int32(mr), 0, mid, x, k, Int64(tokens), Int64(k), &got, rows)
                    ek_gemm_float_panels(panels, Int32(mr), mid, Int64(rows), x, k, Int64(tokens), Int64(k), &got, rows)
                    #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "level \(level.rawValue) \(rows)x\(k)x\(tokens)")
                }
            }
        }
    }

    /// bf16 and f16 weights (as checkpoints hold them) through every level's packing: the same
    /// FMA chain over the exactly widened weights, for row counts and widths around the 32-row
    /// panel and the 16-wide transposes.
    @Test(arguments: [(45, 70, 13), (32, 64, 4), (70, 33, 1), (5, 16, 3), (64, 576, 9)])
    func halfWeightsPackExactlyOnEveryLevel(_ c: (rows: Int, k: Int, tokens: Int)) {
        var rng = TestRNG(UInt64(c.rows * 1000 + c.k))
        let x = (0..<(c.tokens * c.k)).map { _ in rng.gaussian() }
        for type in [EK_W_BF16, EK_W_F16] {
            // bit patterns of every kind: normals over a wide range, f16 subnormals, zeros of both signs
            let bits: [UInt16] = (0..<(c.rows * c.k)).map { i in
                let f = rng.gaussian() * (i % 11 == 0 ? 1e-6 : 1)
                if i % 17 == 5 { return 0x8000 }
                return type == EK_W_BF16 ? UInt16(f.bitPattern >> 16) : Float16(f).bitPattern
            }
            let w = bits.map { b -> Float in type == EK_W_BF16 ? Float(bitPattern: UInt32(b) << 16) : Float(Float16(bitPattern: b)) }
            var want = [Float](repeating: 0, count: c.rows * c.tokens)
            for t in 0..<c.tokens {
                for r in 0..<c.rows {
                    var acc: Float = 0
                    for kk in 0..<c.k { acc = acc.addingProduct(w[r * c.k + kk], x[t * c.k + kk]) }
                    want[t * c.rows + r] = acc
                }
            }
            for level in Self.levels {
                var got = [Float](repeating: .nan, count: c.rows * c.tokens)
                withLevel(level) {
                    bits.withUnsafeBytes { wp in x.withUnsafeBufferPointer { xp in got.withUnsafeMutableBufferPointer { yp in
                        ek_gemm_float(type, wp.baseAddress!, c.k * 2, 0, Int64(c.rows), xp.baseAddress!, c.k, Int64(c.tokens), Int64(c.k),
                                      yp.baseAddress!, c.rows)
                    } } }
                }
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "type \(type.rawValue) level \(level.rawValue)")
            }
        }
    }

    /// bf16 × bf16 as VDPBF16PS sums it — per pair of columns the odd one first, each an FMA,
    /// subnormals in read as zero and out flushed — on every level, with and without AVX512-BF16:
    /// odd and even widths, rows and tokens around the tiles, values from subnormal to large.
    @Test(arguments: [(45, 70, 13), (32, 64, 4), (70, 33, 1), (5, 17, 3), (64, 576, 29), (33, 1537, 12), (1, 1, 1)])
    func bf16GemmIsVDPBF16PSOnEveryPath(_ c: (rows: Int, k: Int, tokens: Int)) {
        var rng = TestRNG(UInt64(c.rows * 7919 + c.k))
        func value(_ i: Int) -> UInt16 {
            if i % 23 == 3 { return i % 2 == 0 ? 0x8000 : 0 }
            if i % 29 == 7 { return UInt16(truncatingIfNeeded: 1 + i % 0x7F) | (i % 3 == 0 ? 0x8000 : 0) } // subnormal
            let scale: Float = i % 13 == 0 ? 1e-19 : i % 7 == 0 ? 1e3 : 1
            return UInt16((rng.gaussian() * scale).bitPattern >> 16)
        }
        let w = (0..<(c.rows * c.k)).map(value)
        let x = (0..<(c.tokens * c.k)).map { value($0 + 5) }
        func f(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h & 0x7F80 == 0 ? h & 0x8000 : h) << 16) }
        func step(_ acc: Float, _ a: Float, _ b: Float) -> Float {
            let s = acc.addingProduct(a, b)
            return abs(s) < .leastNormalMagnitude ? (s.sign == .minus ? -0.0 : 0.0) : s
        }
        var want = [Float](repeating: 0, count: c.rows * c.tokens)
        for t in 0..<c.tokens {
            for r in 0..<c.rows {
                var acc: Float = 0
                for p in stride(from: 0, to: c.k, by: 2) {
                    acc = p + 1 < c.k ? step(acc, f(w[r * c.k + p + 1]), f(x[t * c.k + p + 1])) : step(acc, 0, 0)
                    acc = step(acc, f(w[r * c.k + p]), f(x[t * c.k + p]))
                }
                want[t * c.rows + r] = acc
            }
        }
        var paths = Self.levels.map { ($0, Int32(0)) }
        if ek_detected_level() == EK_LEVEL_AVX512 {
            ek_force_level(EK_LEVEL_AVX512)
            let has = ek_cpu_has_bf16()
            ek_unforce_level()
            if has != 0 { paths.append((EK_LEVEL_AVX512, 1)) }
        }
        for (level, bf16) in paths {
            var got = [Float](repeating: .nan, count: c.rows * c.tokens)
            withLevel(level) {
                ek_force_bf16(bf16)
                defer { ek_force_bf16(-1) }
                w.withUnsafeBytes { wp in x.withUnsafeBufferPointer { xp in got.withUnsafeMutableBufferPointer { yp in
                    let mid = Int64(c.rows / 2)
                    ek_gemm_bf16(wp.baseAddress!, c.k * 2, 0, mid, xp.baseAddress!, c.k, Int64(c.tokens), Int64(c.k), yp.baseAddress!, c.rows)
                    ek_gemm_bf16(wp.baseAddress!, c.k * 2, mid, Int64(c.rows), xp.baseAddress!, c.k, Int64(c.tokens), Int64(c.k),
                                 yp.baseAddress!, c.rows)
                } } }
            }
            let bad = zip(got, want).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(bad == 0, "level \(level.rawValue) bf16 \(bf16): \(bad) of \(want.count) differ")
        }
    }

    /// f32 → bf16 (ties to even, subnormals to a signed zero, NaN quiet) and the transposing form
    /// XᵀX reads, on every level, for widths around the 16-lane vectors.
    @Test(arguments: [(1, 1), (16, 16), (17, 33), (40, 21), (64, 576)])
    func bf16ConversionAndTransposeOnEveryLevel(_ c: (rows: Int, cols: Int)) {
        var rng = TestRNG(UInt64(c.rows * 131 + c.cols))
        let specials: [UInt32] = [0x7FC0_0001, 0xFF80_0001, 0x7F80_0000, 0x0000_1234, 0x8000_0001, 0x3F80_8000, 0x3F81_8000, 0x3F80_8001, 0x7F7F_FFFF]
        let x = (0..<(c.rows * c.cols)).map { i -> Float in
            i % 7 == 3 ? Float(bitPattern: specials[(i / 7) % specials.count]) : rng.gaussian() * Float(1 << (i % 9))
        }
        func bf16(_ f: Float) -> UInt16 {
            var u = f.bitPattern
            if u & 0x7F80_0000 == 0 { u &= 0x8000_0000 }
            if u & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16((u | 0x0040_0000) >> 16) }
            return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
        }
        let first: Float = 2.5
        let wantRow = x.map(bf16)
        var wantT = [UInt16](repeating: 0, count: x.count)
        for t in 0..<c.rows { for k in 0..<c.cols { wantT[k * c.rows + t] = bf16(x[t * c.cols + k] * (t == 0 ? first : 1)) } }
        for level in Self.levels {
            var row = [UInt16](repeating: 1, count: x.count), tr = row
            withLevel(level) {
                ek_f32_to_bf16(x, Int64(x.count), &row)
                ek_transpose_bf16(x, c.cols, Int64(c.rows), Int64(c.cols), first, &tr)
            }
            #expect(row == wantRow, "level \(level.rawValue)")
            #expect(tr == wantT, "level \(level.rawValue)")
        }
    }

    /// SwiGLU and the planner's log-softmax: the same bits on every level (ggml's vectorised exp on
    /// whole sixteens, libm's on the rest of a row), and close to the plain formulas, for rows whose
    /// length is and is not a multiple of 16 and values whose exponentials underflow or overflow.
    @Test(arguments: [(3, 37), (2, 16), (1, 1536), (4, 5)])
    func swigluAndLogSoftmaxAgreeAcrossLevels(_ c: (rows: Int, n: Int)) {
        var rng = TestRNG(UInt64(c.rows * 17 + c.n))
        let x = (0..<(c.rows * c.n)).map { i -> Float in i % 19 == 4 ? [-120, 95, -1e-30, 0][i / 19 % 4] : rng.gaussian() * 6 }
        let g = (0..<(c.rows * c.n)).map { _ in rng.gaussian() }
        var outs: [[Float]] = []
        var lsms: [[Float]] = []
        for level in Self.levels {
            var y = x, l = x
            withLevel(level) {
                ek_swiglu_rows(&y, g, Int64(c.rows), Int64(c.n))
                ek_log_softmax_rows(&l, c.n, Int64(c.rows), Int64(c.n))
            }
            outs.append(y)
            lsms.append(l)
        }
        for k in 1..<outs.count {
            #expect(outs[k].map(\.bitPattern) == outs[0].map(\.bitPattern), "swiglu, level \(k)")
            #expect(lsms[k].map(\.bitPattern) == lsms[0].map(\.bitPattern), "log-softmax, level \(k)")
        }
        for i in x.indices {
            let want = Double(x[i]) / (1 + exp(-Double(x[i]))) * Double(g[i])
            #expect(abs(Double(outs[0][i]) - want) <= 1e-6 * max(1, abs(want)), "swiglu \(x[i])")
        }
        for r in 0..<c.rows {
            let row = x[(r * c.n)..<((r + 1) * c.n)].map(Double.init)
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            for j in 0..<c.n {
                #expect(abs(Double(lsms[0][r * c.n + j]) - (row[j] - lse)) <= 1e-5 * max(1, abs(row[j] - lse)))
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
