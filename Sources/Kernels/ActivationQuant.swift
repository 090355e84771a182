import CKernels
import GGMLCore

/// Activation quantizers exactly as ggml-cpu runs them for `vec_dot` on x86-64 with AVX2
/// (llama.cpp built with -march=native on this machine; the `from_float` of each vec_dot type):
///
/// - q8_0, q8_1: `quantize_row_q8_0` / `quantize_row_q8_1` of ggml-cpu/arch/x86/quants.c, the
///   AVX2 code, which is *not* `quantize_row_q8_0_ref`: the inverse scale is `127/amax` (not
///   `1/(amax/127)`) and the rounding is `_mm256_round_ps(_MM_ROUND_NEAREST)`, ties to even (not
///   `roundf`, ties away). The repack path's `ggml_quantize_mat_q8_0_4x8` (q4_0 / iq4_nl weights)
///   computes the same bytes.
/// - q8_K: x86 `quantize_row_q8_K` is `quantize_row_q8_K_ref` (nearest_int: ties to even; the
///   extreme value maps to -127). The repack path's `ggml_quantize_mat_q8_K_4x8` (q4_K / q2_K
///   weights) agrees except when +max and -max tie in one 256-block and -max comes first.
///
/// Block layouts are ggml's: `block_q8_0` {f16 d; i8 qs[32]}, `block_q8_1` {f16 d; f16 s; i8
/// qs[32]}, `block_q8_K` {f32 d; i8 qs[256]; i16 bsums[16]}.
public enum ActivationQuant {
    static let magic: Float = 12_582_912 // 1.5·2²³: adding it rounds to an integer, ties to even

    /// Round to nearest, ties to even, for |v| < 2²² (the magic-number trick; vectorises on SSE2).
    @inline(__always)
    static func rne(_ v: Float) -> Int32 {
        Int32(bitPattern: (v + magic).bitPattern & 0x007F_FFFF) &- 0x0040_0000
    }

    /// `_mm256_cvtps_epi32(_mm256_round_ps(v, NEAREST))` then the saturating packs to int8: NaN and
    /// out-of-range become INT32_MIN, i.e. -128 after saturation.
    @inline(__always)
    static func avxRoundToInt8(_ v: Float) -> Int32 {
        let ok = v > -200 && v < 200 // false for NaN; |x·127/amax| ≤ 127.00002 when finite
        let r = rne(ok ? v : 0)
        return ok ? r : -128
    }

    /// ggml x86 `quantize_row_q8_0` (AVX2). `count` is a multiple of 32.
    public static func quantizeRowQ8_0(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutableRawPointer) {
        let bits = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
        for b in 0..<(count / 32) {
            let xb = x + b * 32
            let mb = bits + b * 32
            var m: UInt32 = 0
            for j in 0..<32 { m = max(m, mb[j] & 0x7FFF_FFFF) }
            let amax = Float(bitPattern: m)
            let d = amax / 127
            let id: Float = amax != 0 ? 127 / amax : 0
            let out = y + b * 34
            out.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
            let o = (out + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<32 { o[j] = Int8(truncatingIfNeeded: avxRoundToInt8(xb[j] * id)) }
        }
    }

    /// ggml x86 `quantize_row_q8_1` (AVX2): as q8_0, plus s = fp16(d · Σq).
    public static func quantizeRowQ8_1(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutableRawPointer) {
        let bits = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
        for b in 0..<(count / 32) {
            let xb = x + b * 32
            let mb = bits + b * 32
            var m: UInt32 = 0
            for j in 0..<32 { m = max(m, mb[j] & 0x7FFF_FFFF) }
            let amax = Float(bitPattern: m)
            let d = amax / 127
            let id: Float = amax != 0 ? 127 / amax : 0
            let out = y + b * 36
            let o = (out + 4).assumingMemoryBound(to: Int8.self)
            var sum: Int32 = 0
            for j in 0..<32 {
                let v = avxRoundToInt8(xb[j] * id)
                sum &+= v
                o[j] = Int8(truncatingIfNeeded: v)
            }
            out.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
            out.storeBytes(of: Float16(d * Float(sum)).bitPattern.littleEndian, toByteOffset: 2, as: UInt16.self)
        }
    }

    /// ggml `quantize_row_q8_K_ref` (what x86 `quantize_row_q8_K` calls). For an all-zero block ggml
    /// leaves `bsums` as they were; we write zeros (they are only ever multiplied by d = 0).
    public static func quantizeRowQ8_K(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutableRawPointer) {
        for b in 0..<(count / 256) {
            let xb = x + b * 256
            let out = y + b * 292
            let qs = (out + 4).assumingMemoryBound(to: Int8.self)
            var amax: Float = 0
            var mx: Float = 0
            for j in 0..<256 {
                let ax = abs(xb[j])
                if ax > amax { amax = ax; mx = xb[j] }
            }
            if amax == 0 {
                out.storeBytes(of: UInt32(0), as: UInt32.self)
                (out + 4).initializeMemory(as: UInt8.self, repeating: 0, count: 256 + 32)
                continue
            }
            let iscale = -127 / mx
            for j in 0..<256 {
                let v = rne(iscale * xb[j])
                qs[j] = Int8(truncatingIfNeeded: min(127, v))
            }
            for j in 0..<16 {
                var s: Int32 = 0
                for i in 0..<16 { s &+= Int32(qs[j * 16 + i]) }
                out.storeBytes(of: Int16(truncatingIfNeeded: s).littleEndian, toByteOffset: 4 + 256 + 2 * j, as: Int16.self)
            }
            out.storeBytes(of: (1 / iscale).bitPattern.littleEndian, as: UInt32.self)
        }
    }

    /// ggml `ggml_cpu_fp32_to_fp16` with F16C: round to nearest even.
    public static func convertRowF16(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutableRawPointer) {
        let o = y.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { o[i] = Float16(x[i]).bitPattern }
    }

    /// ggml `ggml_cpu_fp32_to_bf16` with AVX512-BF16 (`_mm512_cvtne2ps_pbh`): round to nearest
    /// even, subnormal inputs flushed to a signed zero, NaN kept quiet.
    public static func convertRowBF16(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutableRawPointer) {
        ek_f32_to_bf16(x, Int64(count), y.assumingMemoryBound(to: UInt16.self))
    }

    /// Quantizes or converts one activation row into `type` (a vec_dot type): q8_0, q8_1, q8_K,
    /// f16, bf16 or f32 (a copy).
    public static func quantizeRow(_ x: UnsafePointer<Float>, count: Int, as type: GGMLType, into y: UnsafeMutableRawPointer) {
        switch type {
        case .q8_0: quantizeRowQ8_0(x, count: count, into: y)
        case .q8_1: quantizeRowQ8_1(x, count: count, into: y)
        case .q8_K: quantizeRowQ8_K(x, count: count, into: y)
        case .f16: convertRowF16(x, count: count, into: y)
        case .bf16: convertRowBF16(x, count: count, into: y)
        case .f32: y.copyMemory(from: x, byteCount: count * 4)
        default: preconditionFailure("\(type) is not an activation (vec_dot) type")
        }
    }
}
