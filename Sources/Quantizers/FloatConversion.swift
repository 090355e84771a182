/// Element conversions between f32, f16 and bf16 as ggml and gguf-py perform them.
public enum FloatConversion {
    /// f32 → f16, round to nearest even (numpy `astype(float16)`, F16C `_cvtss_sh(x, 0)`).
    @inline(__always)
    public static func f32ToF16(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    /// ggml `ggml_compute_fp32_to_fp16`, the software conversion ggml-base is built with (no F16C):
    /// round to nearest even like `Float16(x)`, but every NaN becomes sign | 0x7E00, so scales
    /// computed from inf/NaN rows reach the file with ggml's bits.
    @inline(__always)
    public static func ggmlFP32ToFP16(_ f: Float) -> UInt16 {
        let scaleToInf = Float(bitPattern: 0x7780_0000)  // 0x1.0p+112f
        let scaleToZero = Float(bitPattern: 0x0880_0000) // 0x1.0p-110f
        var base = (abs(f) * scaleToInf) * scaleToZero
        let w = f.bitPattern
        let shl1W = w &+ w
        let sign = w & 0x8000_0000
        var bias = shl1W & 0xFF00_0000
        if bias < 0x7100_0000 { bias = 0x7100_0000 }
        base = Float(bitPattern: (bias >> 1) &+ 0x0780_0000) + base
        let bits = base.bitPattern
        let expBits = (bits >> 13) & 0x0000_7C00
        let mantissaBits = bits & 0x0000_0FFF
        let nonsign = expBits &+ mantissaBits
        return UInt16(truncatingIfNeeded: (sign >> 16) | (shl1W > 0xFF00_0000 ? 0x7E00 : nonsign))
    }

    @inline(__always)
    public static func f16ToF32(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }

    /// f32 → bf16, round to nearest even; a NaN keeps its top bits with the quiet bit forced on
    /// (gguf-py `__compute_fp32_to_bf16`, ggml `ggml_compute_fp32_to_bf16`).
    @inline(__always)
    public static func f32ToBF16(_ x: Float) -> UInt16 {
        var u = x.bitPattern
        if u & 0x7fff_ffff > 0x7f80_0000 {
            return UInt16(truncatingIfNeeded: (u | (64 << 16)) >> 16)
        }
        u = u &+ (0x7fff &+ ((u >> 16) & 1))
        return UInt16(truncatingIfNeeded: u >> 16)
    }

    @inline(__always)
    public static func bf16ToF32(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
}

/// Element type of raw source data handed to the quantizers.
public enum SourceElement: Sendable {
    case f32, f16, bf16

    public var size: Int { self == .f32 ? 4 : 2 }

    /// Widens `count` elements from unaligned little-endian storage into f32.
    public func load(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .f32:
            dst.update(from: src.assumingMemoryBound(to: Float.self), count: count)
        case .f16:
            let s = src.assumingMemoryBound(to: Float16.self)
            for i in 0..<count { dst[i] = Float(s[i]) }
        case .bf16:
            let s = src.assumingMemoryBound(to: UInt16.self)
            var i = 0
            while i + 8 <= count {
                let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD8<UInt16>.self)
                let w = SIMD8<UInt32>(truncatingIfNeeded: v) &<< 16
                UnsafeMutableRawPointer(dst + i).storeBytes(of: unsafeBitCast(w, to: SIMD8<Float>.self), as: SIMD8<Float>.self)
                i += 8
            }
            while i < count { dst[i] = Float(bitPattern: UInt32(s[i]) << 16); i += 1 }
        }
    }
}
