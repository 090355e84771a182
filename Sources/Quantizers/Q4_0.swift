import GGMLCore

/// `block_q4_0`: fp16 scale d, then 16 bytes of nibbles (element j low, j + 16 high); x ≈ d·(q − 8).
/// d = max / −8 for the element of largest magnitude, so that element maps to q = 0 exactly.
public enum Q4_0: BlockQuantizer {
    public static let type = GGMLType.q4_0
    public static let qk = 32
    static let blockBytes = 18

    /// ggml `quantize_row_q4_0_ref`: the definition the fast path must equal.
    public static func quantizeRowReference(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        for i in 0..<(src.count / qk) { quantizeBlockReference(src.baseAddress! + i * qk, dst.baseAddress! + i * blockBytes) }
    }

    /// One block of `quantize_row_q4_0_ref`, statement by statement.
    static func quantizeBlockReference(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        var max: Float = 0
        for j in 0..<qk {
            let v = x[j]
            if amax < abs(v) {
                amax = abs(v)
                max = v
            }
        }
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        LegacyQuant.storeFP16(d, y)
        for j in 0..<qk / 2 {
            let x0 = x[0 + j] * id
            let x1 = x[qk / 2 + j] * id
            let xi0 = UInt8(truncatingIfNeeded: Swift.min(15, LegacyQuant.int8AsInt(x0 + 8.5)))
            let xi1 = UInt8(truncatingIfNeeded: Swift.min(15, LegacyQuant.int8AsInt(x1 + 8.5)))
            y.storeBytes(of: xi0 | (xi1 << 4), toByteOffset: 2 + j, as: UInt8.self)
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
        let max = LegacyQuant.firstAbsMax(e, x, qk)
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        // Then every x·id + 8.5 lies in [0, 17), where (int8_t) is floor.
        guard e.finite && id.isFinite else { return quantizeBlockReference(x, y) }
        LegacyQuant.storeFP16(d, y)
        let p = UnsafeRawPointer(x)
        LegacyQuant.storeLowBytes(quads(p, 0, id), quads(p, 1, id), quads(p, 2, id), quads(p, 3, id), y, 2)
    }

    /// Bytes 4k...4k+3 of qs: elements 4k...4k+3 in the low nibbles, 16+4k... in the high ones.
    /// `q - (q >> 4)` is C's MIN(15, q) for q in 0...16.
    @inline(__always)
    static func quads(_ p: UnsafeRawPointer, _ k: Int, _ id: Float) -> SIMD4<Int32> {
        let q0 = LegacyQuant.floorNonNegative(LegacyQuant.loadFloat4(p, 16 * k) * id + 8.5)
        let q1 = LegacyQuant.floorNonNegative(LegacyQuant.loadFloat4(p, 64 + 16 * k) * id + 8.5)
        return (q0 &- (q0 &>> 4)) | ((q1 &- (q1 &>> 4)) &<< 4)
    }

    /// ggml `quantize_row_q4_0_impl`, which llama-quantize runs for q4_0 with an imatrix: each
    /// block's scale from a weighted least-squares search (make_qx_quants, 19 trial scales)
    /// instead of max / −8.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRow(src, into: dst) }
        LegacyQuant.quantizeWeightedRow(src, qw, dst, blockBytes: blockBytes) { xb, weight, y, lbuf, _ in
            let L = lbuf.bindMemory(to: Int8.self, capacity: qk)
            let d = KQuant.makeQXQuants(n: qk, nmax: 8, x: xb, w: weight, L: L)
            LegacyQuant.storeFP16(d, y)
            LegacyQuant.packNibbles(lbuf.assumingMemoryBound(to: UInt8.self), y, 2)
        }
    }

    public static var usesImportance: Bool { true }

    /// ggml `dequantize_row_q4_0`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        guard nb > 0, let y = dst.baseAddress else { return }
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let d = LegacyQuant.loadFP16(blk)
            let out = y + i * qk
            for j in 0..<16 {
                let q = blk.load(fromByteOffset: 2 + j, as: UInt8.self)
                out[j] = Float(Int32(q & 0x0F) - 8) * d
                out[j + 16] = Float(Int32(q >> 4) - 8) * d
            }
        }
    }
}
