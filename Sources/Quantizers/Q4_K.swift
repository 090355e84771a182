import GGMLCore

/// `block_q4_K`: fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32, then
/// 128 bytes of 4-bit quants; x ≈ d·sc·q − dmin·m.
public enum Q4_K: BlockQuantizer {
    public static let type = GGMLType.q4_K
    public static let qk = KQuant.qk
    static let blockBytes = 144

    /// ggml `quantize_row_q4_K_ref`, which llama-quantize runs for q4_K when it has no imatrix.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        KQuant.quantizeRowQ4Q5K(src, into: dst, nmax: 15, rmin: -1, nstep: 20, blockBytes: blockBytes)
    }

    /// ggml `quantize_row_q4_K_impl`, which llama-quantize runs for q4_K with an imatrix.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRow(src, into: dst) }
        KQuant.quantizeRowQ4Q5K(src, quantWeights: qw, into: dst, nmax: 15, blockBytes: blockBytes)
    }

    public static var usesImportance: Bool { true }

    /// ggml `dequantize_row_q4_K`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let d = KQuant.loadFP16(blk, 0)
            let min = KQuant.loadFP16(blk, 2)
            let scales = (blk + 4).assumingMemoryBound(to: UInt8.self)
            var q = (blk + 16).assumingMemoryBound(to: UInt8.self)
            var y = dst.baseAddress! + i * qk
            var j = 0
            while j < 4 {
                let (sc1, m1i) = KQuant.getScaleMinK4(2 * j, scales)
                let d1 = d * Float(sc1), m1 = min * Float(m1i)
                let (sc2, m2i) = KQuant.getScaleMinK4(2 * j + 1, scales)
                let d2 = d * Float(sc2), m2 = min * Float(m2i)
                for l in 0..<32 { y[l] = d1 * Float(q[l] & 0xF) - m1 }
                for l in 0..<32 { y[32 + l] = d2 * Float(q[l] >> 4) - m2 }
                y += 64
                q += 32
                j += 1
            }
        }
    }
}

extension KQuant {
    /// q4_K and q5_K quantize alike (ggml's two functions differ only in nmax, the trial range of
    /// make_qkx2_quants and the bit packing), so they share this body.
    @inline(__always)
    static func quantizeRowQ4Q5K(
        _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer,
        nmax: Int32, rmin: Float, nstep: Int, blockBytes: Int
    ) {
        let nb = src.count / qk
        withScratch(simd: qkx2ScratchCount(n: 32), floats: 32 + 8 + 8, bytes: qk) { scratch, fbuf, lbuf in
            let weights = fbuf
            let mins = weights + 32
            let scales = mins + 8
            let L = lbuf.bindMemory(to: UInt8.self, capacity: qk)
            for i in 0..<nb {
                let x = src.baseAddress! + i * qk
                let y = dst.baseAddress! + i * blockBytes
                var maxScale: Float = 0
                var maxMin: Float = 0
                for j in 0..<8 {
                    let xj = x + 32 * j
                    var sumX2: Float = 0
                    for l in 0..<32 { sumX2 += xj[l] * xj[l] }
                    let avX = (sumX2 / 32).squareRoot()
                    for l in 0..<32 { weights[l] = avX + abs(xj[l]) }
                    var m: Float = 0
                    let s = makeQKX2Quants(
                        n: 32, nmax: nmax, x: xj, weights: weights, L: L + 32 * j, theMin: &m,
                        rmin: rmin, rdelta: pointOne, nstep: nstep, useMad: false, scratch: scratch)
                    scales[j] = s
                    mins[j] = m
                    if s > maxScale { maxScale = s }
                    if m > maxMin { maxMin = m }
                }

                let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
                let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
                let sc = (y + 4).assumingMemoryBound(to: UInt8.self)
                for j in 0..<8 {
                    // ggml stores the int in a uint8_t before MIN(63, ·): a negative wraps high.
                    let ls = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * scales[j])))
                    let lm = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * mins[j])))
                    if j < 4 {
                        sc[j] = ls
                        sc[j + 4] = lm
                    } else {
                        sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                        sc[j - 4] |= (ls >> 4) << 6
                        sc[j - 0] |= (lm >> 4) << 6
                    }
                }
                storeFP16(maxScale / 63, y, 0)
                storeFP16(maxMin / 63, y, 2)
                requantizeAndPackQ4Q5K(x, y, L, nmax: nmax)
            }
        }
    }

    /// ggml `quantize_row_q4_K_impl` (nmax 15) and `quantize_row_q5_K_impl` (nmax 31), which
    /// llama-quantize runs with an imatrix: make_qkx3_quants on imatrix weights per sub-block,
    /// then make_qp_quants for the super-block scale and min, weighted by each sub-block's Σ
    /// weight. The two differ only in nmax, q5_K's MIN(63, ·) on the 6-bit scales (q4_K stores
    /// whatever make_qp_quants left, wrapped levels included) and the bit packing.
    @inline(__always)
    static func quantizeRowQ4Q5K(
        _ src: UnsafeBufferPointer<Float>, quantWeights qw: UnsafePointer<Float>, into dst: UnsafeMutableRawBufferPointer,
        nmax: Int32, blockBytes: Int
    ) {
        let nb = src.count / qk
        withScratch(simd: qkx2ScratchCount(n: 32), floats: 32 + 8 + 8 + 8, bytes: qk + 8 + 8) { scratch, fbuf, lbuf in
            let weights = fbuf
            let mins = weights + 32
            let scales = mins + 8
            let sw = scales + 8
            let L = lbuf.bindMemory(to: UInt8.self, capacity: qk + 16)
            let Ls = L + qk
            let Lm = Ls + 8
            for i in 0..<nb {
                let x = src.baseAddress! + i * qk
                let y = dst.baseAddress! + i * blockBytes
                let sigma2 = 2 * sumOfSquares(x, count: qk) / Float(qk)
                for j in 0..<8 {
                    importanceWeights(x + 32 * j, qw + qk * i + 32 * j, sigma2: sigma2, count: 32, into: weights)
                    sw[j] = sum(weights, count: 32)
                    var m: Float = 0
                    scales[j] = makeQKX3Quants(n: 32, nmax: nmax, x: x + 32 * j, weights: weights, L: L + 32 * j,
                                               theMin: &m, scratch: scratch)
                    mins[j] = m
                }

                let dBlock = makeQPQuants(n: 8, nmax: 63, x: scales, L: Ls, quantWeights: sw)
                let mBlock = makeQPQuants(n: 8, nmax: 63, x: mins, L: Lm, quantWeights: sw)
                let sc = (y + 4).assumingMemoryBound(to: UInt8.self)
                for j in 0..<8 {
                    var ls = Ls[j]
                    var lm = Lm[j]
                    if nmax == 31 {
                        ls = Swift.min(63, ls)
                        lm = Swift.min(63, lm)
                    }
                    if j < 4 {
                        sc[j] = ls
                        sc[j + 4] = lm
                    } else {
                        sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                        sc[j - 4] |= (ls >> 4) << 6
                        sc[j - 0] |= (lm >> 4) << 6
                    }
                }
                storeFP16(dBlock, y, 0)
                storeFP16(mBlock, y, 2)
                requantizeAndPackQ4Q5K(x, y, L, nmax: nmax)
            }
        }
    }

    /// The end of q4_K and q5_K with or without an imatrix: each sub-block's levels again under
    /// the fp16-rounded scales and mins now in the block (a sub-block whose scale rounds to 0
    /// keeps its levels from the search), then packed: q4_K two nibbles to a byte, q5_K the low
    /// nibbles likewise and the fifth bits in qh.
    @inline(__always)
    static func requantizeAndPackQ4Q5K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>,
                                       nmax: Int32) {
        let sc = (y + 4).assumingMemoryBound(to: UInt8.self)
        let dAll = loadFP16(y, 0)
        let dminAll = loadFP16(y, 2)

        for j in 0..<8 {
            let (s, m) = getScaleMinK4(j, sc)
            let d = dAll * Float(s)
            if d == 0 { continue }
            let dm = dminAll * Float(m)
            requantize(x + 32 * j, count: 32, symmetric: false, dm: dm, d: d, lo: 0, hi: nmax, bias: 0, into: L + 32 * j)
        }
        packQ4Q5K(L, y, nmax: nmax)
    }

    /// The quants of a q4_K (nmax 15) or q5_K (nmax 31) block from its levels, scales left as
    /// they are: also what calibrated rounding writes after choosing the levels itself.
    @inline(__always)
    static func packQ4Q5K(_ L: UnsafePointer<UInt8>, _ y: UnsafeMutableRawPointer, nmax: Int32) {
        if nmax == 15 {
            var q = (y + 16).assumingMemoryBound(to: UInt8.self)
            var j = 0
            while j < qk {
                for l in 0..<32 { q[l] = L[j + l] | (L[j + l + 32] << 4) }
                q += 32
                j += 64
            }
        } else {
            let qh = (y + 16).assumingMemoryBound(to: UInt8.self)
            var ql = (y + 48).assumingMemoryBound(to: UInt8.self)
            for j in 0..<32 { qh[j] = 0 }
            var m1: UInt8 = 1
            var m2: UInt8 = 2
            var n = 0
            while n < qk {
                for j in 0..<32 {
                    var l1 = L[n + j]
                    if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                    var l2 = L[n + j + 32]
                    if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                    ql[j] = l1 | (l2 << 4)
                }
                m1 <<= 2
                m2 <<= 2
                ql += 32
                n += 64
            }
        }
    }
}
