import Foundation
import Inference

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

/// log p(target) from logits, with the max subtracted and the sum in double (llama-perplexity).
func logSoftmax(_ logits: UnsafeMutablePointer<Float>, _ n: Int, _ target: Int) -> Double {
    var mx = logits[0]
    for i in 1..<n { mx = max(mx, logits[i]) }
    var sum = 0.0
    for i in 0..<n { sum += Double(expf(logits[i] - mx)) }
    return Double(logits[target] - mx) - log(sum)
}
