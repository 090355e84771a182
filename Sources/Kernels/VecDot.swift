import CKernels
import GGMLCore

extension Kernels {
    /// ggml `vec_dot` of one weight row (`x`, ggml block layout of `weightType`) with one activation
    /// row (`y`, already in `vecDotType(for: weightType)`: q8_0 / q8_1 / q8_K blocks, or f16 / bf16 /
    /// f32 elements), `n` elements each.
    ///
    /// The math is ggml's generic (quants.c) math: per block an exact integer sum, scaled by the
    /// block's fp16 scales in float (`sumf += (dx·dy)·sumi [+ mx·sy]`; k-quants `(dx·dy)·isum −
    /// (dminx·dy)·Σ mins·bsums` per super-block). ggml's x86 code sums the blocks in another order
    /// (and with FMA), so results agree to float rounding, not bit for bit.
    ///
    /// f16 and bf16: products are exact in f32; they are summed in f32 lanes and the lanes in
    /// double, as ggml_vec_dot_f16 does (f32 SIMD accumulators, reduced into `ggml_float`).
    public static func vecDot(_ weightType: GGMLType, n: Int, _ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> Float {
        switch weightType {
        case .f32:
            return dotF32(x.assumingMemoryBound(to: Float.self), y.assumingMemoryBound(to: Float.self), n)
        case .f16:
            return dotHalf(x.assumingMemoryBound(to: UInt16.self), y.assumingMemoryBound(to: UInt16.self), n, bf16: false)
        case .bf16:
            return dotHalf(x.assumingMemoryBound(to: UInt16.self), y.assumingMemoryBound(to: UInt16.self), n, bf16: true)
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl:
            return dotLegacy(weightType, n: n, x, y)
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            return dotKQuant(weightType, n: n, x, y)
        case _ where iQuants.contains(weightType):
            var out: Float = 0
            ek_vec_dot_iq(Int32(weightType.rawValue), Int64(n), x, y, &out)
            return out
        default:
            preconditionFailure("vec_dot: unsupported weight type \(weightType)")
        }
    }

    @inline(__always)
    static func intDot(_ w: UnsafePointer<Int16>, _ a: UnsafePointer<Int8>, _ count: Int) -> Int32 {
        var s: Int32 = 0
        for i in 0..<count { s &+= Int32(w[i]) &* Int32(a[i]) }
        return s
    }

    static func dotLegacy(_ type: GGMLType, n: Int, _ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> Float {
        let nb = n / 32
        let xBytes = type.typeSize
        let q81 = type == .q4_1 || type == .q5_1
        let yBytes = q81 ? 36 : 34
        let qOff = q81 ? 4 : 2
        return withUnsafeTemporaryAllocation(of: Int16.self, capacity: 256 + 16) { buf in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { dm in
                let w = buf.baseAddress!, mins = w + 256
                let d = dm.baseAddress!, m = d + 8
                var sumf: Float = 0
                var b0 = 0
                while b0 < nb {
                    let cnt = min(8, nb - b0)
                    WeightDecode.decode(type, x + b0 * xBytes, nBlocks: cnt, w: w, d: d, m: m, dStride: 1, mins: mins)
                    for i in 0..<cnt {
                        let yb = y + (b0 + i) * yBytes
                        let sumi = intDot(w + 32 * i, (yb + qOff).assumingMemoryBound(to: Int8.self), 32)
                        let dy = Half.load(yb, 0)
                        if q81 {
                            sumf += (d[i] * dy) * Float(sumi) + m[i] * Half.load(yb, 2)
                        } else {
                            sumf += (d[i] * dy) * Float(sumi)
                        }
                    }
                    b0 += cnt
                }
                return sumf
            }
        }
    }

    static func dotKQuant(_ type: GGMLType, n: Int, _ x: UnsafeRawPointer, _ y: UnsafeRawPointer) -> Float {
        let nb = n / 256
        let xBytes = type.typeSize
        let hasMin = WeightDecode.hasMin(type)
        return withUnsafeTemporaryAllocation(of: Int16.self, capacity: 256 + 16) { buf in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2) { dm in
                let w = buf.baseAddress!, mins = w + 256
                let d = dm.baseAddress!, m = d + 1
                var sumf: Float = 0
                for b in 0..<nb {
                    WeightDecode.decode(type, x + b * xBytes, nBlocks: 1, w: w, d: d, m: m, dStride: 1, mins: mins)
                    let yb = y + b * 292
                    let dy = Float(bitPattern: UInt32(littleEndian: yb.loadUnaligned(as: UInt32.self)))
                    let isum = intDot(w, (yb + 4).assumingMemoryBound(to: Int8.self), 256)
                    sumf += (d[0] * dy) * Float(isum)
                    if hasMin {
                        let bs = (yb + 260).assumingMemoryBound(to: Int16.self)
                        var summs: Int32 = 0
                        for j in 0..<16 { summs &+= Int32(mins[j]) &* Int32(bs[j]) }
                        sumf -= (m[0] * dy) * Float(summs)
                    }
                }
                return sumf
            }
        }
    }

    static func dotF32(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            let b = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            acc += a * b
            i += 8
        }
        var s = acc.sum()
        while i < n { s += x[i] * y[i]; i += 1 }
        return s
    }

    static func dotHalf(_ x: UnsafePointer<UInt16>, _ y: UnsafePointer<UInt16>, _ n: Int, bf16: Bool) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        while i + 8 <= n {
            for l in 0..<8 {
                if bf16 {
                    a[l] = Float(bitPattern: UInt32(x[i + l]) << 16)
                    b[l] = Float(bitPattern: UInt32(y[i + l]) << 16)
                } else {
                    a[l] = Half.toFloat(x[i + l])
                    b[l] = Half.toFloat(y[i + l])
                }
            }
            acc += a * b
            i += 8
        }
        var s = 0.0
        for l in 0..<8 { s += Double(acc[l]) }
        while i < n {
            let p = bf16 ? Float(bitPattern: UInt32(x[i]) << 16) * Float(bitPattern: UInt32(y[i]) << 16)
                : Half.toFloat(x[i]) * Half.toFloat(y[i])
            s += Double(p)
            i += 1
        }
        return Float(s)
    }
}
