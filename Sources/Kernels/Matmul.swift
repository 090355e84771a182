import GGMLCore

/// The tiled matrix product behind `Kernels.matmul`.
///
/// A worker owns a range of 4-row weight groups. It decodes a chunk of groups once into a panel
/// (int16 quants with the k-quant sub-block scales folded in, or f32 for float weights), then
/// sweeps the tokens in blocks that stay in L2; within a block each 4-row group (L1-resident) meets
/// the tokens two at a time in a 4×2 register tile. Integer tiles accumulate `pmaddwd`-shaped
/// products (SIMD8<Int16> → SIMD4<Int32>, one SSE2 instruction) per block; at the end of each
/// block the four lanes of the eight accumulators are reduced into one vector per token (4 rows)
/// and scaled in float by the block's d_w·d_a — ggml's per-block math, four rows at a time.
struct MatmulJob: @unchecked Sendable {
    let type: GGMLType
    let weights: UnsafeRawPointer
    let rowBytes: Int
    let nRows: Int
    let act: QuantizedActivations
    let out: UnsafeMutablePointer<Float>

    /// One token: plain vec_dot per row on the ggml-layout activation row (no panel to amortise).
    func runSingleToken(rows: Range<Int>) {
        for r in rows {
            out[r] = Kernels.vecDot(type, n: act.nCols, weights + r * rowBytes, act.raw)
        }
    }

    func run(groups: Range<Int>) {
        if groups.isEmpty { return }
        let k = act.nCols
        // Panel chunk ≈ 128 KiB of decoded weights; token block ≈ 192 KiB of activations.
        let elemBytes = act.type.isQuantized ? 2 : 4
        let chunkGroups = max(1, min(groups.count, 131_072 / (4 * k * elemBytes)))
        let tokenBlock = max(2, (196_608 / (k * elemBytes)) & ~1)
        if act.type.isQuantized {
            runInt(groups: groups, chunkGroups: chunkGroups, tokenBlock: tokenBlock)
        } else {
            runFloat(groups: groups, chunkGroups: chunkGroups, tokenBlock: tokenBlock)
        }
    }

    @inline(__always)
    func store(_ v: SIMD4<Float>, token t: Int, row r0: Int) {
        let o = out + t * nRows + r0
        if r0 + 4 <= nRows {
            UnsafeMutableRawPointer(o).storeBytes(of: v, as: SIMD4<Float>.self)
        } else {
            for i in 0..<(nRows - r0) { o[i] = v[i] }
        }
    }

    // MARK: quantized weights

    func runInt(groups: Range<Int>, chunkGroups: Int, tokenBlock: Int) {
        let k = act.nCols
        let kq = WeightDecode.isKQuant(type)
        let bs = kq ? 256 : 32
        let nb = k / bs
        let hasMin = WeightDecode.hasMin(type)
        let rowsCap = chunkGroups * 4
        let w = Kernels.allocateInt16(rowsCap * k)
        let dv = UnsafeMutablePointer<SIMD4<Float>>.allocate(capacity: chunkGroups * nb)
        let mv = UnsafeMutablePointer<SIMD4<Float>>.allocate(capacity: chunkGroups * nb)
        let mins = Kernels.allocateInt16(kq ? rowsCap * nb * 16 : 1)
        defer { w.deallocate(); dv.deallocate(); mv.deallocate(); mins.deallocate() }
        let dScalar = UnsafeMutableRawPointer(dv).assumingMemoryBound(to: Float.self)
        let mScalar = UnsafeMutableRawPointer(mv).assumingMemoryBound(to: Float.self)
        let nTokens = act.nTokens

        var c0 = groups.lowerBound
        while c0 < groups.upperBound {
            let c1 = min(c0 + chunkGroups, groups.upperBound)
            // decode the chunk: row i of the chunk at w + i·k; group g's block b scales at dv[g·nb + b]
            for g in 0..<(c1 - c0) {
                for r in 0..<4 {
                    let row = (c0 + g) * 4 + r
                    let i = g * 4 + r
                    if row < nRows {
                        WeightDecode.decode(type, weights + row * rowBytes, nBlocks: nb, w: w + i * k,
                                            d: dScalar + g * nb * 4 + r, m: mScalar + g * nb * 4 + r, dStride: 4,
                                            mins: mins + i * nb * 16)
                    } else {
                        (w + i * k).initialize(repeating: 0, count: k)
                        for b in 0..<nb { dScalar[(g * nb + b) * 4 + r] = 0; mScalar[(g * nb + b) * 4 + r] = 0 }
                        if kq { (mins + i * nb * 16).initialize(repeating: 0, count: nb * 16) }
                    }
                }
            }
            var t0 = 0
            while t0 < nTokens {
                let t1 = min(t0 + tokenBlock, nTokens)
                for g in 0..<(c1 - c0) {
                    let wg = w + g * 4 * k
                    let r0 = (c0 + g) * 4
                    var t = t0
                    while t < t1 {
                        let ta = t, tb = t + 1 < t1 ? t + 1 : t
                        let res: (SIMD4<Float>, SIMD4<Float>)
                        if kq {
                            res = Tile.kquant(w: wg, k: k, nb: nb, d: dv + g * nb, dmin: mv + g * nb,
                                              mins: mins + g * 4 * nb * 16, hasMin: hasMin,
                                              a0: act.a16 + ta * k, a1: act.a16 + tb * k,
                                              da0: act.ad + ta * nb, da1: act.ad + tb * nb,
                                              bs0: act.bsums + ta * nb * 16, bs1: act.bsums + tb * nb * 16)
                        } else if hasMin {
                            res = Tile.legacy(w: wg, k: k, nb: nb, d: dv + g * nb, m: mv + g * nb, hasMin: true,
                                              a0: act.a16 + ta * k, a1: act.a16 + tb * k,
                                              da0: act.ad + ta * nb, da1: act.ad + tb * nb,
                                              s0: act.asum + ta * nb, s1: act.asum + tb * nb)
                        } else {
                            res = Tile.legacy(w: wg, k: k, nb: nb, d: dv + g * nb, m: mv + g * nb, hasMin: false,
                                              a0: act.a16 + ta * k, a1: act.a16 + tb * k,
                                              da0: act.ad + ta * nb, da1: act.ad + tb * nb,
                                              s0: act.ad, s1: act.ad)
                        }
                        store(res.0, token: ta, row: r0)
                        if tb != ta { store(res.1, token: tb, row: r0) }
                        t += 2
                    }
                }
                t0 = t1
            }
            c0 = c1
        }
    }

    // MARK: float weights

    /// f32 and f16 weights only: bf16 goes to `ek_gemm_bf16` on every level (`NativeMatmul`).
    func runFloat(groups: Range<Int>, chunkGroups: Int, tokenBlock: Int) {
        precondition(type == .f32 || type == .f16, "runFloat: \(type) weights")
        let k = act.nCols
        let direct = type == .f32
        let rowsCap = chunkGroups * 4
        let panel = UnsafeMutablePointer<Float>.allocate(capacity: direct ? 1 : rowsCap * k)
        let zero = UnsafeMutablePointer<Float>.allocate(capacity: k)
        zero.initialize(repeating: 0, count: k)
        defer { panel.deallocate(); zero.deallocate() }
        let nTokens = act.nTokens

        var c0 = groups.lowerBound
        while c0 < groups.upperBound {
            let c1 = min(c0 + chunkGroups, groups.upperBound)
            if !direct {
                for i in 0..<((c1 - c0) * 4) {
                    let row = c0 * 4 + i
                    let dst = panel + i * k
                    if row >= nRows { dst.initialize(repeating: 0, count: k); continue }
                    let src = (weights + row * rowBytes).assumingMemoryBound(to: UInt16.self)
                    Half.toFloat(src, dst, count: k)
                }
            }
            func rowPtr(_ g: Int, _ r: Int) -> UnsafePointer<Float> {
                if !direct { return UnsafePointer(panel + ((g - c0) * 4 + r) * k) }
                let row = g * 4 + r
                return row < nRows ? (weights + row * rowBytes).assumingMemoryBound(to: Float.self) : UnsafePointer(zero)
            }
            var t0 = 0
            while t0 < nTokens {
                let t1 = min(t0 + tokenBlock, nTokens)
                for g in c0..<c1 {
                    let w0 = rowPtr(g, 0), w1 = rowPtr(g, 1), w2 = rowPtr(g, 2), w3 = rowPtr(g, 3)
                    var t = t0
                    while t < t1 {
                        let ta = t, tb = t + 1 < t1 ? t + 1 : t
                        let res = Tile.float(w0, w1, w2, w3, k: k, a0: act.f + ta * k, a1: act.f + tb * k)
                        store(res.0, token: ta, row: g * 4)
                        if tb != ta { store(res.1, token: tb, row: g * 4) }
                        t += 2
                    }
                }
                t0 = t1
            }
            c0 = c1
        }
    }
}

/// 4-row × 2-token register tiles. Concrete SIMD types only: each operation lowers to one SSE2
/// instruction (checked in the release assembly: `pmaddwd` with a folded aligned load, `paddd`,
/// `cvtdq2ps`, `mulps`). The inner step is 26 instructions per 64 multiply-adds, and the eight
/// SIMD4<Int32> accumulators plus operands fill baseline x86-64's 16 xmm registers. SIMD16<Int16>
/// variants (for -target-cpu AVX2/AVX-512 builds) lowered to `vpmulld` and libcalls, so there is
/// one, 128-bit, width.
enum Tile {
    /// An aligned load: every int16 buffer the tiles read is 64-byte aligned and every offset a
    /// multiple of 8 elements, so SSE2 can fold the load into `pmaddwd`'s memory operand. Loaded
    /// as 2×Int64 and bit-cast: a direct SIMD8<Int16> load makes LLVM split it into
    /// `vpmovzxwd`+`vpackusdw` pairs when building for AVX2 (-target-cpu haswell), 40% slower.
    @inline(__always)
    static func load8(_ p: UnsafePointer<Int16>) -> SIMD8<Int16> {
        unsafeBitCast(UnsafeRawPointer(p).load(as: SIMD2<Int64>.self), to: SIMD8<Int16>.self)
    }

    /// Σ pairs of int16 products into int32 lanes: `pmaddwd`.
    @inline(__always)
    static func madd(_ a: SIMD8<Int16>, _ b: SIMD8<Int16>) -> SIMD4<Int32> {
        let p = SIMD8<Int32>(truncatingIfNeeded: a) &* SIMD8<Int32>(truncatingIfNeeded: b)
        return p.evenHalf &+ p.oddHalf
    }

    /// (Σa, Σb, Σc, Σd) of four vectors' lanes: unpck{l,h}dq, add, unpck{l,h}qdq, add (12 SSE2
    /// instructions; `lowHalf`/`evenHalf` spellings of the same shuffles lower worse).
    @inline(__always)
    static func hsum4(_ a: SIMD4<Int32>, _ b: SIMD4<Int32>, _ c: SIMD4<Int32>, _ d: SIMD4<Int32>) -> SIMD4<Int32> {
        // 64-bit halves first (punpck{l,h}qdq), so LLVM does not rebuild four full reductions
        let a2 = unsafeBitCast(a, to: SIMD2<Int64>.self), b2 = unsafeBitCast(b, to: SIMD2<Int64>.self)
        let c2 = unsafeBitCast(c, to: SIMD2<Int64>.self), d2 = unsafeBitCast(d, to: SIMD2<Int64>.self)
        let s = unsafeBitCast(SIMD2(a2[0], b2[0]), to: SIMD4<Int32>.self) &+ unsafeBitCast(SIMD2(a2[1], b2[1]), to: SIMD4<Int32>.self)
        let u = unsafeBitCast(SIMD2(c2[0], d2[0]), to: SIMD4<Int32>.self) &+ unsafeBitCast(SIMD2(c2[1], d2[1]), to: SIMD4<Int32>.self)
        return SIMD4(s[0], s[2], u[0], u[2]) &+ SIMD4(s[1], s[3], u[1], u[3])
    }

    @inline(__always)
    static func hsum4(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>, _ d: SIMD4<Float>) -> SIMD4<Float> {
        let s = SIMD4(a[0], b[0], a[1], b[1]) + SIMD4(a[2], b[2], a[3], b[3])
        let u = SIMD4(c[0], d[0], c[1], d[1]) + SIMD4(c[2], d[2], c[3], d[3])
        return SIMD4(lowHalf: s.lowHalf, highHalf: u.lowHalf) + SIMD4(lowHalf: s.highHalf, highHalf: u.highHalf)
    }

    @inline(__always)
    static func toFloat(_ v: SIMD4<Int32>) -> SIMD4<Float> { SIMD4<Float>(v) }

    /// Legacy types: 32-element blocks, `d[b]` = the 4 rows' scales of block b (and `m[b]` their mins).
    @inline(__always)
    static func legacy(w: UnsafePointer<Int16>, k: Int, nb: Int,
                       d: UnsafePointer<SIMD4<Float>>, m: UnsafePointer<SIMD4<Float>>, hasMin: Bool,
                       a0: UnsafePointer<Int16>, a1: UnsafePointer<Int16>,
                       da0: UnsafePointer<Float>, da1: UnsafePointer<Float>,
                       s0: UnsafePointer<Float>, s1: UnsafePointer<Float>) -> (SIMD4<Float>, SIMD4<Float>) {
        let w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k
        var f0 = SIMD4<Float>(), f1 = SIMD4<Float>()
        for b in 0..<nb {
            let o = b * 32
            var c00 = SIMD4<Int32>(), c01 = SIMD4<Int32>(), c10 = SIMD4<Int32>(), c11 = SIMD4<Int32>()
            var c20 = SIMD4<Int32>(), c21 = SIMD4<Int32>(), c30 = SIMD4<Int32>(), c31 = SIMD4<Int32>()
            @inline(__always) func step(_ j: Int) {
                let x0 = load8(a0 + o + j), x1 = load8(a1 + o + j)
                let y0 = load8(w0 + o + j)
                c00 &+= madd(y0, x0); c01 &+= madd(y0, x1)
                let y1 = load8(w1 + o + j)
                c10 &+= madd(y1, x0); c11 &+= madd(y1, x1)
                let y2 = load8(w2 + o + j)
                c20 &+= madd(y2, x0); c21 &+= madd(y2, x1)
                let y3 = load8(w3 + o + j)
                c30 &+= madd(y3, x0); c31 &+= madd(y3, x1)
            }
            step(0); step(8); step(16); step(24)
            let i0 = hsum4(c00, c10, c20, c30)
            let i1 = hsum4(c01, c11, c21, c31)
            let db = d[b]
            if hasMin {
                // (d·dy)·sumi + m·s, then added: the order of ggml's generic q4_1/q5_1 code
                f0 += toFloat(i0) * (db * da0[b]) + m[b] * s0[b]
                f1 += toFloat(i1) * (db * da1[b]) + m[b] * s1[b]
            } else {
                f0 += toFloat(i0) * (db * da0[b])
                f1 += toFloat(i1) * (db * da1[b])
            }
        }
        return (f0, f1)
    }

    /// k-quants: 256-element super-blocks with the integer sub-block scales folded into `w`;
    /// `mins` holds 16 Int16 per row per super-block (row r at `mins + r·nb·16`).
    @inline(__always)
    static func kquant(w: UnsafePointer<Int16>, k: Int, nb: Int,
                       d: UnsafePointer<SIMD4<Float>>, dmin: UnsafePointer<SIMD4<Float>>,
                       mins: UnsafePointer<Int16>, hasMin: Bool,
                       a0: UnsafePointer<Int16>, a1: UnsafePointer<Int16>,
                       da0: UnsafePointer<Float>, da1: UnsafePointer<Float>,
                       bs0: UnsafePointer<Int16>, bs1: UnsafePointer<Int16>) -> (SIMD4<Float>, SIMD4<Float>) {
        let w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k
        var f0 = SIMD4<Float>(), f1 = SIMD4<Float>()
        for b in 0..<nb {
            let o = b * 256
            var c00 = SIMD4<Int32>(), c01 = SIMD4<Int32>(), c10 = SIMD4<Int32>(), c11 = SIMD4<Int32>()
            var c20 = SIMD4<Int32>(), c21 = SIMD4<Int32>(), c30 = SIMD4<Int32>(), c31 = SIMD4<Int32>()
            for j in stride(from: 0, to: 256, by: 8) {
                let x0 = load8(a0 + o + j), x1 = load8(a1 + o + j)
                let y0 = load8(w0 + o + j)
                c00 &+= madd(y0, x0); c01 &+= madd(y0, x1)
                let y1 = load8(w1 + o + j)
                c10 &+= madd(y1, x0); c11 &+= madd(y1, x1)
                let y2 = load8(w2 + o + j)
                c20 &+= madd(y2, x0); c21 &+= madd(y2, x1)
                let y3 = load8(w3 + o + j)
                c30 &+= madd(y3, x0); c31 &+= madd(y3, x1)
            }
            let i0 = hsum4(c00, c10, c20, c30)
            let i1 = hsum4(c01, c11, c21, c31)
            let db = d[b]
            f0 += toFloat(i0) * (db * da0[b])
            f1 += toFloat(i1) * (db * da1[b])
            if hasMin {
                let mo = b * 16, rs = nb * 16
                let b0l = load8(bs0 + mo), b0h = load8(bs0 + mo + 8)
                let b1l = load8(bs1 + mo), b1h = load8(bs1 + mo + 8)
                var m0 = SIMD4<Int32>(repeating: 0), m1 = m0, m2 = m0, m3 = m0
                var n0 = m0, n1 = m0, n2 = m0, n3 = m0
                do {
                    let l = load8(mins + mo), h = load8(mins + mo + 8)
                    m0 = madd(l, b0l) &+ madd(h, b0h); n0 = madd(l, b1l) &+ madd(h, b1h)
                }
                do {
                    let l = load8(mins + rs + mo), h = load8(mins + rs + mo + 8)
                    m1 = madd(l, b0l) &+ madd(h, b0h); n1 = madd(l, b1l) &+ madd(h, b1h)
                }
                do {
                    let l = load8(mins + 2 * rs + mo), h = load8(mins + 2 * rs + mo + 8)
                    m2 = madd(l, b0l) &+ madd(h, b0h); n2 = madd(l, b1l) &+ madd(h, b1h)
                }
                do {
                    let l = load8(mins + 3 * rs + mo), h = load8(mins + 3 * rs + mo + 8)
                    m3 = madd(l, b0l) &+ madd(h, b0h); n3 = madd(l, b1l) &+ madd(h, b1h)
                }
                let s0 = hsum4(m0, m1, m2, m3), s1 = hsum4(n0, n1, n2, n3)
                let dm = dmin[b]
                f0 -= toFloat(s0) * (dm * da0[b])
                f1 -= toFloat(s1) * (dm * da1[b])
            }
        }
        return (f0, f1)
    }

    /// Float weights and activations: f32 lanes, four rows by two tokens.
    @inline(__always)
    static func float(_ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ w2: UnsafePointer<Float>,
                      _ w3: UnsafePointer<Float>, k: Int,
                      a0: UnsafePointer<Float>, a1: UnsafePointer<Float>) -> (SIMD4<Float>, SIMD4<Float>) {
        var c00 = SIMD4<Float>(), c01 = SIMD4<Float>(), c10 = SIMD4<Float>(), c11 = SIMD4<Float>()
        var c20 = SIMD4<Float>(), c21 = SIMD4<Float>(), c30 = SIMD4<Float>(), c31 = SIMD4<Float>()
        @inline(__always) func ld(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
            UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
        }
        var j = 0
        while j + 4 <= k {
            let x0 = ld(a0 + j), x1 = ld(a1 + j)
            let y0 = ld(w0 + j)
            c00 += y0 * x0; c01 += y0 * x1
            let y1 = ld(w1 + j)
            c10 += y1 * x0; c11 += y1 * x1
            let y2 = ld(w2 + j)
            c20 += y2 * x0; c21 += y2 * x1
            let y3 = ld(w3 + j)
            c30 += y3 * x0; c31 += y3 * x1
            j += 4
        }
        var r0 = hsum4(c00, c10, c20, c30), r1 = hsum4(c01, c11, c21, c31)
        while j < k {
            let x0 = a0[j], x1 = a1[j]
            r0 += SIMD4(w0[j], w1[j], w2[j], w3[j]) * x0
            r1 += SIMD4(w0[j], w1[j], w2[j], w3[j]) * x1
            j += 1
        }
        return (r0, r1)
    }
}
