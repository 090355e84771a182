import GGMLCore

/// `block_q2_K`: 16 bytes of 4-bit scale | 4-bit min for 16 sub-blocks of 16, 64 bytes of 2-bit
/// quants, fp16 d, fp16 dmin; x ≈ d·sc·q − dmin·m.
public enum Q2_K: BlockQuantizer {
    public static let type = GGMLType.q2_K
    public static let qk = KQuant.qk
    static let blockBytes = 84

    /// ggml `quantize_row_q2_K_ref`, which llama-quantize runs for q2_K when it has no imatrix.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let nb = src.count / qk
        let nstep = 15
        let q4scale: Float = 15
        KQuant.withScratch(simd: KQuant.qkx2ScratchCount(n: 16), floats: 16 + 16 + 16, bytes: qk) { scratch, fbuf, lbuf in
            let weights = fbuf
            let mins = weights + 16
            let scales = mins + 16
            let L = lbuf.bindMemory(to: UInt8.self, capacity: qk)
            for i in 0..<nb {
                let x = src.baseAddress! + i * qk
                let y = dst.baseAddress! + i * blockBytes
                let sc = y.assumingMemoryBound(to: UInt8.self)
                var maxScale: Float = 0
                var maxMin: Float = 0
                for j in 0..<16 {
                    let xj = x + 16 * j
                    for l in 0..<16 { weights[l] = abs(xj[l]) }
                    var m: Float = 0
                    let s = KQuant.makeQKX2Quants(
                        n: 16, nmax: 3, x: xj, weights: weights, L: L + 16 * j, theMin: &m,
                        rmin: -0.5, rdelta: KQuant.pointOne, nstep: nstep, useMad: true, scratch: scratch)
                    scales[j] = s
                    mins[j] = m
                    if s > maxScale { maxScale = s }
                    if m > maxMin { maxMin = m }
                }

                if maxScale > 0 {
                    let iscale = q4scale / maxScale
                    for j in 0..<16 { sc[j] = UInt8(truncatingIfNeeded: KQuant.nearestInt(iscale * scales[j])) }
                    KQuant.storeFP16(maxScale / q4scale, y, 80)
                } else {
                    for j in 0..<16 { sc[j] = 0 }
                    KQuant.storeFP16(0, y, 80)
                }
                if maxMin > 0 {
                    let iscale = q4scale / maxMin
                    for j in 0..<16 {
                        let l = KQuant.nearestInt(iscale * mins[j])
                        sc[j] = UInt8(truncatingIfNeeded: Int32(sc[j]) | (l &<< 4))
                    }
                    KQuant.storeFP16(maxMin / q4scale, y, 82)
                } else {
                    KQuant.storeFP16(0, y, 82)
                }
                requantizeAndPack(x, y, L)
            }
        }
    }

    /// ggml `quantize_row_q2_K_impl`, which llama-quantize runs for q2_K with an imatrix.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRow(src, into: dst) }
        let nb = src.count / qk
        KQuant.withScratch(simd: KQuant.qkx2ScratchCount(n: 16), floats: 16 + 16 + 16 + 16, bytes: qk + 16 + 16) { scratch, fbuf, lbuf in
            let weight = fbuf
            let mins = weight + 16
            let scales = mins + 16
            let sw = scales + 16
            let L = lbuf.bindMemory(to: UInt8.self, capacity: qk + 32)
            let Ls = L + qk
            let Lm = Ls + 16
            for i in 0..<nb {
                let x = src.baseAddress! + i * qk
                let y = dst.baseAddress! + i * blockBytes
                let sc = y.assumingMemoryBound(to: UInt8.self)
                // Unlike q3_K...q5_K, no factor 2 here.
                let sigma2 = KQuant.sumOfSquares(x, count: qk) / Float(qk)
                for j in 0..<16 {
                    KQuant.importanceWeights(x + 16 * j, qw + qk * i + 16 * j, sigma2: sigma2, count: 16, into: weight)
                    sw[j] = KQuant.sum(weight, count: 16)
                    var m: Float = 0
                    scales[j] = KQuant.makeQKX3Quants(n: 16, nmax: 3, x: x + 16 * j, weights: weight, L: L + 16 * j,
                                                      theMin: &m, scratch: scratch)
                    mins[j] = m
                }
                let dm = KQuant.makeQPQuants(n: 16, nmax: 15, x: scales, L: Ls, quantWeights: sw)
                let mm = KQuant.makeQPQuants(n: 16, nmax: 15, x: mins, L: Lm, quantWeights: sw)
                KQuant.storeFP16(dm, y, 80)
                KQuant.storeFP16(mm, y, 82)
                for j in 0..<16 { sc[j] = Ls[j] | (Lm[j] << 4) }
                requantizeAndPack(x, y, L)
            }
        }
    }

    public static var usesImportance: Bool { true }

    /// The end of both quantizers: each sub-block's levels again under the fp16-rounded scales
    /// and mins now in the block (a sub-block whose scale rounds to 0 keeps its levels from the
    /// search), then four 2-bit levels to a byte.
    @inline(__always)
    static func requantizeAndPack(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>) {
        let sc = y.assumingMemoryBound(to: UInt8.self)
        let dAll = KQuant.loadFP16(y, 80)
        let dminAll = KQuant.loadFP16(y, 82)
        for j in 0..<16 {
            let d = dAll * Float(sc[j] & 0xF)
            if d == 0 { continue }
            let dm = dminAll * Float(sc[j] >> 4)
            KQuant.requantize(x + 16 * j, count: 16, symmetric: false, dm: dm, d: d, lo: 0, hi: 3, bias: 0, into: L + 16 * j)
        }
        pack(L, y)
    }

    /// The quants of a block from its levels (0...3), scales left as they are: also what
    /// calibrated rounding writes after choosing the levels itself.
    @inline(__always)
    static func pack(_ L: UnsafePointer<UInt8>, _ y: UnsafeMutableRawPointer) {
        let qs = y.assumingMemoryBound(to: UInt8.self) + 16
        var j = 0
        while j < qk {
            for l in 0..<32 {
                qs[j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)
            }
            j += 128
        }
    }

    /// ggml `dequantize_row_q2_K`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let d = KQuant.loadFP16(blk, 80)
            let min = KQuant.loadFP16(blk, 82)
            let scales = blk.assumingMemoryBound(to: UInt8.self)
            var q = scales + 16
            var y = dst.baseAddress! + i * qk
            var iscale = 0
            for _ in 0..<2 {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    var s = scales[iscale]
                    iscale += 1
                    var dl = d * Float(s & 0xF), ml = min * Float(s >> 4)
                    for l in 0..<16 { y[l] = dl * Float((q[l] >> shift) & 3) - ml }
                    s = scales[iscale]
                    iscale += 1
                    dl = d * Float(s & 0xF)
                    ml = min * Float(s >> 4)
                    for l in 0..<16 { y[16 + l] = dl * Float((q[l + 16] >> shift) & 3) - ml }
                    y += 32
                    shift += 2
                }
                q += 32
            }
        }
    }
}
