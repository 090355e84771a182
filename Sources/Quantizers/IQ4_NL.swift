import GGMLCore

/// `block_iq4_nl`: fp16 scale d, then 16 bytes of 4-bit indices into `kvaluesIQ4NL` (element j
/// low, j + 16 high); x ≈ d·kvalues[q].
///
/// llama-quantize runs ggml `quantize_iq4_nl` (not `quantize_row_iq4_nl_ref`), which searches 15
/// candidate scales per block (ntry = 7) even without an imatrix; that search is what we match.
public enum IQ4_NL: BlockQuantizer {
    public static let type = GGMLType.iq4_nl
    public static let qk = 32
    static let blockBytes = 18

    /// ggml `kvalues_iq4nl`: a non-uniform 4-bit grid, denser near zero.
    public static let kvaluesIQ4NL: [Int8] = GGMLTables.kvaluesIQ4NL

    /// ggml `GROUP_MAX_EPS`: blocks with smaller |x| get scale 0.
    static let groupMaxEps: Float = 1e-15
    static let ntry = 7

    /// ggml `best_index_int8`: binary search for the neighbouring grid values, then the nearer one,
    /// comparing the two float differences (a tie goes up). NaN ends at n − 1.
    static func bestIndexInt8(_ n: Int, _ val: [Int8], _ x: Float) -> Int {
        if x <= Float(val[0]) { return 0 }
        if x >= Float(val[n - 1]) { return n - 1 }
        var ml = 0, mu = n - 1
        while mu - ml > 1 {
            let mav = (ml + mu) / 2
            if x < Float(val[mav]) { mu = mav } else { ml = mav }
        }
        return x - Float(val[mu - 1]) < Float(val[mu]) - x ? mu - 1 : mu
    }

    /// ggml `quantize_iq4_nl` with NULL quant_weights: the definition the fast path must equal.
    public static func quantizeRowReference(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        for ibl in 0..<(src.count / qk) { quantizeBlockReference(src.baseAddress! + ibl * qk, dst.baseAddress! + ibl * blockBytes) }
    }

    /// ggml `quantize_iq4_nl` with quant_weights: the definition the fast imatrix path must equal.
    public static func quantizeRowReference(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                            into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRowReference(src, into: dst) }
        var weight = [Float](repeating: 0, count: qk)
        for ibl in 0..<(src.count / qk) {
            let xb = src.baseAddress! + ibl * qk
            importanceWeights(xb, qw + ibl * qk, into: &weight)
            weight.withUnsafeBufferPointer { quantizeBlockReference(xb, weight: $0.baseAddress!, dst.baseAddress! + ibl * blockBytes) }
        }
    }

    /// The weights of `quantize_row_iq4_nl_impl` with quant_weights, for one block of 32 (ggml's
    /// super-block here): sigma2 is twice the block's mean square, scaled by `2.f/32` as ggml
    /// writes it.
    static func importanceWeights(_ xb: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, into weight: UnsafeMutablePointer<Float>) {
        var sigma2: Float = 0
        for j in 0..<qk { sigma2 += xb[j] * xb[j] }
        sigma2 *= 2 / Float(qk)
        KQuant.importanceWeights(xb, qw, sigma2: sigma2, count: qk, into: weight)
    }

    /// One block of `quantize_iq4_nl` without quant_weights, where ggml weighs by x².
    static func quantizeBlockReference(_ xb: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var weight = [Float](repeating: 0, count: qk)
        for j in 0..<qk { weight[j] = xb[j] * xb[j] }
        weight.withUnsafeBufferPointer { quantizeBlockReference(xb, weight: $0.baseAddress!, y) }
    }

    /// One block of `quantize_iq4_nl`: `quantize_row_iq4_nl_impl` with super_block_size =
    /// block_size = 32 and ntry = 7 after the weights, ported statement by statement. The initial
    /// pass's store into L is left out: the final pass overwrites it.
    static func quantizeBlockReference(_ xb: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let values = kvaluesIQ4NL
        var L = [UInt8](repeating: 0, count: qk)
        var amax: Float = 0
        var max: Float = 0
        for j in 0..<qk {
            let ax = abs(xb[j])
            if ax > amax {
                amax = ax
                max = xb[j]
            }
        }
        var scale: Float
        if amax < groupMaxEps {
            scale = 0
        } else {
            var d = ntry > 0 ? -max / Float(values[0]) : max / Float(values[0])
            var id = 1 / d
            var sumqx: Float = 0
            var sumq2: Float = 0
            for j in 0..<qk {
                let al = id * xb[j]
                let l = bestIndexInt8(16, values, al)
                let q = Float(values[l])
                let w = weight[j]
                sumqx += w * q * xb[j]
                sumq2 += w * q * q
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0
            var best = d * sumqx
            for itry in -ntry...ntry {
                id = Float(itry + Int(values[0])) / max
                sumqx = 0
                sumq2 = 0
                for j in 0..<qk {
                    let al = id * xb[j]
                    let l = bestIndexInt8(16, values, al)
                    let q = Float(values[l])
                    let w = weight[j]
                    sumqx += w * q * xb[j]
                    sumq2 += w * q * q
                }
                if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                    d = sumqx / sumq2
                    best = d * sumqx
                }
            }
            scale = d
        }
        LegacyQuant.storeFP16(scale, y)
        let id: Float = scale != 0 ? 1 / scale : 0
        for j in 0..<qk { L[j] = UInt8(bestIndexInt8(16, values, id * xb[j])) }
        for j in 0..<16 {
            y.storeBytes(of: L[j] | (L[16 + j] << 4), toByteOffset: 2 + j, as: UInt8.self)
        }
    }

    /// The same search with the 16 scales of a block (the first pass and the 15 tries) side by side
    /// as lanes: each lane's sums still add the 32 elements in C's order, so the lanes run four to a
    /// vector without reassociating anything, and the first-better-wins choice runs after, in try
    /// order. `best_index_int8` becomes a count of the 15 midpoints between neighbouring grid values
    /// (exact in float) that x is not below, equal to the C search for all 2³² float bit patterns
    /// (checked exhaustively) and branch-free, where C's binary search mispredicts on most elements.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let nblock = src.count / qk
        guard nblock > 0, let s = src.baseAddress, let o = dst.baseAddress else { return }
        for ibl in 0..<nblock {
            let xb = s + ibl * qk
            let y = o + ibl * blockBytes
            let e = LegacyQuant.extremes32(xb)
            // NaN or ±inf in the block: C's scans skip NaNs, which the extremes do not.
            guard e.finite else {
                quantizeBlockReference(xb, y)
                continue
            }
            let max = LegacyQuant.firstAbsMax(e, xb, qk)
            let scale: Float = abs(max) >= groupMaxEps ? searchScale(xb, weight: nil, max) : 0
            storeBlock(xb, scale, y)
        }
    }

    /// ggml `quantize_iq4_nl` with quant_weights (llama-quantize with an imatrix): the same search
    /// weighted by `qw[j] * sqrtf(sigma2 + x[j]*x[j])` instead of x².
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let qw = quantWeights(importance, for: src) else { return quantizeRow(src, into: dst) }
        let nblock = src.count / qk
        guard nblock > 0, let s = src.baseAddress, let o = dst.baseAddress else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: qk) { wbuf in
            let weight = wbuf.baseAddress!
            for ibl in 0..<nblock {
                let xb = s + ibl * qk
                let y = o + ibl * blockBytes
                importanceWeights(xb, qw + ibl * qk, into: weight)
                let e = LegacyQuant.extremes32(xb)
                guard e.finite else {
                    quantizeBlockReference(xb, weight: weight, y)
                    continue
                }
                let max = LegacyQuant.firstAbsMax(e, xb, qk)
                let scale: Float = abs(max) >= groupMaxEps ? searchScale(xb, weight: weight, max) : 0
                storeBlock(xb, scale, y)
            }
        }
    }

    public static var usesImportance: Bool { true }

    /// The scale the search picks for a finite block whose first element of largest |x| is `max`
    /// (|max| ≥ GROUP_MAX_EPS), weighting element j by `weight[j]`, or by x² when nil.
    @inline(__always)
    static func searchScale(_ xb: UnsafePointer<Float>, weight: UnsafePointer<Float>?, _ max: Float) -> Float {
        // lane 0: id = 1/d for d = −max/values[0]; lanes 1...15: id = (itry + values[0])/max
        let ids0 = SIMD4<Float>(1 / (-max / -127), -134 / max, -133 / max, -132 / max)
        let ids1 = SIMD4<Float>(-131, -130, -129, -128) / max
        let ids2 = SIMD4<Float>(-127, -126, -125, -124) / max
        let ids3 = SIMD4<Float>(-123, -122, -121, -120) / max
        let (sx0, sq0) = weight.map { searchSums(xb, $0, ids0) } ?? searchSums(xb, ids0)
        let (sx1, sq1) = weight.map { searchSums(xb, $0, ids1) } ?? searchSums(xb, ids1)
        let (sx2, sq2) = weight.map { searchSums(xb, $0, ids2) } ?? searchSums(xb, ids2)
        let (sx3, sq3) = weight.map { searchSums(xb, $0, ids3) } ?? searchSums(xb, ids3)
        var d: Float = sq0[0] > 0 ? sx0[0] / sq0[0] : 0
        var best = d * sx0[0]
        for t in 1..<16 {
            let (sumqx, sumq2) = switch t >> 2 {
            case 0: (sx0[t & 3], sq0[t & 3])
            case 1: (sx1[t & 3], sq1[t & 3])
            case 2: (sx2[t & 3], sq2[t & 3])
            default: (sx3[t & 3], sq3[t & 3])
            }
            if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2
                best = d * sumqx
            }
        }
        return d
    }

    /// The fp16 scale and each element's index under it.
    @inline(__always)
    static func storeBlock(_ xb: UnsafePointer<Float>, _ scale: Float, _ y: UnsafeMutableRawPointer) {
        LegacyQuant.storeFP16(scale, y)
        let id: Float = scale != 0 ? 1 / scale : 0
        let p = UnsafeRawPointer(xb)
        LegacyQuant.storeLowBytes(quads(p, 0, id), quads(p, 1, id), quads(p, 2, id), quads(p, 3, id), y, 2)
    }

    /// Bytes 4k...4k+3 of qs: the indices of elements 4k...4k+3 in the low nibbles, of 16+4k... in
    /// the high ones.
    @inline(__always)
    static func quads(_ p: UnsafeRawPointer, _ k: Int, _ id: Float) -> SIMD4<Int32> {
        let lo = bestIndex(LegacyQuant.loadFloat4(p, 16 * k) * id)
        let hi = bestIndex(LegacyQuant.loadFloat4(p, 64 + 16 * k) * id)
        return lo | (hi &<< 4)
    }

    /// sumqx and sumq2 of the search for four candidate scales `ids`, one per lane, over a block
    /// in C's element order. A function of its own so that `bestValue` is inlined into the loop.
    @inline(never)
    static func searchSums(_ xb: UnsafePointer<Float>, _ ids: SIMD4<Float>) -> (SIMD4<Float>, SIMD4<Float>) {
        var sumqx = SIMD4<Float>(), sumq2 = SIMD4<Float>()
        for j in 0..<qk {
            let xj = xb[j]
            let w = xj * xj
            let q = bestValue(ids * xj)
            let wq = w * q
            sumqx += wq * xj
            sumq2 += wq * q
        }
        return (sumqx, sumq2)
    }

    /// `searchSums` with imatrix weights in place of x².
    @inline(never)
    static func searchSums(_ xb: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ ids: SIMD4<Float>) -> (SIMD4<Float>, SIMD4<Float>) {
        var sumqx = SIMD4<Float>(), sumq2 = SIMD4<Float>()
        for j in 0..<qk {
            let xj = xb[j]
            let q = bestValue(ids * xj)
            let wq = weight[j] * q
            sumqx += wq * xj
            sumq2 += wq * q
        }
        return (sumqx, sumq2)
    }

    /// `best_index_int8(16, kvalues_iq4nl, x)` per lane: how many midpoints x is not below. A NaN is
    /// below none and gets 15, as in C.
    @inline(__always)
    static func bestIndex(_ x: SIMD4<Float>) -> SIMD4<Int32> {
        let one = SIMD4<Int32>(repeating: 1)
        var l = SIMD4<Int32>()
        l &+= one.replacing(with: 0, where: x .< -115.5)
        l &+= one.replacing(with: 0, where: x .< -93.5)
        l &+= one.replacing(with: 0, where: x .< -74)
        l &+= one.replacing(with: 0, where: x .< -57)
        l &+= one.replacing(with: 0, where: x .< -42)
        l &+= one.replacing(with: 0, where: x .< -28.5)
        l &+= one.replacing(with: 0, where: x .< -16)
        l &+= one.replacing(with: 0, where: x .< -4.5)
        l &+= one.replacing(with: 0, where: x .< 7)
        l &+= one.replacing(with: 0, where: x .< 19)
        l &+= one.replacing(with: 0, where: x .< 31.5)
        l &+= one.replacing(with: 0, where: x .< 45.5)
        l &+= one.replacing(with: 0, where: x .< 61)
        l &+= one.replacing(with: 0, where: x .< 79)
        l &+= one.replacing(with: 0, where: x .< 101)
        return l
    }

    /// `kvalues_iq4nl[best_index_int8(16, kvalues_iq4nl, x)]` per lane, as a float: the grid's
    /// first value plus the steps to each midpoint x is not below, summed in integers.
    @inline(__always)
    static func bestValue(_ x: SIMD4<Float>) -> SIMD4<Float> {
        var q = SIMD4<Int32>(repeating: -127)
        q &+= SIMD4<Int32>(repeating: 23).replacing(with: 0, where: x .< -115.5)
        q &+= SIMD4<Int32>(repeating: 21).replacing(with: 0, where: x .< -93.5)
        q &+= SIMD4<Int32>(repeating: 18).replacing(with: 0, where: x .< -74)
        q &+= SIMD4<Int32>(repeating: 16).replacing(with: 0, where: x .< -57)
        q &+= SIMD4<Int32>(repeating: 14).replacing(with: 0, where: x .< -42)
        q &+= SIMD4<Int32>(repeating: 13).replacing(with: 0, where: x .< -28.5)
        q &+= SIMD4<Int32>(repeating: 12).replacing(with: 0, where: x .< -16)
        q &+= SIMD4<Int32>(repeating: 11).replacing(with: 0, where: x .< -4.5)
        q &+= SIMD4<Int32>(repeating: 12).replacing(with: 0, where: x .< 7)
        q &+= SIMD4<Int32>(repeating: 12).replacing(with: 0, where: x .< 19)
        q &+= SIMD4<Int32>(repeating: 13).replacing(with: 0, where: x .< 31.5)
        q &+= SIMD4<Int32>(repeating: 15).replacing(with: 0, where: x .< 45.5)
        q &+= SIMD4<Int32>(repeating: 16).replacing(with: 0, where: x .< 61)
        q &+= SIMD4<Int32>(repeating: 20).replacing(with: 0, where: x .< 79)
        q &+= SIMD4<Int32>(repeating: 24).replacing(with: 0, where: x .< 101)
        return SIMD4<Float>(q)
    }

    /// ggml `dequantize_row_iq4_nl`.
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        let nb = dst.count / qk
        guard nb > 0, let y = dst.baseAddress else { return }
        kvaluesIQ4NL.withUnsafeBufferPointer { kv in
            for i in 0..<nb {
                let blk = src.baseAddress! + i * blockBytes
                let d = LegacyQuant.loadFP16(blk)
                let out = y + i * qk
                for j in 0..<16 {
                    let q = blk.load(fromByteOffset: 2 + j, as: UInt8.self)
                    out[j] = d * Float(kv[Int(q & 0x0F)])
                    out[j + 16] = d * Float(kv[Int(q >> 4)])
                }
            }
        }
    }
}
