import GGMLCore

/// Weight blocks decoded to 16-bit integers, the form the integer dot products consume.
///
/// Legacy types (32-element blocks): `w` holds the signed quants as ggml's vec_dot uses them
/// (q4_0: q-8, q5_0: q-16, q8_0: q, iq4_nl: kvalues[q]; q4_1/q5_1: the unsigned q), `d` the block
/// scale and, for q4_1/q5_1, `m` the block min.
///
/// k-quants (256-element super-blocks): `w` holds `scale_j · q` with the sub-block's integer scale
/// folded in (q2_K: (sc&15)·q; q3_K: (sc-32)·(q-4·!h); q4_K/q5_K: 6-bit scale · q; q6_K: int8 scale
/// · (q-32)), so Σ w·a over a super-block is exactly ggml's integer `isum` / Σ aux32 (no overflow:
/// |w| ≤ 4096, |a| ≤ 127). `d` is the super-block d, `m` its dmin, and `mins` 16 Int16 per
/// super-block, one per 16 elements, to dot with q8_K's `bsums` (q2_K: sc>>4; q4_K/q5_K: the 6-bit
/// min of the 32-element sub-block, twice; zero for q3_K/q6_K, which have no min term).
enum WeightDecode {
    /// Whether `type`'s dot product has a min term (q4_1/q5_1: m·s; q2_K/q4_K/q5_K: dmin·Σmins·bsums).
    static func hasMin(_ type: GGMLType) -> Bool {
        switch type {
        case .q4_1, .q5_1, .q2_K, .q4_K, .q5_K: true
        default: false
        }
    }

    static func isKQuant(_ type: GGMLType) -> Bool {
        switch type {
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: true
        default: false
        }
    }

    /// ggml `kvalues_iq4nl`.
    static let kvaluesIQ4NL: [Int16] = GGMLTables.kvaluesIQ4NL.map(Int16.init)

    /// Decodes `nBlocks` blocks of `type` starting at `src`. `d[i * dStride]` and `m[i * dStride]`
    /// receive block i's scale and min; `mins` (k-quants) 16 values per super-block.
    static func decode(_ type: GGMLType, _ src: UnsafeRawPointer, nBlocks: Int,
                       w: UnsafeMutablePointer<Int16>, d: UnsafeMutablePointer<Float>,
                       m: UnsafeMutablePointer<Float>, dStride: Int, mins: UnsafeMutablePointer<Int16>) {
        switch type {
        case .q4_0:
            for b in 0..<nBlocks {
                let blk = src + b * 18
                d[b * dStride] = Half.load(blk, 0)
                let qs = (blk + 2).assumingMemoryBound(to: UInt8.self)
                let o = w + b * 32
                for j in 0..<16 {
                    o[j] = Int16(qs[j] & 0xF) &- 8
                    o[j + 16] = Int16(qs[j] >> 4) &- 8
                }
            }
        case .q4_1:
            for b in 0..<nBlocks {
                let blk = src + b * 20
                d[b * dStride] = Half.load(blk, 0)
                m[b * dStride] = Half.load(blk, 2)
                let qs = (blk + 4).assumingMemoryBound(to: UInt8.self)
                let o = w + b * 32
                for j in 0..<16 {
                    o[j] = Int16(qs[j] & 0xF)
                    o[j + 16] = Int16(qs[j] >> 4)
                }
            }
        case .q5_0:
            for b in 0..<nBlocks {
                let blk = src + b * 22
                d[b * dStride] = Half.load(blk, 0)
                let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                let qs = (blk + 6).assumingMemoryBound(to: UInt8.self)
                let o = w + b * 32
                for j in 0..<16 {
                    let h0 = Int16(truncatingIfNeeded: (qh >> UInt32(j)) & 1) << 4
                    let h1 = Int16(truncatingIfNeeded: (qh >> UInt32(j + 16)) & 1) << 4
                    o[j] = (Int16(qs[j] & 0xF) | h0) &- 16
                    o[j + 16] = (Int16(qs[j] >> 4) | h1) &- 16
                }
            }
        case .q5_1:
            for b in 0..<nBlocks {
                let blk = src + b * 24
                d[b * dStride] = Half.load(blk, 0)
                m[b * dStride] = Half.load(blk, 2)
                let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                let qs = (blk + 8).assumingMemoryBound(to: UInt8.self)
                let o = w + b * 32
                for j in 0..<16 {
                    let h0 = Int16(truncatingIfNeeded: (qh >> UInt32(j)) & 1) << 4
                    let h1 = Int16(truncatingIfNeeded: (qh >> UInt32(j + 16)) & 1) << 4
                    o[j] = Int16(qs[j] & 0xF) | h0
                    o[j + 16] = Int16(qs[j] >> 4) | h1
                }
            }
        case .q8_0:
            for b in 0..<nBlocks {
                let blk = src + b * 34
                d[b * dStride] = Half.load(blk, 0)
                let qs = (blk + 2).assumingMemoryBound(to: Int8.self)
                let o = w + b * 32
                for j in 0..<32 { o[j] = Int16(qs[j]) }
            }
        case .iq4_nl:
            kvaluesIQ4NL.withUnsafeBufferPointer { kv in
                for b in 0..<nBlocks {
                    let blk = src + b * 18
                    d[b * dStride] = Half.load(blk, 0)
                    let qs = (blk + 2).assumingMemoryBound(to: UInt8.self)
                    let o = w + b * 32
                    for j in 0..<16 {
                        o[j] = kv[Int(qs[j] & 0xF)]
                        o[j + 16] = kv[Int(qs[j] >> 4)]
                    }
                }
            }
        case .q2_K:
            for b in 0..<nBlocks {
                let blk = src + b * 84
                let sc = blk.assumingMemoryBound(to: UInt8.self)
                let qs = (blk + 16).assumingMemoryBound(to: UInt8.self)
                d[b * dStride] = Half.load(blk, 80)
                m[b * dStride] = Half.load(blk, 82)
                let o = w + b * 256
                let mn = mins + b * 16
                for j in 0..<16 { mn[j] = Int16(sc[j] >> 4) }
                for k in 0..<2 {
                    let q2 = qs + 32 * k
                    for j in 0..<4 {
                        let shift = UInt8(2 * j)
                        let s0 = Int16(sc[k * 8 + j * 2] & 0xF)
                        let s1 = Int16(sc[k * 8 + j * 2 + 1] & 0xF)
                        let oo = o + k * 128 + j * 32
                        for l in 0..<16 { oo[l] = s0 &* Int16((q2[l] >> shift) & 3) }
                        for l in 16..<32 { oo[l] = s1 &* Int16((q2[l] >> shift) & 3) }
                    }
                }
            }
        case .q3_K:
            for b in 0..<nBlocks {
                let blk = src + b * 110
                let hm = blk.assumingMemoryBound(to: UInt8.self)
                let qs = (blk + 32).assumingMemoryBound(to: UInt8.self)
                let s = (blk + 96).assumingMemoryBound(to: UInt8.self)
                d[b * dStride] = Half.load(blk, 108)
                m[b * dStride] = 0
                var sc = SIMD16<Int16>()
                for i in 0..<4 {
                    sc[i] = Int16((s[i] & 0xF) | ((s[8 + i] & 3) << 4)) - 32
                    sc[4 + i] = Int16((s[4 + i] & 0xF) | (((s[8 + i] >> 2) & 3) << 4)) - 32
                    sc[8 + i] = Int16((s[i] >> 4) | (((s[8 + i] >> 4) & 3) << 4)) - 32
                    sc[12 + i] = Int16((s[4 + i] >> 4) | (((s[8 + i] >> 6) & 3) << 4)) - 32
                }
                let o = w + b * 256
                let mn = mins + b * 16
                for j in 0..<16 { mn[j] = 0 }
                for j in 0..<2 {
                    let q3 = qs + 32 * j
                    for sh in 0..<4 {
                        let c = j * 4 + sh
                        let shift = UInt8(2 * sh)
                        let hbit = UInt8(c)
                        let s0 = sc[2 * c], s1 = sc[2 * c + 1]
                        let oo = o + c * 32
                        for l in 0..<32 {
                            let v = Int16((q3[l] >> shift) & 3) &- Int16(((hm[l] >> hbit) & 1) ^ 1) &* 4
                            oo[l] = (l < 16 ? s0 : s1) &* v
                        }
                    }
                }
            }
        case .q4_K, .q5_K:
            let five = type == .q5_K
            let bsz = five ? 176 : 144
            for b in 0..<nBlocks {
                let blk = src + b * bsz
                d[b * dStride] = Half.load(blk, 0)
                m[b * dStride] = Half.load(blk, 2)
                let s = (blk + 4).assumingMemoryBound(to: UInt8.self)
                var sc = SIMD8<Int16>(), mnv = SIMD8<Int16>()
                for j in 0..<4 {
                    sc[j] = Int16(s[j] & 63)
                    mnv[j] = Int16(s[j + 4] & 63)
                }
                for j in 4..<8 {
                    sc[j] = Int16((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4))
                    mnv[j] = Int16((s[j + 4] >> 4) | ((s[j] >> 6) << 4))
                }
                let mn = mins + b * 16
                for j in 0..<16 { mn[j] = mnv[j / 2] }
                let qh = (blk + 16).assumingMemoryBound(to: UInt8.self)
                let qs = (blk + (five ? 48 : 16)).assumingMemoryBound(to: UInt8.self)
                let o = w + b * 256
                for j in 0..<4 {
                    let q4 = qs + 32 * j
                    let s0 = sc[2 * j], s1 = sc[2 * j + 1]
                    let oo = o + 64 * j
                    if five {
                        let b0 = UInt8(2 * j), b1 = UInt8(2 * j + 1)
                        for l in 0..<32 {
                            oo[l] = s0 &* Int16((q4[l] & 0xF) | (((qh[l] >> b0) & 1) << 4))
                            oo[l + 32] = s1 &* Int16((q4[l] >> 4) | (((qh[l] >> b1) & 1) << 4))
                        }
                    } else {
                        for l in 0..<32 {
                            oo[l] = s0 &* Int16(q4[l] & 0xF)
                            oo[l + 32] = s1 &* Int16(q4[l] >> 4)
                        }
                    }
                }
            }
        case .q6_K:
            for b in 0..<nBlocks {
                let blk = src + b * 210
                let ql = blk.assumingMemoryBound(to: UInt8.self)
                let qh = (blk + 128).assumingMemoryBound(to: UInt8.self)
                let sc = (blk + 192).assumingMemoryBound(to: Int8.self)
                d[b * dStride] = Half.load(blk, 208)
                m[b * dStride] = 0
                let mn = mins + b * 16
                for j in 0..<16 { mn[j] = 0 }
                let o = w + b * 256
                for h in 0..<2 {
                    let l4 = ql + 64 * h, hh = qh + 32 * h, oo = o + 128 * h
                    let sb = sc + 8 * h
                    for l in 0..<32 {
                        let i = l >> 4
                        let q1 = Int16((l4[l] & 0xF) | ((hh[l] & 3) << 4)) &- 32
                        let q2 = Int16((l4[l + 32] & 0xF) | (((hh[l] >> 2) & 3) << 4)) &- 32
                        let q3 = Int16((l4[l] >> 4) | (((hh[l] >> 4) & 3) << 4)) &- 32
                        let q4 = Int16((l4[l + 32] >> 4) | (((hh[l] >> 6) & 3) << 4)) &- 32
                        oo[l] = Int16(sb[i]) &* q1
                        oo[l + 32] = Int16(sb[2 + i]) &* q2
                        oo[l + 64] = Int16(sb[4 + i]) &* q3
                        oo[l + 96] = Int16(sb[6 + i]) &* q4
                    }
                }
            }
        default:
            preconditionFailure("no integer decoder for \(type)")
        }
    }
}

/// IEEE half → float without libcalls (exact for every half; subnormals via a multiply by 2¹¹²,
/// inf/NaN by setting the exponent), so loops over halves vectorise on baseline SSE2.
enum Half {
    @inline(__always)
    static func toFloat(_ h: UInt16) -> Float {
        let u = UInt32(h)
        let em = u & 0x7FFF
        let scaled = Float(bitPattern: em << 13) * Float(bitPattern: 0x7780_0000) // 2^112
        let special = Float(bitPattern: (em << 13) | 0x7F80_0000)
        let mag = em >= 0x7C00 ? special : scaled
        return Float(bitPattern: mag.bitPattern | ((u & 0x8000) << 16))
    }

    @inline(__always)
    static func load(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        toFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    static func toFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = toFloat(src[i]) }
    }

    static func bf16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let o = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt32.self)
        for i in 0..<count { o[i] = UInt32(src[i]) << 16 }
    }
}
