import Foundation
import Inference

/// llama-perplexity's method: the text cut into non-overlapping chunks of `nCtx` tokens, BOS
/// replacing each chunk's first token when the vocabulary adds one, and only the second half of
/// each chunk scored (each scored token sees at least nCtx/2 tokens of context).
public struct PerplexityRun {
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

    public let forward: Forward
    public let nCtx: Int
    public let bos: Int32?

    public init(forward: Forward, nCtx: Int, bos: Int32?) {
        self.forward = forward
        self.nCtx = nCtx
        self.bos = bos
    }

    /// Runs up to `maxChunks` chunks; `chunkDone` receives each chunk's logits before they are freed.
    public func run(tokens: [Int32], maxChunks: Int? = nil, progress: ((Int, Int, Result) -> Void)? = nil,
                    chunkDone: ((Int, [Int32], Matrix) -> Void)? = nil) -> Result {
        let available = tokens.count / nCtx
        let nChunks = min(available, maxChunks ?? available)
        var r = Result()
        r.tokensPerChunk = nCtx
        let start = Date()
        for c in 0..<nChunks {
            var chunk = Array(tokens[(c * nCtx)..<((c + 1) * nCtx)])
            if let b = bos { chunk[0] = b }
            let logits = forward.logits(chunk)
            let first = nCtx / 2
            for j in first..<(nCtx - 1) {
                let target = Int(tokens[c * nCtx + j + 1])
                let v = -logSoftmax(logits.row(j), logits.cols, target)
                r.nll += v
                r.nll2 += v * v
                r.tokensScored += 1
            }
            chunkDone?(c, chunk, logits)
            logits.free()
            r.chunks = c + 1
            r.seconds = Date().timeIntervalSince(start)
            progress?(c + 1, nChunks, r)
        }
        return r
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
