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

    /// The same arithmetic as branch-free loops over a block that LLVM vectorises with baseline
    /// SSE2: |x| maxima as integers (order-preserving for non-negative floats), and rounding by the
    /// 1.5·2²³ trick with an exact fix for ties, so no libm call or trapping conversion remains.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let nb = src.count / qk
        let s = src.baseAddress!
        let o = dst.baseAddress!
        let bits = UnsafeRawPointer(s).assumingMemoryBound(to: UInt32.self)
        for b in 0..<nb {
            let x = s + b * qk
            let xb = bits + b * qk
            var m: UInt32 = 0
            for j in 0..<qk { m = Swift.max(m, xb[j] & 0x7FFF_FFFF) }
            let amax = Float(bitPattern: m)
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            let out = o + b * blockBytes
            out.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
            let q = (out + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<qk { q[j] = roundToInt8Branchless(x[j] * id) }
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


/// C `roundf` (halves away from zero) lane-wise; x86 has no such rounding mode, and
/// `trunc(x + 0.5·sign)` is wrong for 0.49999997, so the fraction is compared exactly.
/// `int8LikeC(roundf(v))` without branches. Finite products here never exceed ±128 (|x| ≤ amax,
/// id = 127/amax), so anything outside ±256 is the inf/NaN case, which C turns into 0.
@inline(__always)
func roundToInt8Branchless(_ v: Float) -> Int8 {
    let magic: Float = 12_582_912 // 1.5 · 2^23: adding it rounds to an integer, ties to even
    let vc = (v > -256) && (v < 256) ? v : 0
    let rne = (vc + magic) - magic
    let diff = vc - rne
    let up: Float = (diff == 0.5) && (vc > 0) ? 1 : 0
    let down: Float = (diff == -0.5) && (vc < 0) ? 1 : 0
    let r = rne + up - down
    return Int8(truncatingIfNeeded: Int32(bitPattern: (r + magic).bitPattern) &- 0x4B40_0000)
}

/// `(int8_t) roundf(v)` as ggml computes it, without libm: baseline x86-64 has no rounding
/// instruction, and a `truncf` call per element would stop the loop from vectorising.
@inline(__always)
func roundToInt8LikeC(_ v: Float) -> Int8 {
    let inRange = v > -2147483648 && v < 2147483648
    let vc = inRange ? v : 0
    let i = Int32(vc)
    let frac = vc - Float(i)
    let r = i &+ (frac >= 0.5 ? 1 : (frac <= -0.5 ? -1 : 0))
    return Int8(truncatingIfNeeded: r)
}

@inline(__always)
func roundHalfAway(_ x: Float) -> Float {
    let t = x.rounded(.towardZero)
    let frac = x - t
    return frac >= 0.5 ? t + 1 : frac <= -0.5 ? t - 1 : t
}
