import GGMLCore

/// `block_q3_K`: 32 bytes of high bits, 64 bytes of low 2 bits, 12 bytes of 6-bit signed scales
/// for 16 sub-blocks of 16, fp16 d; x ≈ d·(sc − 32)·(q − 4).
public enum Q3_K: BlockQuantizer {
    public static let type = GGMLType.q3_K
    public static let qk = KQuant.qk
    static let blockBytes = 110

    /// ggml `quantize_row_q3_K_ref`, which llama-quantize runs for q3_K when it has no imatrix.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let nb = src.count / qk
        KQuant.withScratch(simd: 0, floats: 16 + KQuant.q3ScratchCount(n: 16), bytes: qk) { _, fbuf, lbuf in
            let scales = fbuf
            let scratch = scales + 16
            let L = lbuf.bindMemory(to: Int8.self, capacity: qk)
            for i in 0..<nb {
                let x = src.baseAddress! + i * qk
                let y = dst.baseAddress! + i * blockBytes
                let sc = y.assumingMemoryBound(to: UInt8.self) + 96

                var maxScale: Float = 0
                var amax: Float = 0
                for j in 0..<16 {
                    let s = KQuant.makeQ3Quants(n: 16, nmax: 4, x: x + 16 * j, L: L + 16 * j, scratch: scratch)
                    scales[j] = s
                    let scale = abs(s)
                    if scale > amax { amax = scale; maxScale = s }
                }

                for j in 0..<12 { sc[j] = 0 }
                if maxScale != 0 {
                    let iscale = -32 / maxScale
                    for j in 0..<16 {
                        // ggml narrows nearest_int to int8_t before clamping.
                        var l = Int32(Int8(truncatingIfNeeded: KQuant.nearestInt(iscale * scales[j])))
                        l = Int32(Int8(truncatingIfNeeded: Swift.max(-32, Swift.min(31, l)) + 32))
                        if j < 8 {
                            sc[j] = UInt8(truncatingIfNeeded: l & 0xF)
                        } else {
                            sc[j - 8] |= UInt8(truncatingIfNeeded: (l & 0xF) << 4)
                        }
                        l >>= 4
                        sc[j % 4 + 8] |= UInt8(truncatingIfNeeded: l << (2 * (j / 4)))
                    }
                    KQuant.storeFP16(1 / iscale, y, 108)
                } else {
                    KQuant.storeFP16(0, y, 108)
                }

                requantizeAndPack(x, y, L)
            }
        }
    }

    /// ggml `quantize_row_q3_K_impl`, which llama-quantize runs for q3_K with an imatrix: the
    /// sub-block scales come from weighted make_qx_quants, and the super-block scale from
    /// make_qx_quants over those scales, weighted by each sub-block's Σ weight.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRow(src, into: dst) }
        let nb = src.count / qk
        KQuant.withScratch(simd: 0, floats: 16 + 16 + 16, bytes: qk + 16) { _, fbuf, lbuf in
            let scales = fbuf
            let weight = scales + 16
            let sw = weight + 16
            let L = lbuf.bindMemory(to: Int8.self, capacity: qk + 16)
            let Ls = L + qk
            for i in 0..<nb {
                let x = src.baseAddress! + i * qk
                let y = dst.baseAddress! + i * blockBytes
                let sc = y.assumingMemoryBound(to: UInt8.self) + 96

                let sigma2 = 2 * KQuant.sumOfSquares(x, count: qk) / Float(qk)
                for j in 0..<16 {
                    KQuant.importanceWeights(x + 16 * j, qw + qk * i + 16 * j, sigma2: sigma2, count: 16, into: weight)
                    sw[j] = KQuant.sum(weight, count: 16)
                    scales[j] = KQuant.makeQXQuants(n: 16, nmax: 4, x: x + 16 * j, w: weight, L: L + 16 * j)
                }

                for j in 0..<12 { sc[j] = 0 }
                let dBlock = KQuant.makeQXQuants(n: 16, nmax: 32, x: scales, w: sw, L: Ls)
                for j in 0..<16 {
                    var l = Int32(Ls[j])
                    if j < 8 {
                        sc[j] = UInt8(truncatingIfNeeded: l & 0xF)
                    } else {
                        sc[j - 8] |= UInt8(truncatingIfNeeded: (l & 0xF) << 4)
                    }
                    l >>= 4
                    sc[j % 4 + 8] |= UInt8(truncatingIfNeeded: l << (2 * (j / 4)))
                }
                KQuant.storeFP16(dBlock, y, 108)
                requantizeAndPack(x, y, L)
            }
        }
    }

    public static var usesImportance: Bool { true }

    /// The end of both quantizers: each sub-block's levels again under the fp16-rounded scales now
    /// in the block (a sub-block whose scale rounds to 0 keeps its levels from the search), then
    /// the high bits to hmask and the low two bits four to a byte.
    @inline(__always)
    static func requantizeAndPack(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>) {
        let sc = y.assumingMemoryBound(to: UInt8.self) + 96
        let dAll = KQuant.loadFP16(y, 108)
        for j in 0..<16 {
            let d = dAll * Float(Self.scale(j, sc))
            if d == 0 { continue }
            KQuant.requantize(x + 16 * j, count: 16, symmetric: true, dm: 0, d: d, lo: -4, hi: 3, bias: 4, into: L + 16 * j)
        }
        pack(UnsafeRawPointer(L).assumingMemoryBound(to: UInt8.self), y)
    }

    /// hmask and qs of a block from its levels (0...7, quant + 4), scales left as they are: also
    /// what calibrated rounding writes after choosing the levels itself.
    @inline(__always)
    static func pack(_ u: UnsafePointer<UInt8>, _ y: UnsafeMutableRawPointer) {
        let hmask = y.assumingMemoryBound(to: UInt8.self)
        let qs = hmask + 32
        // The high bit of quant j goes to bit j/32 of hmask[j % 32]. Every L is in 0...7
        // here, so ggml's `L > 3` is bit 2 and its `L -= 4` leaves the low two bits.
        for m in 0..<32 {
            var h: UInt8 = 0
            for b in 0..<8 { h |= ((u[32 * b + m] >> 2) & 1) << b }
            hmask[m] = h
        }
        var j = 0
        while j < qk {
            for l in 0..<32 {
                qs[j / 4 + l] = (u[j + l] & 3) | ((u[j + l + 32] & 3) << 2)
                    | ((u[j + l + 64] & 3) << 4) | ((u[j + l + 96] & 3) << 6)
            }
            j += 128
        }
    }

    /// The signed 6-bit scale of sub-block j, unpacked as ggml's quantizer does (its dequantizer's
    /// 32-bit mask shuffle gives the same values).
    @inline(__always)
    static func scale(_ j: Int, _ sc: UnsafePointer<UInt8>) -> Int32 {
        let low = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4
        return Int32(low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32
    }

    /// ggml `dequantize_row_q3_K`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let dAll = KQuant.loadFP16(blk, 108)
            let hm = blk.assumingMemoryBound(to: UInt8.self)
            var q = hm + 32
            let sc = hm + 96
            var y = dst.baseAddress! + i * qk
            var m: UInt8 = 1
            var iscale = 0
            for _ in 0..<2 {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    var dl = dAll * Float(scale(iscale, sc))
                    iscale += 1
                    for l in 0..<16 {
                        y[l] = dl * Float(Int32((q[l] >> shift) & 3) - (hm[l] & m != 0 ? 0 : 4))
                    }
                    dl = dAll * Float(scale(iscale, sc))
                    iscale += 1
                    for l in 0..<16 {
                        y[16 + l] = dl * Float(Int32((q[l + 16] >> shift) & 3) - (hm[l + 16] & m != 0 ? 0 : 4))
                    }
                    y += 32
                    shift += 2
                    m <<= 1
                }
                q += 32
            }
        }
    }
}
