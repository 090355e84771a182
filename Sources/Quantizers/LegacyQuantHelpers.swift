// Shared pieces of the q4_0, q4_1, q5_0, q5_1 and iq4_nl quantizers.
//
// Each type keeps a literal port of ggml's C (`quantizeRowReference`, one block at a time in
// `quantizeBlockReference`). The fast paths redo the same IEEE single operations per lane, in the
// same order, with no FMA and nothing reassociated; a block holding a NaN or an infinity, or whose
// 1/d overflows, goes through the reference instead, so the fast code only meets values whose
// (int8_t) conversion is a plain floor.
//
// The fast paths use concrete SIMD4<Float>/SIMD4<Int32>, which compile to straight SSE2 here
// (mulps, cmpltps, pcmpgtd, pand/por; checked in the disassembly). Written as scalar loops, LLVM
// vectorises them only in part once inlined into the row loop, and turns iq4_nl's chain of
// compares into branches. Most SIMD operators are transparent per-lane loops at the SIL level, so
// a function using many of them looks large to Swift's inliner, which then stops inlining even
// `@inline(__always)` helpers into it: hence one out-of-line kernel per block, and the byte
// packing out of line too. libm-backed operations (`rounded`) and SIMD8<Float> are avoided.

enum LegacyQuant {
    /// ggml's software fp32 → fp16 (NaN → sign | 0x7E00, which reaches the file when a scale is
    /// NaN: a row of +inf gives max − min = NaN); see `FloatConversion.ggmlFP32ToFP16`.
    @inline(__always)
    static func fp32ToFP16(_ f: Float) -> UInt16 { FloatConversion.ggmlFP32ToFP16(f) }

    @inline(__always)
    static func storeFP16(_ f: Float, _ p: UnsafeMutableRawPointer, _ offset: Int = 0) {
        p.storeBytes(of: fp32ToFP16(f).littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    static func loadFP16(_ p: UnsafeRawPointer, _ offset: Int = 0) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }

    /// C `(int8_t)v` (x86 cvttss2si, low byte) widened back to int, as `MIN(15, (int8_t)v)` sees it.
    @inline(__always)
    static func int8AsInt(_ v: Float) -> Int { Int(int8LikeC(v)) }

    @inline(__always)
    static func loadFloat4(_ p: UnsafeRawPointer, _ offset: Int) -> SIMD4<Float> {
        p.loadUnaligned(fromByteOffset: offset, as: SIMD4<Float>.self)
    }

    @inline(__always)
    static func loadInt4(_ p: UnsafeRawPointer, _ offset: Int) -> SIMD4<Int32> {
        p.loadUnaligned(fromByteOffset: offset, as: SIMD4<Int32>.self)
    }

    /// Sixteen bytes, the low byte of each lane of `r0` (bytes 0...3), `r1` (4...7), `r2`, `r3`,
    /// stored at `p + offset` (any alignment). Out of line on purpose: alone in a function the
    /// truncating conversion becomes pand/packuswb, while inlined into a block kernel it stays a
    /// call to a generic specialisation (or, written as a transpose, ~90 shuffles).
    @inline(never)
    static func storeLowBytes(_ r0: SIMD4<Int32>, _ r1: SIMD4<Int32>, _ r2: SIMD4<Int32>, _ r3: SIMD4<Int32>,
                              _ p: UnsafeMutableRawPointer, _ offset: Int) {
        let v = SIMD16<Int32>(lowHalf: SIMD8(lowHalf: r0, highHalf: r1), highHalf: SIMD8(lowHalf: r2, highHalf: r3))
        p.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: v), toByteOffset: offset, as: SIMD16<UInt8>.self)
    }

    /// qh bits of elements 4k...4k+3 (quants `lo`) and 16+4k...16+4k+3 (quants `hi`): bit j is
    /// set when element j's quant has its fifth bit. One lane per element; OR the lanes together.
    @inline(__always)
    static func fifthBits(_ lo: SIMD4<Int32>, _ hi: SIMD4<Int32>, _ k: Int) -> SIMD4<Int32> {
        let bits = SIMD4<Int32>(1, 2, 4, 8) &<< Int32(4 * k)
        let setLo = SIMD4<Int32>() &- ((lo &>> 4) & 1)  // all ones where bit 4 is set
        let setHi = SIMD4<Int32>() &- ((hi &>> 4) & 1)
        return (bits & setLo) | ((bits &<< 16) & setHi)
    }

    /// `(int8_t)v`, that is floor(v), per lane for 0 ≤ v < 2²²: the 1.5·2²³ trick rounds to nearest
    /// even, and one compare takes back the lanes that went up (a true mask lane is −1). x86 has no
    /// float→int conversion that rounds down, and Swift's trapping Int32(Float) would keep the code
    /// scalar. Callers send blocks where v could be NaN, infinite or negative to the reference.
    @inline(__always)
    static func floorNonNegative(_ v: SIMD4<Float>) -> SIMD4<Int32> {
        let magic: Float = 12_582_912
        let t = v + magic
        let wentUp = unsafeBitCast((t - magic) .> v, to: SIMD4<Int32>.self)  // -1 where rounded up
        return (unsafeBitCast(t, to: SIMD4<Int32>.self) &- 0x4B40_0000) &+ wentUp
    }

    /// The extremes of a block as ggml's scans see them, found in one pass over ordered integer
    /// keys (−0 sorts just below +0). `finite` is false when the block holds a NaN or an infinity:
    /// a NaN's key lies beyond the infinities' keys, so it shows in the extremes.
    struct Extremes {
        var min: Float
        var max: Float
        var finite: Bool
    }

    /// Extremes of a block of 32. Eight vectors of keys are first ordered in pairs, one compare
    /// giving both the larger and the smaller (SSE2 has no 32-bit integer min/max), then reduced as
    /// two trees.
    @inline(__always)
    static func extremes32(_ x: UnsafePointer<Float>) -> Extremes {
        let p = UnsafeRawPointer(x)
        @inline(__always) func key(_ k: Int) -> SIMD4<Int32> {
            let b = loadInt4(p, 16 * k)
            return b ^ ((b &>> 31) & 0x7FFF_FFFF)
        }
        @inline(__always) func ordered(_ a: SIMD4<Int32>, _ b: SIMD4<Int32>) -> (hi: SIMD4<Int32>, lo: SIMD4<Int32>) {
            let aAbove = a .> b
            return (b.replacing(with: a, where: aAbove), a.replacing(with: b, where: aAbove))
        }
        @inline(__always) func max(_ a: SIMD4<Int32>, _ b: SIMD4<Int32>) -> SIMD4<Int32> { b.replacing(with: a, where: a .> b) }
        @inline(__always) func min(_ a: SIMD4<Int32>, _ b: SIMD4<Int32>) -> SIMD4<Int32> { b.replacing(with: a, where: a .< b) }
        let p01 = ordered(key(0), key(1)), p23 = ordered(key(2), key(3))
        let p45 = ordered(key(4), key(5)), p67 = ordered(key(6), key(7))
        let hi = max(max(p01.hi, p23.hi), max(p45.hi, p67.hi))
        let lo = min(min(p01.lo, p23.lo), min(p45.lo, p67.lo))
        let l = Swift.min(Swift.min(lo[0], lo[1]), Swift.min(lo[2], lo[3]))
        let h = Swift.max(Swift.max(hi[0], hi[1]), Swift.max(hi[2], hi[3]))
        let finite = l > orderedKey(Int32(bitPattern: 0xFF80_0000)) && h < 0x7F80_0000
        return Extremes(min: Float(bitPattern: UInt32(bitPattern: orderedKey(l))),
                        max: Float(bitPattern: UInt32(bitPattern: orderedKey(h))), finite: finite)
    }

    /// The first element of largest |x| of a finite block, as ggml's
    /// `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` finds it from amax = max = 0: the
    /// larger of max and −min, and only when both reach it the earlier one (a block of ±0 gives +0).
    @inline(__always)
    static func firstAbsMax(_ e: Extremes, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        // A select, not a branch: which side holds the maximum is a coin toss on real weights.
        let pick = e.max > -e.min ? e.max : e.min
        if e.max == -e.min {
            let amax = e.max
            if !(amax > 0) { return 0 }
            for j in 0..<n where abs(x[j]) == amax { return x[j] }
        }
        return pick
    }

    /// C's min and max of a finite block for q4_1 and q5_1 (`if (v < min) min = v;` …): a zero
    /// result has the sign of the first zero in the block, because C never replaces a zero by the
    /// other zero.
    @inline(__always)
    static func minMax(_ e: Extremes, _ x: UnsafePointer<Float>, _ n: Int) -> (min: Float, max: Float) {
        var mn = e.min, mx = e.max
        if mn == 0 || mx == 0 {
            var z: Float = 0
            for j in 0..<n where x[j] == 0 {
                z = x[j]
                break
            }
            if mn == 0 { mn = z }
            if mx == 0 { mx = z }
        }
        return (mn, mx)
    }

    /// A signed integer with the order of the float whose bits are `b` (for non-NaN floats); its
    /// own inverse.
    @inline(__always)
    static func orderedKey(_ b: Int32) -> Int32 { b ^ ((b >> 31) & 0x7FFF_FFFF) }
}

extension LegacyQuant {
    /// The frame of ggml's `quantize_row_{q4_0,q4_1,q5_0,q5_1}_impl`: imatrix weights
    /// `qw[j] * sqrtf(sigma2 + x[j]*x[j])` per block of 32, where sigma2 is the mean square of
    /// the whole row (not of the block, as in the k-quants), then `block(xb, weight, y, L,
    /// scratch)` for each block with 32 floats of weight, 32 bytes for the levels and the SIMD
    /// scratch of make_qkx3_quants, all on the stack.
    @inline(__always)
    static func quantizeWeightedRow(
        _ src: UnsafeBufferPointer<Float>, _ qw: UnsafePointer<Float>, _ dst: UnsafeMutableRawBufferPointer, blockBytes: Int,
        _ block: (_ xb: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                  _ L: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<SIMD4<Float>>) -> Void
    ) {
        let qk = 32
        let n = src.count
        guard n > 0, let x = src.baseAddress, let out = dst.baseAddress else { return }
        let sigma2 = KQuant.sumOfSquares(x, count: n) / Float(n)
        KQuant.withScratch(simd: KQuant.qkx2ScratchCount(n: qk), floats: qk, bytes: qk) { scratch, weight, L in
            for ib in 0..<(n / qk) {
                let xb = x + qk * ib
                KQuant.importanceWeights(xb, qw + qk * ib, sigma2: sigma2, count: qk, into: weight)
                block(xb, weight, out + ib * blockBytes, L, scratch)
            }
        }
    }

    /// Sixteen bytes at `y + offset`: the low nibbles of levels j (low) and j + 16 (high).
    @inline(__always)
    static func packNibbles(_ L: UnsafePointer<UInt8>, _ y: UnsafeMutableRawPointer, _ offset: Int) {
        for j in 0..<16 {
            y.storeBytes(of: (L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4), toByteOffset: offset + j, as: UInt8.self)
        }
    }

    /// q5's qh: bit j set when level j has its fifth bit.
    @inline(__always)
    static func fifthBitsWord(_ L: UnsafePointer<UInt8>) -> UInt32 {
        var qh: UInt32 = 0
        for j in 0..<16 {
            qh |= ((UInt32(L[j]) & 0x10) >> 4) << (j + 0)
            qh |= ((UInt32(L[j + 16]) & 0x10) >> 4) << (j + 16)
        }
        return qh
    }
}
