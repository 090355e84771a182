import GGMLCore

/// `block_q5_0`: fp16 scale d, a 32-bit little-endian word qh of fifth bits (bit j for element j),
/// then 16 bytes of low nibbles (element j low, j + 16 high); x ≈ d·(q − 16).
/// d = max / −16 for the element of largest magnitude, so that element maps to q = 0 exactly.
public enum Q5_0: BlockQuantizer {
    public static let type = GGMLType.q5_0
    public static let qk = 32
    static let blockBytes = 22

    /// ggml `quantize_row_q5_0_ref`: the definition the fast path must equal.
    public static func quantizeRowReference(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        for i in 0..<(src.count / qk) { quantizeBlockReference(src.baseAddress! + i * qk, dst.baseAddress! + i * blockBytes) }
    }

    /// One block of `quantize_row_q5_0_ref`, statement by statement.
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
        let d = max / -16
        let id: Float = d != 0 ? 1 / d : 0
        LegacyQuant.storeFP16(d, y)
        var qh: UInt32 = 0
        for j in 0..<qk / 2 {
            let x0 = x[0 + j] * id
            let x1 = x[qk / 2 + j] * id
            let xi0 = UInt8(truncatingIfNeeded: Swift.min(31, LegacyQuant.int8AsInt(x0 + 16.5)))
            let xi1 = UInt8(truncatingIfNeeded: Swift.min(31, LegacyQuant.int8AsInt(x1 + 16.5)))
            y.storeBytes(of: (xi0 & 0x0F) | ((xi1 & 0x0F) << 4), toByteOffset: 6 + j, as: UInt8.self)
            qh |= ((UInt32(xi0) & 0x10) >> 4) << (j + 0)
            qh |= ((UInt32(xi1) & 0x10) >> 4) << (j + qk / 2)
        }
        y.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
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
        let d = max / -16
        let id: Float = d != 0 ? 1 / d : 0
        // Then every x·id + 16.5 lies in [0, 33), where (int8_t) is floor.
        guard e.finite && id.isFinite else { return quantizeBlockReference(x, y) }
        LegacyQuant.storeFP16(d, y)
        let p = UnsafeRawPointer(x)
        var qh = SIMD4<Int32>()
        let q0 = quads(p, 0, id, &qh), q1 = quads(p, 1, id, &qh), q2 = quads(p, 2, id, &qh), q3 = quads(p, 3, id, &qh)
        LegacyQuant.storeLowBytes(q0, q1, q2, q3, y, 6)
        y.storeBytes(of: UInt32(bitPattern: qh[0] | qh[1] | qh[2] | qh[3]).littleEndian, toByteOffset: 2, as: UInt32.self)
    }

    /// Bytes 4k...4k+3 of qs: elements 4k...4k+3 in the low nibbles, 16+4k... in the high ones;
    /// their fifth bits go to lanes of `qh`, ORed together at the end. `q - (q >> 5)` is C's
    /// MIN(31, q) for q in 0...32.
    @inline(__always)
    static func quads(_ p: UnsafeRawPointer, _ k: Int, _ id: Float, _ qh: inout SIMD4<Int32>) -> SIMD4<Int32> {
        var q0 = LegacyQuant.floorNonNegative(LegacyQuant.loadFloat4(p, 16 * k) * id + 16.5)
        var q1 = LegacyQuant.floorNonNegative(LegacyQuant.loadFloat4(p, 64 + 16 * k) * id + 16.5)
        q0 &-= q0 &>> 5
        q1 &-= q1 &>> 5
        qh |= LegacyQuant.fifthBits(q0, q1, k)
        return (q0 & 0x0F) | ((q1 & 0x0F) &<< 4)
    }

    /// ggml `quantize_row_q5_0_impl`, which llama-quantize runs for q5_0 with an imatrix: each
    /// block's scale from a weighted least-squares search (make_qx_quants, 19 trial scales)
    /// instead of max / −16.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRow(src, into: dst) }
        LegacyQuant.quantizeWeightedRow(src, qw, dst, blockBytes: blockBytes) { xb, weight, y, lbuf, _ in
            let d = KQuant.makeQXQuants(n: qk, nmax: 16, x: xb, w: weight, L: lbuf.bindMemory(to: Int8.self, capacity: qk))
            LegacyQuant.storeFP16(d, y)
            let L = lbuf.assumingMemoryBound(to: UInt8.self)
            LegacyQuant.packNibbles(L, y, 6)
            y.storeBytes(of: LegacyQuant.fifthBitsWord(L).littleEndian, toByteOffset: 2, as: UInt32.self)
        }
    }

    public static var usesImportance: Bool { true }

    /// ggml `dequantize_row_q5_0`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        guard nb > 0, let y = dst.baseAddress else { return }
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let d = LegacyQuant.loadFP16(blk)
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            let out = y + i * qk
            for j in 0..<16 {
                let q = UInt32(blk.load(fromByteOffset: 6 + j, as: UInt8.self))
                let xh0 = ((qh >> j) << 4) & 0x10
                let xh1 = (qh >> (j + 12)) & 0x10
                out[j] = Float(Int32((q & 0x0F) | xh0) - 16) * d
                out[j + 16] = Float(Int32((q >> 4) | xh1) - 16) * d
            }
        }
    }
}
