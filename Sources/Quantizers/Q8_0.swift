import GGMLCore

/// `block_q8_0`: fp16 scale d, then 32 int8 quants; x ≈ d·q.
public enum Q8_0: BlockQuantizer {
    public static let type = GGMLType.q8_0
    public static let qk = 32
    static let blockBytes = 34

    /// ggml `quantize_row_q8_0_ref`, element by element: the definition the fast path must equal.
    public static func quantizeRowReference(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let nb = src.count / qk
        for b in 0..<nb {
            var amax: Float = 0
            for j in 0..<qk { amax = max(amax, abs(src[b * qk + j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            let out = dst.baseAddress! + b * blockBytes
            out.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
            for j in 0..<qk {
                let q = (src[b * qk + j] * id).rounded(.toNearestOrAwayFromZero)
                out.storeBytes(of: int8LikeC(q), toByteOffset: 2 + j, as: Int8.self)
            }
        }
    }

    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let nb = src.count / qk
        let s = UnsafeRawPointer(src.baseAddress!)
        for b in 0..<nb {
            let p = s + b * qk * 4
            let v0 = p.loadUnaligned(as: SIMD16<Float>.self)
            let v1 = p.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            let m = pointwiseMax(pointwiseMax(v0, -v0), pointwiseMax(v1, -v1)).max()
            let d = m / 127
            let id: Float = d != 0 ? 1 / d : 0
            let out = dst.baseAddress! + b * blockBytes
            out.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
            let q0 = SIMD16<Int8>(truncatingIfNeeded: SIMD16<Int32>(inInt32Range(roundHalfAway(v0 * id))))
            let q1 = SIMD16<Int8>(truncatingIfNeeded: SIMD16<Int32>(inInt32Range(roundHalfAway(v1 * id))))
            out.storeBytes(of: q0, toByteOffset: 2, as: SIMD16<Int8>.self)
            out.storeBytes(of: q1, toByteOffset: 18, as: SIMD16<Int8>.self)
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        for b in 0..<nb {
            let blk = src.baseAddress! + b * blockBytes
            let d = Float(Float16(bitPattern: UInt16(littleEndian: blk.loadUnaligned(as: UInt16.self))))
            for j in 0..<qk {
                dst[b * qk + j] = d * Float(blk.load(fromByteOffset: 2 + j, as: Int8.self))
            }
        }
    }
}

/// A float → int8 store as C compiles it on x86 (cvttss2si, then the low byte): a NaN, an infinity
/// or anything outside int32 becomes INT32_MIN, whose low byte is 0. A block of subnormals whose
/// scale underflows to 1/d = inf reaches this in ggml and in gguf-py alike.
@inline(__always)
func int8LikeC(_ v: Float) -> Int8 {
    v > -2147483648 && v < 2147483648 ? Int8(truncatingIfNeeded: Int32(v)) : 0
}

@inline(__always)
func inInt32Range<V: SIMD>(_ v: V) -> V where V.Scalar == Float {
    var r = v
    r.replace(with: 0, where: .!((v .> V(repeating: -2147483648)) .& (v .< V(repeating: 2147483648))))
    return r
}

/// C `roundf` (halves away from zero) lane-wise; x86 has no such rounding mode, and
/// `trunc(x + 0.5·sign)` is wrong for 0.49999997, so the fraction is compared exactly.
@inline(__always)
func roundHalfAway<V: SIMD>(_ x: V) -> V where V.Scalar == Float {
    let t = x.rounded(.towardZero)
    let frac = x - t
    let one = V(repeating: 1)
    var r = t
    r.replace(with: t + one, where: frac .>= V(repeating: 0.5))
    r.replace(with: t - one, where: frac .<= V(repeating: -0.5))
    return r
}
