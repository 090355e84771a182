/// Helpers shared by the k-quants (ggml-quants.c "2-6 bit quantization in super-blocks").
///
/// ggml-quants.c is built with plain `-O3` for baseline x86-64: every float operation is one IEEE
/// single-precision operation in source order, with no FMA contraction and no reassociation. Each
/// expression here keeps ggml's operand order and types (`w*x[i]*l` is `(w*x[i])*Float(l)`), which
/// is what makes the output bit-identical; do not "simplify" an expression without checking that.
///
/// The searches over candidate scales (make_qkx2_quants, make_qx_quants) are the hot spots. ggml
/// runs one trial scale after another, each a chain of dependent float additions. Here trials are
/// lanes: one pass over the elements updates the sums of several trials at once. Each lane still
/// adds its terms in ggml's order, so its sums are the same bits, but the lanes are independent and
/// LLVM vectorises across them. The choice among trials then runs in ggml's order over the stored
/// sums, so ties and `<` versus `<=` resolve exactly as in ggml.
///
/// Lanes are concrete `SIMD4<Float>` / `SIMD4<Int32>` values: in an optimised build each operation
/// is one SSE2 instruction (checked in the assembly), which LLVM's auto-vectoriser did not manage
/// for these loops. Code generic over SIMD would not lower so; in a debug build all of it is slow.
public enum KQuant {
    /// QK_K: elements per super-block.
    public static let qk = 256

    /// GROUP_MAX_EPS, 1e-15f, spelled by its bits so no literal conversion can round it differently.
    static let groupMaxEps = Float(bitPattern: 0x2690_1D7D)
    /// 0.1f, by its bits for the same reason.
    static let pointOne = Float(bitPattern: 0x3DCC_CCCD)

    /// ggml `nearest_int`: adding 1.5·2²³ rounds to an integer (ties to even) in the low mantissa
    /// bits. ggml only asserts |fval| ≤ 4194303 in debug builds; beyond that (and for inf/NaN) the
    /// same bit arithmetic gives the same wrapped value here as there.
    @inline(__always)
    static func nearestInt(_ fval: Float) -> Int32 {
        let val = fval + 12_582_912
        return Int32(bitPattern: val.bitPattern & 0x007F_FFFF) &- 0x0040_0000
    }

    /// ggml's software fp32 → fp16 (NaN → sign | 0x7E00); see `FloatConversion.ggmlFP32ToFP16`.
    @inline(__always)
    static func fp32ToFP16(_ f: Float) -> UInt16 { FloatConversion.ggmlFP32ToFP16(f) }

    /// ggml `ggml_compute_fp16_to_fp32`: exact for every finite half; NaNs keep their payload.
    @inline(__always)
    static func fp16ToFP32(_ h: UInt16) -> Float {
        let w = UInt32(h) << 16
        let sign = w & 0x8000_0000
        let twoW = w &+ w
        let expOffset: UInt32 = 0xE0 << 23
        let expScale = Float(bitPattern: 0x0780_0000) // 0x1.0p-112f
        let normalized = Float(bitPattern: (twoW >> 4) &+ expOffset) * expScale
        let magicMask: UInt32 = 126 << 23
        let denormalized = Float(bitPattern: (twoW >> 17) | magicMask) - 0.5
        let denormalizedCutoff: UInt32 = 1 << 27
        let result = sign | (twoW < denormalizedCutoff ? denormalized.bitPattern : normalized.bitPattern)
        return Float(bitPattern: result)
    }

    @inline(__always)
    static func loadFP16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        fp16ToFP32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    @inline(__always)
    static func storeFP16(_ f: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: fp32ToFP16(f).littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// ggml `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` from the 12 packed bytes of
    /// q4_K/q5_K.
    @inline(__always)
    static func getScaleMinK4(_ j: Int, _ q: UnsafePointer<UInt8>) -> (d: UInt8, m: UInt8) {
        if j < 4 {
            return (q[j] & 63, q[j + 4] & 63)
        }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4))
    }

    /// Per-row scratch on the stack, in one allocation: `simd` SIMD4 lanes, `floats` floats and
    /// `bytes` bytes (the levels L of a block), so quantizing a row allocates nothing on the heap.
    @inline(__always)
    static func withScratch<R>(
        simd: Int, floats: Int, bytes: Int,
        _ body: (UnsafeMutablePointer<SIMD4<Float>>, UnsafeMutablePointer<Float>, UnsafeMutableRawPointer) -> R
    ) -> R {
        let floatVectors = (floats + 3) / 4
        let byteVectors = (bytes + 15) / 16
        return withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: simd + floatVectors + byteVectors) { buf in
            let base = buf.baseAddress!
            let f = UnsafeMutableRawPointer(base + simd).bindMemory(to: Float.self, capacity: floats)
            return body(base, f, UnsafeMutableRawPointer(base + simd + floatVectors))
        }
    }

    // MARK: lanes

    /// `v` clamped to [lo, hi] (lo ≤ hi), as `clamped(lowerBound:upperBound:)` computes it: that
    /// generic one was not inlined into the quantizers' loops (a call per four values, 2% of a plan).
    @inline(__always)
    static func clamp(_ v: SIMD4<Int32>, _ lo: SIMD4<Int32>, _ hi: SIMD4<Int32>) -> SIMD4<Int32> {
        let a = v.replacing(with: lo, where: v .< lo)
        return a.replacing(with: hi, where: a .> hi)
    }

    /// `nearestInt` lane-wise: the same bit arithmetic, four at a time.
    @inline(__always)
    static func nearestInt(_ v: SIMD4<Float>) -> SIMD4<Int32> {
        let bits = unsafeBitCast(v + SIMD4(repeating: 12_582_912), to: SIMD4<Int32>.self)
        return (bits & 0x007F_FFFF) &- 0x0040_0000
    }

    /// `fabsf` lane-wise: clears the sign bit, as fabsf does.
    @inline(__always)
    static func fabs(_ v: SIMD4<Float>) -> SIMD4<Float> {
        unsafeBitCast(unsafeBitCast(v, to: SIMD4<UInt32>.self) & 0x7FFF_FFFF, to: SIMD4<Float>.self)
    }

    @inline(__always)
    static func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    /// The second pass of every k-quant: each x of a sub-block to its level under the block's
    /// final, fp16-rounded scales, `clamp(nearest_int((x + dm)/d), lo, hi) + bias` as a byte, four
    /// at a time. With `symmetric` it is `x/d` as in q3_K and q6_K (no `+ dm`, so a −0 stays −0).
    @inline(__always)
    static func requantize(
        _ x: UnsafePointer<Float>, count: Int, symmetric: Bool, dm: Float, d: Float,
        lo: Int32, hi: Int32, bias: Int32, into L: UnsafeMutableRawPointer
    ) {
        let vlo = SIMD4<Int32>(repeating: lo), vhi = SIMD4<Int32>(repeating: hi)
        var i = 0
        while i < count {
            let v = load4(x + i)
            let q = symmetric ? v / d : (v + dm) / d
            let l = clamp(nearestInt(q), vlo, vhi) &+ bias
            for k in 0..<4 { L.storeBytes(of: UInt8(truncatingIfNeeded: l[k]), toByteOffset: i + k, as: UInt8.self) }
            i += 4
        }
    }

    // MARK: make_qkx2_quants

    /// SIMD4 scratch entries `makeQKX2Quants` needs for groups of `n`.
    static func qkx2ScratchCount(n: Int) -> Int { n }

    /// ggml `make_qkx2_quants`: an asymmetric (scale, min) fit of `n` values to 0...nmax, refined by
    /// trying nstep + 1 scales (rmin + rdelta·is + nmax)/(max - min) and keeping the one with the
    /// least weighted error (squared, or absolute with `useMad`). Returns the scale; `theMin` gets
    /// −min (≥ 0).
    ///
    /// A trial depends on the ones before it: accepting one replaces `min`, which the next trials
    /// use for their scale and offsets. So lanes are speculative: a pass evaluates four trials with
    /// the current min, they are accepted in ggml's order, and when an acceptance changes min the
    /// next pass starts at the trial after it. On normal-ish weights about 2.4 of the 21 trials of
    /// q4_K are accepted, mostly the first few, so this takes about 7 passes; four lanes rather
    /// than eight waste the least work on those restarts.
    @inline(__always)
    static func makeQKX2Quants(
        n: Int, nmax: Int32, x: UnsafePointer<Float>, weights: UnsafePointer<Float>,
        L: UnsafeMutablePointer<UInt8>, theMin: inout Float,
        rmin: Float, rdelta: Float, nstep: Int, useMad: Bool, scratch: UnsafeMutablePointer<SIMD4<Float>>
    ) -> Float {
        var min = x[0]
        var max = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < min { min = x[i] }
            if x[i] > max { max = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if min > 0 { min = 0 }
        if max == min {
            for i in 0..<n { L[i] = 0 }
            theMin = -min
            return 0
        }
        let iscale = Float(nmax) / (max - min)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = nearestInt(iscale * (x[i] - min))
            let lc = Swift.max(0, Swift.min(nmax, l))
            L[i] = UInt8(truncatingIfNeeded: lc)
            var diff = scale * Float(lc) + min - x[i]
            diff = useMad ? abs(diff) : diff * diff
            bestError += weights[i] * diff
        }
        if nstep < 1 {
            theMin = -min
            return scale
        }

        let lf = scratch // lf[i]: the four trials' levels for x[i], as floats
        let vnmax = SIMD4<Int32>(repeating: nmax)
        var start = 0
        while start <= nstep {
            let range = max - min
            var isc = SIMD4<Float>()
            for k in 0..<4 {
                // Lanes past nstep only fill the vector; they are never accepted.
                isc[k] = (rmin + rdelta * Float(start + k) + Float(nmax)) / range
            }
            var sumL = SIMD4<Float>()
            var sumL2 = SIMD4<Float>()
            var sumXL = SIMD4<Float>()
            for i in 0..<n {
                let xi = x[i]
                let l = clamp(nearestInt(isc * (xi - min)), .zero, vnmax)
                let fl = SIMD4<Float>(l)
                lf[i] = fl
                let wl = weights[i] * fl
                sumL += wl
                sumL2 += wl * fl
                sumXL += wl * xi
            }
            let D = sumW * sumL2 - sumL * sumL
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            for k in 0..<4 where thisMin[k] > 0 {
                thisMin[k] = 0
                thisScale[k] = sumXL[k] / sumL2[k]
            }
            // Computed for every lane; ggml computes it only where D > 0, and only those are read.
            var curError = SIMD4<Float>()
            for i in 0..<n {
                var diff = thisScale * lf[i] + thisMin - x[i]
                diff = useMad ? fabs(diff) : diff * diff
                curError += weights[i] * diff
            }
            var next = start + 4
            for k in 0..<Swift.min(4, nstep + 1 - start) where D[k] > 0 && curError[k] < bestError {
                bestError = curError[k]
                scale = thisScale[k]
                for i in 0..<n { L[i] = UInt8(lf[i][k]) }
                let minChanged = thisMin[k].bitPattern != min.bitPattern
                min = thisMin[k]
                if minChanged {
                    next = start + k + 1
                    break
                }
            }
            start = next
        }
        theMin = -min
        return scale
    }

    // MARK: make_qx_quants

    /// ggml `make_qx_quants` for rmse_type 1 with weights (`qw`, or x² when ggml passes NULL):
    /// a symmetric scale for `n` values on -nmax...nmax-1, refined over 18 trial scales
    /// -(nmax + 0.1·is)/max, is = ±1...±9, by weighted least squares. `L` gets level + nmax.
    /// Unlike make_qkx2_quants no trial changes the next one, so all 19 are lanes of one pass.
    @inline(__always)
    static func makeQXQuants(
        n: Int, nmax: Int32, x: UnsafePointer<Float>, w: UnsafePointer<Float>, L: UnsafeMutablePointer<Int8>
    ) -> Float {
        var max: Float = 0
        var amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; max = x[i] }
        }
        if amax < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        // Lane k tries is = k - 9; lane 9 (is = 0) is ggml's first pass, since
        // -(nmax + 0.1f*0)/max has the same bits as -nmax/max. Lane 19 pads to 20.
        typealias Lanes = (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>)
        @inline(__always)
        func lane(_ t: Lanes, _ k: Int) -> Float {
            switch k >> 2 {
            case 0: t.0[k & 3]
            case 1: t.1[k & 3]
            case 2: t.2[k & 3]
            case 3: t.3[k & 3]
            default: t.4[k & 3]
            }
        }
        let fnmax = Float(nmax)
        @inline(__always)
        func trialScales(_ v: Int) -> SIMD4<Float> {
            var r = SIMD4<Float>()
            for k in 0..<4 { r[k] = -(fnmax + pointOne * Float(4 * v + k - 9)) / max }
            return r
        }
        let isc: Lanes = (trialScales(0), trialScales(1), trialScales(2), trialScales(3), trialScales(4))
        var sumLX: Lanes = (.zero, .zero, .zero, .zero, .zero)
        var sumL2 = sumLX
        let lo = SIMD4<Int32>(repeating: -nmax)
        let hi = SIMD4<Int32>(repeating: nmax - 1)
        for i in 0..<n {
            let xi = x[i]
            let wi = w[i]
            let wxi = wi * xi
            @inline(__always)
            func accumulate(_ isc: SIMD4<Float>, _ slx: inout SIMD4<Float>, _ sl2: inout SIMD4<Float>) {
                let fl = SIMD4<Float>(clamp(nearestInt(isc * xi), lo, hi))
                slx += wxi * fl
                sl2 += wi * fl * fl
            }
            accumulate(isc.0, &sumLX.0, &sumL2.0)
            accumulate(isc.1, &sumLX.1, &sumL2.1)
            accumulate(isc.2, &sumLX.2, &sumL2.2)
            accumulate(isc.3, &sumLX.3, &sumL2.3)
            accumulate(isc.4, &sumLX.4, &sumL2.4)
        }
        var scale: Float = lane(sumL2, 9) != 0 ? lane(sumLX, 9) / lane(sumL2, 9) : 0
        var best = scale * lane(sumLX, 9)
        var chosen = 9
        for k in 0..<19 where k != 9 {
            let slx = lane(sumLX, k)
            let sl2 = lane(sumL2, k)
            if sl2 > 0 && slx * slx > best * sl2 {
                chosen = k
                scale = slx / sl2
                best = scale * slx
            }
        }
        let iscale = lane(isc, chosen)
        for i in 0..<n {
            let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
            L[i] = Int8(truncatingIfNeeded: nmax + l)
        }
        return scale
    }

    // MARK: make_q3_quants

    /// Floats of scratch `makeQ3Quants` needs for groups of `n`.
    static func q3ScratchCount(n: Int) -> Int { 4 * n }

    /// ggml `make_q3_quants` with do_rmse: a symmetric fit to -nmax...nmax-1 improved by up to five
    /// rounds of coordinate descent. Each step depends on the last, so this stays scalar; what
    /// ggml recomputes per step and is the same every time (x², x²·x, and each element's current
    /// terms of the two sums) is kept in `scratch`. `L` gets level + nmax (or 0 for an all-zero
    /// group, as in ggml).
    @inline(__always)
    static func makeQ3Quants(
        n: Int, nmax: Int32, x: UnsafePointer<Float>, L: UnsafeMutablePointer<Int8>, scratch: UnsafeMutablePointer<Float>
    ) -> Float {
        var max: Float = 0
        var amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; max = x[i] }
        }
        if amax < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let w = scratch          // x[i]*x[i]
        let wx = scratch + n     // w*x[i]
        let termLX = wx + n      // w*x[i]*L[i] for the current L[i]
        let termL2 = termLX + n  // w*L[i]*L[i] for the current L[i]
        let iscale = Float(-nmax) / max
        var sumlx: Float = 0
        var suml2: Float = 0
        for i in 0..<n {
            let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
            L[i] = Int8(truncatingIfNeeded: l)
            let wi = x[i] * x[i]
            let fl = Float(l)
            w[i] = wi
            wx[i] = wi * x[i]
            termLX[i] = wx[i] * fl
            termL2[i] = wi * fl * fl
            sumlx += termLX[i]
            suml2 += termL2[i]
        }
        for _ in 0..<5 {
            var nChanged = 0
            for i in 0..<n {
                var slx = sumlx - termLX[i]
                if slx > 0 {
                    var sl2 = suml2 - termL2[i]
                    let newL = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(x[i] * sl2 / slx)))
                    if newL != Int32(L[i]) {
                        let fnl = Float(newL)
                        let tlx = wx[i] * fnl
                        let tl2 = w[i] * fnl * fnl
                        slx += tlx
                        sl2 += tl2
                        if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                            L[i] = Int8(truncatingIfNeeded: newL)
                            termLX[i] = tlx
                            termL2[i] = tl2
                            sumlx = slx
                            suml2 = sl2
                            nChanged += 1
                        }
                    }
                }
            }
            if nChanged == 0 { break }
        }
        for i in 0..<n { L[i] = L[i] &+ Int8(truncatingIfNeeded: nmax) }
        return suml2 > 0 ? sumlx / suml2 : 0
    }

    // MARK: importance (ggml's quant_weights)

    /// Σ x² over `n` elements as ggml's loops add it: one float chain, in element order.
    @inline(__always)
    static func sumOfSquares(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var sum: Float = 0
        for j in 0..<n { sum += x[j] * x[j] }
        return sum
    }

    /// ggml's imatrix weighting, `qw[j] * sqrtf(sigma2 + x[j]*x[j])`: the importance of the column
    /// times the element's size against the spread `sigma2`, so that small elements of important
    /// columns still count and large ones count more.
    @inline(__always)
    static func importanceWeights(
        _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, sigma2: Float, count n: Int, into w: UnsafeMutablePointer<Float>
    ) {
        for j in 0..<n { w[j] = qw[j] * (sigma2 + x[j] * x[j]).squareRoot() }
    }

    /// Σ of `n` weights in element order (ggml's `sumw` / `sw[j]`).
    @inline(__always)
    static func sum(_ w: UnsafePointer<Float>, count n: Int) -> Float {
        var s: Float = 0
        for l in 0..<n { s += w[l] }
        return s
    }

    /// ggml `make_qkx3_quants` as every imatrix path calls it: non-NULL weights, rmin −0.9,
    /// rdelta 0.05, 37 trials, squared error. With weights given it is make_qkx2_quants statement
    /// for statement but for the early exit's `max <= min`, which equals `max == min` there: once
    /// min is clamped to ≤ 0, max (≥ the unclamped min) cannot be below it, and a NaN x[0] fails
    /// both tests. So the lane-parallel search above serves for both.
    @inline(__always)
    static func makeQKX3Quants(
        n: Int, nmax: Int32, x: UnsafePointer<Float>, weights: UnsafePointer<Float>,
        L: UnsafeMutablePointer<UInt8>, theMin: inout Float, scratch: UnsafeMutablePointer<SIMD4<Float>>
    ) -> Float {
        makeQKX2Quants(n: n, nmax: nmax, x: x, weights: weights, L: L, theMin: &theMin,
                       rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false, scratch: scratch)
    }

    /// ggml `make_qp_quants`: the super-block scale for `n` non-negative sub-block scales (or
    /// mins) on 0...nmax, weighted by `quantWeights` (each sub-block's Σ weight): 9 trial scales,
    /// then up to five rounds of coordinate descent. Small (n is 8 or 16) and sequential, so a
    /// plain port. ggml's L is uint8_t: a negative level (only from a negative input) wraps, and
    /// the descent then reads the wrapped value, as here.
    static func makeQPQuants(
        n: Int, nmax: Int32, x: UnsafePointer<Float>, L: UnsafeMutablePointer<UInt8>, quantWeights: UnsafePointer<Float>
    ) -> Float {
        var max: Float = 0
        for i in 0..<n { max = max > x[i] ? max : x[i] }  // C's MAX macro, so a NaN sticks
        if max < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        var iscale = Float(nmax) / max
        for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestInt(iscale * x[i])) }
        let scale = 1 / iscale
        var bestMSE: Float = 0
        for i in 0..<n {
            let diff = x[i] - scale * Float(L[i])
            let w = quantWeights[i]
            bestMSE += w * diff * diff
        }
        for step in -4...4 where step != 0 {
            let iscaleStep = (pointOne * Float(step) + Float(nmax)) / max
            let scaleStep = 1 / iscaleStep
            var mse: Float = 0
            for i in 0..<n {
                let l = Swift.min(nmax, nearestInt(iscaleStep * x[i]))
                let diff = x[i] - scaleStep * Float(l)
                let w = quantWeights[i]
                mse += w * diff * diff
            }
            if mse < bestMSE {
                bestMSE = mse
                iscale = iscaleStep
            }
        }
        var sumlx: Float = 0
        var suml2: Float = 0
        for i in 0..<n {
            // The sums take the int level, before the store into L narrows it.
            let l = Swift.min(nmax, nearestInt(iscale * x[i]))
            L[i] = UInt8(truncatingIfNeeded: l)
            let w = quantWeights[i]
            let fl = Float(l)
            sumlx += w * x[i] * fl
            suml2 += w * fl * fl
        }
        for _ in 0..<5 {
            var nChanged = 0
            for i in 0..<n {
                let w = quantWeights[i]
                let li = Float(L[i])
                var slx = sumlx - w * x[i] * li
                var sl2 = suml2 - w * li * li
                if slx > 0 && sl2 > 0 {
                    let newL = Swift.min(nmax, nearestInt(x[i] * sl2 / slx))
                    if newL != Int32(L[i]) {
                        let fnl = Float(newL)
                        slx += w * x[i] * fnl
                        sl2 += w * fnl * fnl
                        if slx * slx * suml2 > sumlx * sumlx * sl2 {
                            L[i] = UInt8(truncatingIfNeeded: newL)
                            sumlx = slx
                            suml2 = sl2
                            nChanged += 1
                        }
                    }
                }
            }
            if nChanged == 0 { break }
        }
        return suml2 > 0 ? sumlx / suml2 : 0
    }
}
