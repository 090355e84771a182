import GGMLCore

/// `block_q4_1`: fp16 scale d and fp16 minimum m, then 16 bytes of nibbles (element j low, j + 16
/// high); x ≈ d·q + m with q in 0...15.
public enum Q4_1: BlockQuantizer {
    public static let type = GGMLType.q4_1
    public static let qk = 32
    static let blockBytes = 20

    /// ggml `quantize_row_q4_1_ref`: the definition the fast path must equal.
    public static func quantizeRowReference(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        for i in 0..<(src.count / qk) { quantizeBlockReference(src.baseAddress! + i * qk, dst.baseAddress! + i * blockBytes) }
    }

    /// One block of `quantize_row_q4_1_ref`, statement by statement.
    static func quantizeBlockReference(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var min = Float.greatestFiniteMagnitude
        var max = -Float.greatestFiniteMagnitude
        for j in 0..<qk {
            let v = x[j]
            if v < min { min = v }
            if v > max { max = v }
        }
        let d = (max - min) / Float((1 << 4) - 1)
        let id: Float = d != 0 ? 1 / d : 0
        LegacyQuant.storeFP16(d, y)
        LegacyQuant.storeFP16(min, y, 2)
        for j in 0..<qk / 2 {
            let x0 = (x[0 + j] - min) * id
            let x1 = (x[qk / 2 + j] - min) * id
            let xi0 = UInt8(truncatingIfNeeded: Swift.min(15, LegacyQuant.int8AsInt(x0 + 0.5)))
            let xi1 = UInt8(truncatingIfNeeded: Swift.min(15, LegacyQuant.int8AsInt(x1 + 0.5)))
            y.storeBytes(of: xi0 | (xi1 << 4), toByteOffset: 4 + j, as: UInt8.self)
        }
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
        let d = (max - min) / 15
        let id: Float = d != 0 ? 1 / d : 0
        // Then every (x − min)·id + 0.5 lies in [0, 16), where (int8_t) is floor.
        guard e.finite && d.isFinite && id.isFinite else { return quantizeBlockReference(x, y) }
        LegacyQuant.storeFP16(d, y)
        LegacyQuant.storeFP16(min, y, 2)
        let p = UnsafeRawPointer(x)
        LegacyQuant.storeLowBytes(quads(p, 0, min, id), quads(p, 1, min, id), quads(p, 2, min, id), quads(p, 3, min, id), y, 4)
    }

    /// Bytes 4k...4k+3 of qs: elements 4k...4k+3 in the low nibbles, 16+4k... in the high ones.
    /// `q - (q >> 4)` is C's MIN(15, q) for q in 0...16.
    @inline(__always)
    static func quads(_ p: UnsafeRawPointer, _ k: Int, _ min: Float, _ id: Float) -> SIMD4<Int32> {
        let q0 = LegacyQuant.floorNonNegative((LegacyQuant.loadFloat4(p, 16 * k) - min) * id + 0.5)
        let q1 = LegacyQuant.floorNonNegative((LegacyQuant.loadFloat4(p, 64 + 16 * k) - min) * id + 0.5)
        return (q0 &- (q0 &>> 4)) | ((q1 &- (q1 &>> 4)) &<< 4)
    }

    /// ggml `quantize_row_q4_1_impl`, which llama-quantize runs for q4_1 with an imatrix: each
    /// block's scale and min from a weighted fit (make_qkx3_quants, 37 trial scales) instead of
    /// the block's min and max.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRow(src, into: dst) }
        LegacyQuant.quantizeWeightedRow(src, qw, dst, blockBytes: blockBytes) { xb, weight, y, lbuf, scratch in
            let L = lbuf.bindMemory(to: UInt8.self, capacity: qk)
            var min: Float = 0
            let d = KQuant.makeQKX3Quants(n: qk, nmax: 15, x: xb, weights: weight, L: L, theMin: &min, scratch: scratch)
            LegacyQuant.storeFP16(d, y)
            LegacyQuant.storeFP16(-min, y, 2)
            LegacyQuant.packNibbles(L, y, 4)
        }
    }

    public static var usesImportance: Bool { true }

    /// ggml `dequantize_row_q4_1`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        guard nb > 0, let y = dst.baseAddress else { return }
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let d = LegacyQuant.loadFP16(blk)
            let m = LegacyQuant.loadFP16(blk, 2)
            let out = y + i * qk
            for j in 0..<16 {
                let q = blk.load(fromByteOffset: 4 + j, as: UInt8.self)
                out[j] = Float(q & 0x0F) * d + m
                out[j + 16] = Float(q >> 4) * d + m
            }
        }
    }
}
