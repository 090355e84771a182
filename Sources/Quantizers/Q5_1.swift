import GGMLCore

/// `block_q5_1`: fp16 scale d and fp16 minimum m, a 32-bit little-endian word qh of fifth bits
/// (bit j for element j), then 16 bytes of low nibbles (element j low, j + 16 high); x ≈ d·q + m
/// with q in 0...31.
public enum Q5_1: BlockQuantizer {
    public static let type = GGMLType.q5_1
    public static let qk = 32
    static let blockBytes = 24

    /// ggml `quantize_row_q5_1_ref`: the definition the fast path must equal.
    public static func quantizeRowReference(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        for i in 0..<(src.count / qk) { quantizeBlockReference(src.baseAddress! + i * qk, dst.baseAddress! + i * blockBytes) }
    }

    /// One block of `quantize_row_q5_1_ref`, statement by statement. Unlike the other three, C has
    /// no MIN clamp here: `(uint8_t)(x0 + 0.5f)` is at most 31.
    static func quantizeBlockReference(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var min = Float.greatestFiniteMagnitude
        var max = -Float.greatestFiniteMagnitude
        for j in 0..<qk {
            let v = x[j]
            if v < min { min = v }
            if v > max { max = v }
        }
        let d = (max - min) / Float((1 << 5) - 1)
        let id: Float = d != 0 ? 1 / d : 0
        LegacyQuant.storeFP16(d, y)
        LegacyQuant.storeFP16(min, y, 2)
        var qh: UInt32 = 0
        for j in 0..<qk / 2 {
            let x0 = (x[0 + j] - min) * id
            let x1 = (x[qk / 2 + j] - min) * id
            // (uint8_t) of a float compiles to cvttss2si and the low byte, as (int8_t) does.
            let xi0 = UInt8(bitPattern: int8LikeC(x0 + 0.5))
            let xi1 = UInt8(bitPattern: int8LikeC(x1 + 0.5))
            y.storeBytes(of: (xi0 & 0x0F) | ((xi1 & 0x0F) << 4), toByteOffset: 8 + j, as: UInt8.self)
            qh |= ((UInt32(xi0) & 0x10) >> 4) << (j + 0)
            qh |= ((UInt32(xi1) & 0x10) >> 4) << (j + qk / 2)
        }
        y.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        for i in 0..<(src.count / qk) { quantizeBlock(src.baseAddress! + i * qk, dst.baseAddress! + i * blockBytes) }
    }

    // Out of line so that the row loop stays small: the Swift optimizer stops inlining the SIMD
    // helpers into a function once it is large (see LegacyQuantHelpers.swift).
    @inline(never)
    static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let e = LegacyQuant.extremes32(x)
        let (min, max) = LegacyQuant.minMax(e, x, qk)
        let d = (max - min) / 31
        let id: Float = d != 0 ? 1 / d : 0
        // Then every (x − min)·id + 0.5 lies in [0, 32), where (uint8_t) is floor.
        guard e.finite && d.isFinite && id.isFinite else { return quantizeBlockReference(x, y) }
        LegacyQuant.storeFP16(d, y)
        LegacyQuant.storeFP16(min, y, 2)
        let p = UnsafeRawPointer(x)
        var qh = SIMD4<Int32>()
        let q0 = quads(p, 0, min, id, &qh), q1 = quads(p, 1, min, id, &qh)
        let q2 = quads(p, 2, min, id, &qh), q3 = quads(p, 3, min, id, &qh)
        LegacyQuant.storeLowBytes(q0, q1, q2, q3, y, 8)
        y.storeBytes(of: UInt32(bitPattern: qh[0] | qh[1] | qh[2] | qh[3]).littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    /// Bytes 4k...4k+3 of qs: elements 4k...4k+3 in the low nibbles, 16+4k... in the high ones;
    /// their fifth bits go to lanes of `qh`, ORed together at the end.
    @inline(__always)
    static func quads(_ p: UnsafeRawPointer, _ k: Int, _ min: Float, _ id: Float, _ qh: inout SIMD4<Int32>) -> SIMD4<Int32> {
        let q0 = LegacyQuant.floorNonNegative((LegacyQuant.loadFloat4(p, 16 * k) - min) * id + 0.5)
        let q1 = LegacyQuant.floorNonNegative((LegacyQuant.loadFloat4(p, 64 + 16 * k) - min) * id + 0.5)
        qh |= LegacyQuant.fifthBits(q0, q1, k)
        return (q0 & 0x0F) | ((q1 & 0x0F) &<< 4)
    }

    /// ggml `quantize_row_q5_1_impl`, which llama-quantize runs for q5_1 with an imatrix: each
    /// block's scale and min from a weighted fit (make_qkx3_quants, 37 trial scales) instead of
    /// the block's min and max.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRow(src, into: dst) }
        LegacyQuant.quantizeWeightedRow(src, qw, dst, blockBytes: blockBytes) { xb, weight, y, lbuf, scratch in
            let L = lbuf.bindMemory(to: UInt8.self, capacity: qk)
            var min: Float = 0
            let d = KQuant.makeQKX3Quants(n: qk, nmax: 31, x: xb, weights: weight, L: L, theMin: &min, scratch: scratch)
            LegacyQuant.storeFP16(d, y)
            LegacyQuant.storeFP16(-min, y, 2)
            y.storeBytes(of: LegacyQuant.fifthBitsWord(L).littleEndian, toByteOffset: 4, as: UInt32.self)
            LegacyQuant.packNibbles(L, y, 8)
        }
    }

    public static var usesImportance: Bool { true }

    /// ggml `dequantize_row_q5_1`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        guard nb > 0, let y = dst.baseAddress else { return }
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let d = LegacyQuant.loadFP16(blk)
            let m = LegacyQuant.loadFP16(blk, 2)
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let out = y + i * qk
            for j in 0..<16 {
                let q = UInt32(blk.load(fromByteOffset: 8 + j, as: UInt8.self))
                let xh0 = ((qh >> j) << 4) & 0x10
                let xh1 = (qh >> (j + 12)) & 0x10
                out[j] = Float((q & 0x0F) | xh0) * d + m
                out[j + 16] = Float((q >> 4) | xh1) * d + m
            }
        }
    }
}
