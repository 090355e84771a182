import GGMLCore

/// `block_q6_K`: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales for sub-blocks
/// of 16, fp16 d; x ≈ d·sc·(q − 32).
public enum Q6_K: BlockQuantizer {
    public static let type = GGMLType.q6_K
    public static let qk = KQuant.qk
    static let blockBytes = 210

    /// ggml `quantize_row_q6_K_ref`, which llama-quantize runs for q6_K when it has no imatrix.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        quantizeRow(src, quantWeights: nil, into: dst)
    }

    /// ggml `quantize_row_q6_K_impl`, which llama-quantize runs for q6_K with an imatrix. Unlike
    /// the other k-quants, q6_K weighs make_qx_quants by the importance values themselves (ggml
    /// left the sigma2 weighting commented out).
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        quantizeRow(src, quantWeights: quantWeights(importance, for: src), into: dst)
    }

    public static var usesImportance: Bool { true }

    /// Both paths: they differ only in make_qx_quants' weights, `qw` or (NULL) x².
    @inline(__always)
    static func quantizeRow(_ src: UnsafeBufferPointer<Float>, quantWeights qw: UnsafePointer<Float>?,
                            into dst: UnsafeMutableRawBufferPointer) {
        let nb = src.count / qk
        KQuant.withScratch(simd: 0, floats: 16 + 16, bytes: qk) { _, fbuf, lbuf in
            let scales = fbuf
            let weights = scales + 16
            let L = lbuf.bindMemory(to: Int8.self, capacity: qk)
            for i in 0..<nb {
                let x = src.baseAddress! + i * qk
                let y = dst.baseAddress! + i * blockBytes
                let yb = y.assumingMemoryBound(to: UInt8.self)

                var maxScale: Float = 0
                var maxAbsScale: Float = 0
                for ib in 0..<16 {
                    let xb = x + 16 * ib
                    let w: UnsafePointer<Float>
                    if let qw {
                        w = qw + qk * i + 16 * ib
                    } else {
                        // make_qx_quants with rmse_type 1 and no quant weights weighs by x².
                        for l in 0..<16 { weights[l] = xb[l] * xb[l] }
                        w = UnsafePointer(weights)
                    }
                    let scale = KQuant.makeQXQuants(n: 16, nmax: 32, x: xb, w: w, L: L + 16 * ib)
                    scales[ib] = scale
                    let absScale = abs(scale)
                    if absScale > maxAbsScale {
                        maxAbsScale = absScale
                        maxScale = scale
                    }
                }

                if maxAbsScale < KQuant.groupMaxEps {
                    for b in 0..<blockBytes { yb[b] = 0 }
                    KQuant.storeFP16(0, y, 208)
                    continue
                }

                let iscale = -128 / maxScale
                KQuant.storeFP16(1 / iscale, y, 208)
                let sc = (yb + 192).withMemoryRebound(to: Int8.self, capacity: 16) { $0 }
                for ib in 0..<16 {
                    sc[ib] = Int8(truncatingIfNeeded: Swift.min(127, KQuant.nearestInt(iscale * scales[ib])))
                }

                let dAll = KQuant.loadFP16(y, 208)
                for j in 0..<16 {
                    let d = dAll * Float(sc[j])
                    if d == 0 { continue }
                    KQuant.requantize(x + 16 * j, count: 16, symmetric: true, dm: 0, d: d, lo: -32, hi: 31, bias: 32, into: L + 16 * j)
                }
                pack(UnsafeRawPointer(L).assumingMemoryBound(to: UInt8.self), yb)
            }
        }
    }

    /// ql and qh of a block from its levels (0...63, quant + 32), scales left as they are: also
    /// what calibrated rounding writes after choosing the levels itself.
    @inline(__always)
    static func pack(_ L: UnsafePointer<UInt8>, _ yb: UnsafeMutablePointer<UInt8>) {
        var ql = yb
        var qh = yb + 128
        var j = 0
        while j < qk {
            for l in 0..<32 {
                let l0 = L[j + l], l1 = L[j + l + 32]
                let l2 = L[j + l + 64], l3 = L[j + l + 96]
                ql[l] = (l0 & 0xF) | ((l2 & 0xF) << 4)
                ql[l + 32] = (l1 & 0xF) | ((l3 & 0xF) << 4)
                qh[l] = (l0 >> 4) | ((l1 >> 4) << 2) | ((l2 >> 4) << 4) | ((l3 >> 4) << 6)
            }
            ql += 64
            qh += 32
            j += 128
        }
    }

    /// ggml `dequantize_row_q6_K`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let d = KQuant.loadFP16(blk, 208)
            var ql = blk.assumingMemoryBound(to: UInt8.self)
            var qh = ql + 128
            var sc = (blk + 192).assumingMemoryBound(to: Int8.self)
            var y = dst.baseAddress! + i * qk
            for _ in 0..<2 {
                for l in 0..<32 {
                    let iss = l / 16
                    let q1 = Int32((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32
                    let q2 = Int32((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32
                    let q3 = Int32((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                    let q4 = Int32((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                    y[l] = d * Float(sc[iss]) * Float(q1)
                    y[l + 32] = d * Float(sc[iss + 2]) * Float(q2)
                    y[l + 64] = d * Float(sc[iss + 4]) * Float(q3)
                    y[l + 96] = d * Float(sc[iss + 6]) * Float(q4)
                }
                y += 128
                ql += 64
                qh += 32
                sc += 8
            }
        }
    }
}
