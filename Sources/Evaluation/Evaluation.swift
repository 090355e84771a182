import Foundation
import GGUFWriter
import Inference
import MappedIO
import Workers

/// One evaluation pass: perplexity of a model and, with a reference (a second model, or a saved
/// logits file), its KL divergence from it — computed chunk by chunk, so memory stays at one
/// chunk's logits whatever the text length.
public struct Evaluation {
    public enum Reference {
        case none
        case model(Forward)
        case file(LogitsFileReader)
    }

    public struct Output {
        public var perplexity = PerplexityRun.Result()
        public var kld: KLDStats?
    }

    public let forward: Forward
    public let nCtx: Int
    public let bos: Int32?

    public init(forward: Forward, nCtx: Int, bos: Int32?) {
        self.forward = forward
        self.nCtx = nCtx
        self.bos = bos
    }

    /// - Parameter source: the file the tokens came from (the text, or the token-id list), named
    ///   in errors about them.
    public func run(tokens: [Int32], source: String, maxChunks: Int?, reference: Reference, saveLogits: String?,
                    progress: ((Int, Int, Output) -> Void)? = nil) throws -> Output {
        var tokens = tokens
        var source = source
        let model = forward.model
        let nVocab = model.hparams.nVocab
        switch reference {
        case .none: break
        case .file(let r):
            guard r.nCtx == nCtx else { throw EvaluationError.logitsFile(path: r.file.path, detail: "made with --ctx \(r.nCtx), not \(nCtx)") }
            guard r.nVocab == nVocab else {
                throw EvaluationError.logitsFile(path: r.file.path, detail: "made for a vocabulary of \(r.nVocab), the model has \(nVocab)")
            }
            tokens = r.tokens
            source = r.file.path
        case .model(let ref):
            guard ref.model.hparams.nVocab == nVocab else {
                throw EvaluationError.referenceVocabulary(path: ref.model.path, reference: ref.model.hparams.nVocab, model: nVocab)
            }
        }
        guard nCtx >= 4 else { throw EvaluationError.tooShort(path: source, detail: "a chunk of \(nCtx) tokens is too short (4 at least)") }
        let available = tokens.count / nCtx
        var nChunks = min(available, maxChunks ?? available)
        if case .file(let r) = reference { nChunks = min(nChunks, r.nChunk) }
        guard nChunks >= 1 else {
            throw EvaluationError.tooShort(path: source, detail: "gives \(tokens.count) tokens, fewer than one chunk of \(nCtx)")
        }
        try model.checkTokens(tokens[0..<(nChunks * nCtx)], from: source)
        if let b = bos { try model.checkTokens([b], from: model.path) }
        let recordBytes = checkedProduct(KLDBase.recordLength(nVocab: nVocab), 2, nCtx - 1 - nCtx / 2) ?? Int.max
        try model.checkMemory(tokens: nCtx, extra: recordBytes, path: source)
        if case .model(let ref) = reference { try ref.model.checkMemory(tokens: nCtx, extra: recordBytes, path: ref.model.path) }
        let nv = KLDBase.recordLength(nVocab: nVocab)
        let first = nCtx / 2
        let scored = nCtx - 1 - first
        let writer = try saveLogits.map { (p: String) throws -> LogitsFileWriter in
            try LogitsFileWriter(path: p, nCtx: nCtx, nVocab: nVocab, tokens: Array(tokens[0..<(nChunks * nCtx)]))
        }
        var out = Output()
        if case .none = reference {} else { out.kld = KLDStats() }
        out.perplexity.tokensPerChunk = nCtx
        let records = UnsafeMutablePointer<UInt16>.allocate(capacity: nv * scored)
        defer { records.deallocate() }
        let start = Date()
        for c in 0..<nChunks {
            var chunk = Array(tokens[(c * nCtx)..<((c + 1) * nCtx)])
            if let b = bos { chunk[0] = b }
            var base: UnsafePointer<UInt16>? = nil
            switch reference {
            case .none: break
            case .file(let r): base = r.chunk(c)
            case .model(let ref):
                let rl = ref.logits(chunk, outputsFrom: first)
                Parallel.forEach(scored, threads: forward.threads) { j in
                    KLDBase.encode(rl.row(j), nVocab: nVocab, target: Int(tokens[c * nCtx + first + j + 1]), into: records + j * nv)
                }
                rl.free()
                base = UnsafePointer(records)
            }
            // only the scored positions' logits: the output matrix is a fifth of the model's work
            let logits = forward.logits(chunk, outputsFrom: first)
            // each position's softmax over the vocabulary is independent work; the sums are taken
            // afterwards in position order, so results do not depend on the thread count
            let nlls = UnsafeMutablePointer<Double>.allocate(capacity: scored)
            let positions = UnsafeMutablePointer<KLDStats.Position>.allocate(capacity: scored)
            defer { nlls.deallocate(); positions.deallocate() }
            Parallel.forEach(scored, threads: forward.threads) { j in
                let target = Int(tokens[c * nCtx + first + j + 1])
                let row = logits.row(j)
                if let b = base { (positions + j).initialize(to: KLDStats.measure(row, nVocab: nVocab, base: b + j * nv, target: target)) }
                nlls[j] = -logSoftmax(row, nVocab, target)
            }
            // a chunk's reference records are read once: out of our RSS (Gemma 3's 262k vocabulary
            // makes them 5 GB over 10k tokens)
            if case .file(let r) = reference { r.release(chunk: c) }
            for j in 0..<scored {
                try PerplexityRun.checkFinite(nlls[j], model: model.path, chunk: c, position: first + j)
                if base != nil { out.kld!.add(positions[j]) }
                out.perplexity.nll += nlls[j]
                out.perplexity.nll2 += nlls[j] * nlls[j]
                out.perplexity.tokensScored += 1
            }
            if let w = writer {
                Parallel.forEach(scored, threads: forward.threads) { j in
                    KLDBase.encode(logits.row(j), nVocab: nVocab, target: Int(tokens[c * nCtx + first + j + 1]), into: records + j * nv)
                }
                try w.append(UnsafeRawBufferPointer(start: records, count: nv * scored * 2))
            }
            logits.free()
            out.perplexity.chunks = c + 1
            out.perplexity.seconds = Date().timeIntervalSince(start)
            progress?(c + 1, nChunks, out)
        }
        try writer?.commit()
        return out
    }
}

extension Model {
    /// The BOS id llama-perplexity puts first in each chunk: only when the vocabulary adds BOS
    /// (`tokenizer.ggml.add_bos_token`, which llama.cpp defaults to true for SentencePiece vocabularies).
    public var chunkBOS: Int32? {
        let add = metadata[GGUFKey.Tokenizer.addBosToken].map { $0 == .bool(true) }
            ?? (metadata[GGUFKey.Tokenizer.model]?.stringValue == "llama")
        guard add else { return nil }
        // Without an explicit id llama.cpp uses its per-vocabulary default (SPM 1, BPE 11); an
        // explicit id the vocabulary does not hold keeps the default, as llama_vocab::load does.
        let fallback = metadata[GGUFKey.Tokenizer.model]?.stringValue == "llama" ? 1 : 11
        let explicit = metadata[GGUFKey.Tokenizer.bosTokenId]?.intValue
        for id in [explicit, fallback] { if let id, id >= 0, id < hparams.nVocab { return Int32(id) } }
        return nil
    }
}
