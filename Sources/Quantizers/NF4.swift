/// bitsandbytes' 4-bit NormalFloat (QLoRA): blocks of 64 weights scaled by their absmax, each
/// weight the nearest of 16 normal-distribution quantiles. GGUF has no NF4 type, so this exists to
/// measure NF4's quality in memory; files requested as NF4 are written as IQ4_NL, its nearest
/// loadable relative (also a 16-entry non-uniform codebook, but 32-weight blocks with an fp16 scale).
public enum NF4 {
    public static let blockSize = 64

    /// `bitsandbytes.functional.get_4bit_type("nf4")`.
    public static let codebook: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// bitsandbytes `dQuantizeNF4`: the decision tree over the midpoints between code values.
    @inline(__always)
    public static func code(_ x: Float) -> UInt8 {
        if x > 0.03979014977812767 {
            if x > 0.3893125355243683 {
                if x > 0.6427869200706482 { return x > 0.8614784181118011 ? 15 : 14 }
                return x > 0.5016634166240692 ? 13 : 12
            }
            if x > 0.2035212516784668 { return x > 0.2920137718319893 ? 11 : 10 }
            return x > 0.1202552504837513 ? 9 : 8
        }
        if x > -0.33967943489551544 {
            if x > -0.13791173323988914 { return x > -0.045525018125772476 ? 7 : 6 }
            return x > -0.23460740596055984 ? 5 : 4
        }
        if x > -0.6106329262256622 { return x > -0.4599952697753906 ? 3 : 2 }
        return x > -0.8480964004993439 ? 1 : 0
    }

    /// Quantizes then dequantizes `x` in place (what a kernel computing with NF4 weights sees).
    /// With `doubleQuant`, the per-block absmax values are themselves quantized as bitsandbytes'
    /// `compress_statistics` does: mean removed, 8-bit dynamic code per 256 absmax values.
    public static func roundTrip(_ x: UnsafeMutableBufferPointer<Float>, doubleQuant: Bool = false) {
        let nb = (x.count + blockSize - 1) / blockSize
        var absmax = [Float](repeating: 0, count: nb)
        for b in 0..<nb {
            var m: Float = 0
            for i in (b * blockSize)..<min(x.count, (b + 1) * blockSize) { m = max(m, abs(x[i])) }
            absmax[b] = m
        }
        let scales = doubleQuant ? quantizeStatistics(absmax) : absmax
        for b in 0..<nb {
            let m = absmax[b]
            let inv: Float = m > 0 ? 1 / m : 0
            for i in (b * blockSize)..<min(x.count, (b + 1) * blockSize) {
                x[i] = codebook[Int(code(x[i] * inv))] * scales[b]
            }
        }
    }

    /// `create_dynamic_map(signed=True)`: 8-bit dynamic-exponent code used for the statistics.
    static let dynamicMap: [Float] = {
        var data: [Float] = []
        let maxExp = 7, nonSign = 7
        for i in 0..<maxExp {
            let items = (1 << (i + nonSign - maxExp)) + 1
            let step = (Float(1) - 0.1) / Float(items - 1)
            let bounds = (0..<items).map { 0.1 + Float($0) * step }
            let scale = Float(pow10(-(maxExp - 1) + i))
            for j in 0..<(items - 1) { data.append(scale * (bounds[j] + bounds[j + 1]) / 2) }
            for j in 0..<(items - 1) { data.append(-scale * (bounds[j] + bounds[j + 1]) / 2) }
        }
        data.append(0)
        data.append(1)
        while data.count < 256 { data.append(0) }
        return data.sorted()
    }()

    static func pow10(_ e: Int) -> Double {
        var r = 1.0
        for _ in 0..<abs(e) { r *= 10 }
        return e < 0 ? 1 / r : r
    }

    static func quantizeStatistics(_ absmax: [Float]) -> [Float] {
        let mean = absmax.reduce(0, +) / Float(max(absmax.count, 1))
        var out = absmax
        let block = 256
        for start in stride(from: 0, to: absmax.count, by: block) {
            let end = min(absmax.count, start + block)
            var m: Float = 0
            for i in start..<end { m = max(m, abs(absmax[i] - mean)) }
            let inv: Float = m > 0 ? 1 / m : 0
            for i in start..<end {
                let v = (absmax[i] - mean) * inv
                out[i] = nearest(v) * m + mean
            }
        }
        return out
    }

    static func nearest(_ v: Float) -> Float {
        var lo = 0, hi = dynamicMap.count - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if dynamicMap[mid] <= v { lo = mid } else { hi = mid }
        }
        return abs(dynamicMap[lo] - v) <= abs(dynamicMap[hi] - v) ? dynamicMap[lo] : dynamicMap[hi]
    }
}
