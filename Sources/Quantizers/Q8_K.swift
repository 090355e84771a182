import GGMLCore

/// `block_q8_K`: f32 d, 256 int8 quants, 16 int16 sums of each 16 quants; x ≈ d·q. Only used for
/// activations in dot products, never stored in a GGUF file.
public enum Q8_K: BlockQuantizer {
    public static let type = GGMLType.q8_K
    public static let qk = KQuant.qk
    static let blockBytes = 292

    /// ggml `quantize_row_q8_K_ref`. For an all-zero block ggml leaves `bsums` as they were; we
    /// write zeros, which is what they would sum to.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let nb = src.count / qk
        for i in 0..<nb {
            let x = src.baseAddress! + i * qk
            let y = dst.baseAddress! + i * blockBytes
            let qs = (y + 4).assumingMemoryBound(to: Int8.self)
            var max: Float = 0
            var amax: Float = 0
            for j in 0..<qk {
                let ax = abs(x[j])
                if ax > amax { amax = ax; max = x[j] }
            }
            if amax == 0 {
                y.storeBytes(of: Float(0).bitPattern.littleEndian, as: UInt32.self)
                for j in 0..<(qk + 32) { (y + 4).storeBytes(of: 0, toByteOffset: j, as: UInt8.self) }
                continue
            }
            // ggml's comment: -127 rather than -128 keeps its AVX IQ2_XXS dot product simple.
            let iscale = -127 / max
            for j in 0..<qk {
                qs[j] = Int8(truncatingIfNeeded: Swift.min(127, KQuant.nearestInt(iscale * x[j])))
            }
            for j in 0..<16 {
                var sum: Int32 = 0
                for ii in 0..<16 { sum &+= Int32(qs[j * 16 + ii]) }
                y.storeBytes(of: Int16(truncatingIfNeeded: sum).littleEndian, toByteOffset: 4 + qk + 2 * j, as: Int16.self)
            }
            y.storeBytes(of: (1 / iscale).bitPattern.littleEndian, as: UInt32.self)
        }
    }

    /// ggml `dequantize_row_q8_K`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        for i in 0..<nb {
            let blk = src.baseAddress! + i * blockBytes
            let d = Float(bitPattern: UInt32(littleEndian: blk.loadUnaligned(as: UInt32.self)))
            let qs = (blk + 4).assumingMemoryBound(to: Int8.self)
            let y = dst.baseAddress! + i * qk
            for j in 0..<qk { y[j] = d * Float(qs[j]) }
        }
    }
}
