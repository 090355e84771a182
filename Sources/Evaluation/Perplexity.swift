import Foundation
import Inference
import MappedIO

/// The perplexity figures of a run of llama-perplexity's method (see `Evaluation`).
public enum PerplexityRun {
    public struct Result: Sendable {
        public var tokensScored = 0
        public var chunks = 0
        public var nll = 0.0
        public var nll2 = 0.0
        public var seconds = 0.0
        public var ppl: Double { exp(nll / Double(max(tokensScored, 1))) }
        /// llama-perplexity's "+/-": the standard error of the mean NLL, carried to PPL.
        public var pplStderr: Double {
            let n = Double(tokensScored)
            let mean = nll / n
            let v = nll2 / n - mean * mean
            return v > 0 && n > 1 ? sqrt(v / (n - 1)) * ppl : 0
        }
        public var tokensPerSecond: Double { seconds > 0 ? Double(chunks) * Double(tokensPerChunk) / seconds : 0 }
        public var tokensPerChunk = 0
    }
}

/// log p(target) from logits, with the max subtracted and the sum in double (llama-perplexity);
/// NaN when any logit is inf or NaN (weights holding inf/NaN), which `checkFinite` turns into an error.
func logSoftmax(_ logits: UnsafeMutablePointer<Float>, _ n: Int, _ target: Int) -> Double {
    var mx = logits[0]
    var special: UInt32 = 0
    for i in 0..<n {
        mx = max(mx, logits[i])
        special |= UInt32(truncatingIfNeeded: (logits[i].bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0)
    }
    guard special == 0 else { return .nan }
    var sum = 0.0
    for i in 0..<n { sum += Double(expf(logits[i] - mx)) }
    return Double(logits[target] - mx) - log(sum)
}

extension PerplexityRun {
    /// A model whose logits are not finite has no perplexity: say so in one line rather than print
    /// `PPL = nan` and succeed. `position` counts from the chunk's first token.
    static func checkFinite(_ nll: Double, model: String, chunk: Int, position: Int) throws(EvaluationError) {
        guard !nll.isFinite else { return }
        throw .nonFiniteLogits(path: model, chunk: chunk, position: position)
    }
}
