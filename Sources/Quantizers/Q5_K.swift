import GGMLCore

/// `block_q5_K`: fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32,
/// 32 bytes of high bits, 128 bytes of low 4 bits; x ≈ d·sc·q − dmin·m with q in 0...31.
public enum Q5_K: BlockQuantizer {
    public static let type = GGMLType.q5_K
    public static let qk = KQuant.qk
    static let blockBytes = 176

    /// ggml `quantize_row_q5_K_ref`, which llama-quantize runs for q5_K when it has no imatrix.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        KQuant.quantizeRowQ4Q5K(src, into: dst, nmax: 31, rmin: -0.5, nstep: 15, blockBytes: blockBytes)
    }

    /// ggml `quantize_row_q5_K_impl`, which llama-quantize runs for q5_K with an imatrix.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRow(src, into: dst) }
        KQuant.quantizeRowQ4Q5K(src, quantWeights: qw, into: dst, nmax: 31, blockBytes: blockBytes)
    }

    public static var usesImportance: Bool { true }

    /// ggml `dequantize_row_q5_K`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let d = KQuant.loadFP16(blk, 0)
            let min = KQuant.loadFP16(blk, 2)
            let scales = (blk + 4).assumingMemoryBound(to: UInt8.self)
            let qh = (blk + 16).assumingMemoryBound(to: UInt8.self)
            var ql = (blk + 48).assumingMemoryBound(to: UInt8.self)
            var y = dst.baseAddress! + i * qk
            var u1: UInt8 = 1
            var u2: UInt8 = 2
            for j in 0..<4 {
                let (sc1, m1i) = KQuant.getScaleMinK4(2 * j, scales)
                let d1 = d * Float(sc1), m1 = min * Float(m1i)
                let (sc2, m2i) = KQuant.getScaleMinK4(2 * j + 1, scales)
                let d2 = d * Float(sc2), m2 = min * Float(m2i)
                for l in 0..<32 { y[l] = d1 * Float((ql[l] & 0xF) + (qh[l] & u1 != 0 ? 16 : 0)) - m1 }
                for l in 0..<32 { y[32 + l] = d2 * Float((ql[l] >> 4) + (qh[l] & u2 != 0 ? 16 : 0)) - m2 }
                y += 64
                ql += 32
                u1 <<= 2
                u2 <<= 2
            }
        }
    }
}
