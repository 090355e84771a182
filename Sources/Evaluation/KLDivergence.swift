import Foundation
import Inference

/// The reference model's log-probabilities in llama-perplexity's `--kl-divergence-base` encoding:
/// per scored position, two floats (scale, min log-prob) then n_vocab uint16 steps above the min,
/// padded to `nv = 2·((n_vocab+1)/2) + 4` uint16s. Files written here are read by llama-perplexity
/// and vice versa: "_logits_", n_ctx, n_vocab, n_chunk (int32), the tokens, then the records.
public enum KLDBase {
    public static func recordLength(nVocab: Int) -> Int { 2 * ((nVocab + 1) / 2) + 4 }

    /// Encodes one position's logits (llama-perplexity's `log_softmax(n_vocab, logits, log_prob, tok)`);
    /// returns the NLL of `target`.
    @discardableResult
    public static func encode(_ logits: UnsafePointer<Float>, nVocab n: Int, target: Int,
                              into rec: UnsafeMutablePointer<UInt16>) -> Double {
        var mx = logits[0], mn = logits[0]
        for i in 1..<n { mx = max(mx, logits[i]); mn = min(mn, logits[i]) }
        mn = max(mn, mx - 16)
        var sumExp = 0.0
        for i in 0..<n { sumExp += Double(expf(logits[i] - mx)) }
        let logSumExp = Float(log(sumExp))
        let minLogProb = mn - mx - logSumExp
        let scale = (mx - mn) / 65535
        let d = UnsafeMutableRawPointer(rec)
        d.storeBytes(of: scale, as: Float.self)
        d.storeBytes(of: minLogProb, toByteOffset: 4, as: Float.self)
        let q = rec + 4
        if scale != 0 {
            let inv = 1 / scale
            for i in 0..<n { q[i] = logits[i] > mn ? UInt16(truncatingIfNeeded: nearestInt(inv * (logits[i] - mn))) : 0 }
        } else {
            for i in 0..<n { q[i] = 0 }
        }
        return Double(mx + logSumExp - logits[target])
    }

    @inline(__always)
    static func nearestInt(_ f: Float) -> Int32 {
        Int32(bitPattern: (f + 12_582_912).bitPattern & 0x007F_FFFF) &- 0x0040_0000
    }
}

/// Running KL-divergence statistics, accumulated as llama-perplexity does.
public struct KLDStats: Sendable {
    public var sumNLL = 0.0, sumNLL2 = 0.0, sumNLLBase = 0.0, sumNLLBase2 = 0.0, sumNLLNLLBase = 0.0
    public var sumKLD = 0.0, sumKLD2 = 0.0, sumPDiff = 0.0, sumPDiff2 = 0.0, sumPDiff4 = 0.0
    public var maxPDiff: Float = 0
    public var sameTop = 0, count = 0
    public var kldValues: [Float] = []

    public init() {}

    /// What one scored position contributes; computed independently per position (in parallel),
    /// then accumulated in position order so the sums do not depend on the thread count.
    public struct Position: Sendable {
        public var nll: Float = 0, nllBase: Float = 0
        public var kld = 0.0
        public var sameTop = false
        public var pDiff: Float = 0
        public init() {}
    }

    /// One position: our logits against the reference record (llama-perplexity's kl_divergence).
    public static func measure(_ logits: UnsafePointer<Float>, nVocab n: Int, base rec: UnsafePointer<UInt16>,
                               target: Int) -> Position {
        var mx = logits[0]
        var imax = 0
        for i in 1..<n where logits[i] > mx { mx = logits[i]; imax = i }
        var sumExp = 0.0
        for i in 0..<n { sumExp += Double(expf(logits[i] - mx)) }
        let logSumExp = Float(log(sumExp))
        let raw = UnsafeRawPointer(rec)
        let scale = raw.load(as: Float.self)
        let minLogProb = raw.load(fromByteOffset: 4, as: Float.self)
        let q = rec + 4
        var p = Position()
        p.nll = mx + logSumExp - logits[target]
        p.nllBase = -(scale * Float(q[target]) + minLogProb)
        let top = mx + logSumExp
        var sum = 0.0
        var imaxBase = -1
        var pMax: Float = 0
        for i in 0..<n {
            let pl = scale * Float(q[i]) + minLogProb
            if i == 0 || pl > pMax { pMax = pl; imaxBase = i }
            if pl > -16 { sum += Double(expf(pl) * (pl - logits[i] + top)) }
        }
        p.kld = sum
        p.sameTop = imax == imaxBase
        p.pDiff = expf(-p.nll) - expf(-p.nllBase)
        return p
    }

    public mutating func add(_ p: Position) {
        sumNLL += Double(p.nll); sumNLL2 += Double(p.nll * p.nll)
        sumNLLBase += Double(p.nllBase); sumNLLBase2 += Double(p.nllBase * p.nllBase)
        sumNLLNLLBase += Double(p.nll * p.nllBase)
        sumKLD += p.kld; sumKLD2 += p.kld * p.kld
        kldValues.append(Float(p.kld))
        count += 1
        if p.sameTop { sameTop += 1 }
        sumPDiff += Double(p.pDiff)
        let d2 = Double(p.pDiff * p.pDiff)
        sumPDiff2 += d2; sumPDiff4 += d2 * d2
        maxPDiff = max(maxPDiff, abs(p.pDiff))
    }

    /// One position: our logits against the reference record.
    public mutating func add(_ logits: UnsafePointer<Float>, nVocab n: Int, base rec: UnsafePointer<UInt16>, target: Int) {
        add(Self.measure(logits, nVocab: n, base: rec, target: target))
    }

    static func meanAndError(_ s: Double, _ s2: Double, _ n: Int) -> (Double, Double) {
        let m = s / Double(n)
        let v = s2 / Double(n) - m * m
        return (m, n > 1 && v > 0 ? sqrt(v / Double(n - 1)) : 0)
    }

    public var kldMean: (Double, Double) { Self.meanAndError(sumKLD, sumKLD2, count) }
    public var ppl: Double { exp(sumNLL / Double(count)) }
    public var pplBase: Double { exp(sumNLLBase / Double(count)) }
    public var sameTopPct: Double { 100 * Double(sameTop) / Double(max(count, 1)) }
    public var meanPDiffPct: Double { 100 * sumPDiff / Double(max(count, 1)) }
    public var rmsPDiffPct: Double { 100 * sqrt(sumPDiff2 / Double(max(count, 1))) }

    public func kldQuantile(_ q: Double) -> Double {
        guard !kldValues.isEmpty else { return 0 }
        let s = kldValues.sorted()
        let idx = min(s.count - 1, max(0, Int((q * Double(s.count - 1)).rounded())))
        return Double(s[idx])
    }
}
