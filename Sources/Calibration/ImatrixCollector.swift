import Foundation
import GGUFWriter
import Inference
import MappedIO
import Tokenizer

/// Collects an importance matrix the way llama-imatrix does (tools/imatrix/imatrix.cpp), with our
/// forward pass: the text is cut into non-overlapping chunks of `nCtx` tokens, BOS replaces a
/// chunk's first token when the vocabulary adds BOS, every position asks for logits, and every
/// product whose weight is named `blk.*` (and `output.weight` with `processOutput`) adds Σx² of its
/// input rows, in f32, and its row count.
public struct ImatrixCollector {
    public struct Options: Sendable {
        /// `-c`: tokens per chunk (llama-imatrix's `imatrix.chunk_size`).
        public var nCtx = 512
        /// `--chunks`: at most this many chunks (nil: all the text gives).
        public var maxChunks: Int?
        /// `--from-chunk`: chunks of text skipped before the first one evaluated.
        public var fromChunk = 0
        /// `--process-output`: record `output.weight` too (a tied output, `token_embd.weight`, never is).
        public var processOutput = false
        /// llama.cpp's `-b` / `-ub` defaults. They decide how chunks are grouped into micro-batches,
        /// and llama-imatrix ignores products over fewer than 16 rows, so they change which tokens count.
        public var nBatch = 2048
        public var nUbatch = 512

        public init(nCtx: Int = 512, maxChunks: Int? = nil, fromChunk: Int = 0, processOutput: Bool = false) {
            self.nCtx = nCtx
            self.maxChunks = maxChunks
            self.fromChunk = fromChunk
            self.processOutput = processOutput
        }
    }

    public struct Progress: Sendable {
        public var chunk: Int
        public var chunks: Int
        public var tokens: Int
        public var seconds: Double
        public var tokensPerSecond: Double { seconds > 0 ? Double(tokens) / seconds : 0 }
        public var eta: Double { chunk > 0 ? seconds / Double(chunk) * Double(chunks - chunk) : 0 }
    }

    public let model: Model
    public let engine: any MatMulEngine
    public let threads: Int
    public let options: Options

    public init(model: Model, engine: any MatMulEngine, threads: Int, options: Options) {
        self.model = model
        self.engine = engine
        self.threads = max(1, threads)
        self.options = options
    }

    /// Tokens of a calibration text as llama-imatrix gets them from `-f`: the file's bytes with one
    /// trailing newline dropped, escapes *not* processed (llama-imatrix turns `--escape` off),
    /// special tokens added, and parsed as text unless `parseSpecial`.
    public static func calibrationTokens(text: [UInt8], tokenizer: Tokenizer, parseSpecial: Bool = false) -> [Int32] {
        let prompt = Tokenizer.llamaCppFilePrompt(text, processEscapes: false)
        return prompt.withUnsafeBytes { tokenizer.encode(utf8: $0, addSpecial: true, parseSpecial: parseSpecial) }
    }

    /// Whether, for `chunks` chunks, every chunk runs as one forward call with every position recorded (llama.cpp's
    /// micro-batches for these options leave no short one and none under 16 rows) and nothing but
    /// the `blk.*` products counts: then Σx² is that of one plain forward pass per chunk, which
    /// `HessianStream.collectAll` sums the same way.
    public func isPlainForward(chunks: Int) -> Bool {
        guard !options.processOutput, options.fromChunk == 0, options.nCtx >= 4, chunks > 0 else { return false }
        // the group sizes `run` decodes: full groups, then what is left (3 chunks of 512 at once
        // leave micro-batches of 2 positions, which llama-imatrix does not record)
        let nSeq = max(1, options.nBatch / options.nCtx)
        return Set([min(nSeq, chunks), chunks % nSeq].filter { $0 > 0 }).allSatisfy { n in
            let ubatches = Self.microBatches(nCtx: options.nCtx, sequences: n, nBatch: options.nBatch, nUbatch: options.nUbatch)
            return Self.forwardCalls(ubatches).count == 1 && Self.recordedPositions(ubatches).allSatisfy { $0 }
        }
    }

    /// The text's tokens as `run` uses them (the skipped chunks removed) and how many chunks it
    /// evaluates, after every check `run` makes of the text, the model and the memory.
    public func checked(tokens: [Int32], datasets: [String], bos: Int32?) throws -> (tokens: [Int32], chunks: Int) {
        let nCtx = options.nCtx
        let source = datasets.last ?? ""
        guard nCtx >= 4 else { throw CalibrationError.text(path: source, detail: "context size \(nCtx) is too small (at least 4)") }
        var tokens = tokens
        if options.fromChunk > 0 {
            guard (options.fromChunk + 2) * nCtx < tokens.count else {
                throw CalibrationError.text(path: source, detail: "there will be not enough tokens left after removing \(options.fromChunk) chunks")
            }
            tokens.removeFirst(options.fromChunk * nCtx)
        }
        guard tokens.count >= 2 * nCtx else {
            throw CalibrationError.text(path: source, detail: "the text tokenizes to \(tokens.count) tokens; a context of \(nCtx) needs at least \(2 * nCtx)")
        }
        let available = tokens.count / nCtx
        let nChunk = min(available, options.maxChunks.map { max($0, 0) } ?? available)
        try model.checkTokens(tokens[0..<(nChunk * nCtx)], from: source)
        if let b = bos { try model.checkTokens([b], from: model.path) }
        try model.checkMemory(tokens: nCtx, path: source)
        return (tokens, nChunk)
    }

    /// Runs the model over `tokens` and returns the collected matrix. `datasets` names the text
    /// (`imatrix.datasets`); errors name `datasets.last`.
    public func run(tokens: [Int32], datasets: [String], bos: Int32?,
                    progress: ((Progress) -> Void)? = nil) throws -> ImportanceMatrix {
        let (tokens, nChunk) = try checked(tokens: tokens, datasets: datasets, bos: bos)
        let nCtx = options.nCtx
        let source = datasets.last ?? ""
        let recorder = ImatrixRecorder(inner: engine, processOutput: options.processOutput)
        let forward = Forward(model: model, engine: recorder, threads: threads)
        let nSeq = max(1, options.nBatch / nCtx)
        let start = Date()
        var done = 0
        for first in stride(from: 0, to: nChunk, by: nSeq) {
            let group = min(nSeq, nChunk - first)
            let ubatches = Self.microBatches(nCtx: nCtx, sequences: group, nBatch: options.nBatch, nUbatch: options.nUbatch)
            recorder.recorded = Self.recordedPositions(ubatches)
            let calls = Self.forwardCalls(ubatches)
            for c in first..<(first + group) {
                var chunk = Array(tokens[(c * nCtx)..<((c + 1) * nCtx)])
                if let b = bos { chunk[0] = b }
                // Logits are what llama-imatrix asks of every position, but only the output product's
                // input matters here, and our last layer runs on all positions whatever is asked of it.
                if calls.count == 1 {
                    recorder.segment = 0..<nCtx
                    forward.logits(chunk, outputsFrom: options.processOutput ? 0 : nCtx - 1).free()
                } else {
                    let cache = KVCache(model: model, capacity: nCtx)
                    for r in calls {
                        recorder.segment = r
                        forward.logits(Array(chunk[r]), cache: cache, outputsFrom: options.processOutput ? 0 : r.count - 1).free()
                    }
                }
                if let bad = recorder.firstNonFinite() {
                    throw CalibrationError.nonFiniteActivations(path: source, tensor: bad, chunk: c)
                }
                done += 1
                progress?(Progress(chunk: done, chunks: nChunk, tokens: done * nCtx, seconds: Date().timeIntervalSince(start)))
            }
        }
        return recorder.matrix(datasets: datasets, chunkSize: nCtx)
    }

    /// How llama-imatrix's llama.cpp cuts each chunk into micro-batches (positions of one sequence
    /// per micro-batch, and the rows that micro-batch has over all its sequences). It decodes
    /// `nBatch / nCtx` chunks at once as that many sequences, each in its own KV stream, and then
    /// splits "equally": a micro-batch takes `nUbatch / sequences` positions of every sequence
    /// (llama_batch_allocr::split_equal). A lone sequence (nCtx > nBatch / 2) is split in order,
    /// `nUbatch` at a time, within each batch of `min(nBatch, nCtx)` (split_simple).
    public static func microBatches(nCtx: Int, sequences: Int, nBatch: Int = 2048, nUbatch: Int = 512) -> [(positions: Range<Int>, rows: Int)] {
        var out: [(positions: Range<Int>, rows: Int)] = []
        if max(1, nBatch / nCtx) > 1 {
            // one position per sequence until another round would pass n_ubatch (the micro-batch is
            // min(n_ubatch, n_batch), and n_batch is at least 2·n_ctx here)
            let perSeq = max(1, nUbatch / sequences)
            var p = 0
            while p < nCtx {
                let k = min(perSeq, nCtx - p)
                out.append((p..<(p + k), sequences * k))
                p += k
            }
        } else {
            let batch = min(nBatch, nCtx)
            let ubatch = min(nUbatch, batch)
            var b = 0
            while b < nCtx {
                let bs = min(batch, nCtx - b)
                var u = 0
                while u < bs {
                    let rows = min(ubatch, bs - u)
                    out.append(((b + u)..<(b + u + rows), rows))
                    u += rows
                }
                b += bs
            }
        }
        return out
    }

    /// Which positions of a chunk reach the collector: llama-imatrix ignores products over fewer
    /// than 16 rows, i.e. whole micro-batches that small.
    public static func recordedPositions(_ ubatches: [(positions: Range<Int>, rows: Int)]) -> [Bool] {
        var out: [Bool] = []
        for u in ubatches { out += repeatElement(u.rows >= 16, count: u.positions.count) }
        return out
    }

    public static func recordedPositions(nCtx: Int, sequences: Int, nBatch: Int = 2048, nUbatch: Int = 512) -> [Bool] {
        recordedPositions(microBatches(nCtx: nCtx, sequences: sequences, nBatch: nBatch, nUbatch: nUbatch))
    }

    /// The forward calls that reproduce llama.cpp's attention per micro-batch: ggml-cpu runs flash
    /// attention tiled (f32) for 64 or more query rows of a sequence and row by row in f16 below
    /// that, and so does our forward pass per call. Micro-batches of 64+ positions run together
    /// (tiled attention gives each row the same result however rows are grouped); a shorter one
    /// runs alone, continuing the KV cache, as it does in llama.cpp.
    static func forwardCalls(_ ubatches: [(positions: Range<Int>, rows: Int)]) -> [Range<Int>] {
        var calls: [Range<Int>] = []
        var open: Range<Int>?
        for u in ubatches {
            if u.positions.count >= 64 {
                open = open.map { $0.lowerBound..<u.positions.upperBound } ?? u.positions
            } else {
                if let o = open { calls.append(o); open = nil }
                calls.append(u.positions)
            }
        }
        if let o = open { calls.append(o) }
        return calls
    }
}

/// A matmul engine that passes every product through to `inner` and, for the weights
/// llama-imatrix collects, first adds Σx² of the recorded input rows. The forward pass calls it
/// from one thread at a time (each product is parallel inside `inner`).
final class ImatrixRecorder: MatMulEngine, @unchecked Sendable {
    final class Stats {
        let values: UnsafeMutablePointer<Float>
        let ne0: Int
        var count: Int64 = 0
        init(ne0: Int) {
            self.ne0 = ne0
            values = .allocate(capacity: ne0)
            values.initialize(repeating: 0, count: ne0)
        }
        deinit { values.deallocate() }
    }

    let inner: any MatMulEngine
    let processOutput: Bool
    /// Per position of the current chunk: does its micro-batch reach the collector?
    var recorded: [Bool] = []
    /// The positions of the current forward call.
    var segment = 0..<0
    var segmentEnd: Int { segment.upperBound }
    var segmentRows: Int { segment.count }
    private(set) var stats: [String: Stats] = [:]
    private var touched: [String] = []

    init(inner: any MatMulEngine, processOutput: Bool) {
        self.inner = inner
        self.processOutput = processOutput
    }

    func collects(_ name: String) -> Bool {
        TensorName.isBlock(name) || (processOutput && name == TensorName.output)
    }

    func multiply(_ w: Weight, _ x: Matrix, into out: Matrix) {
        if collects(w.name) { accumulate(w.name, x) }
        inner.multiply(w, x, into: out)
    }

    private func accumulate(_ name: String, _ x: Matrix) {
        // x holds the x.rows positions before segmentEnd; only the output product may see a tail
        // (llama-imatrix asks every position for logits, so its last layer sees them all)
        precondition(x.rows == segmentRows || !TensorName.isBlock(name),
                     "\(name): the forward pass gave \(x.rows) of \(segmentRows) positions; an imatrix needs them all")
        let offset = segmentEnd - x.rows
        precondition(offset >= 0 && segmentEnd <= recorded.count, "\(name): \(x.rows) rows ending at \(segmentEnd)")
        var rows = 0
        var e: Stats? = stats[name]
        let n = x.cols
        for r in 0..<x.rows where recorded[offset + r] {
            if e == nil {
                let s = Stats(ne0: n)
                stats[name] = s
                e = s
            }
            precondition(e!.ne0 == n, "\(name): input of \(n) columns, earlier \(e!.ne0)")
            // f32 accumulators, one row after another, as llama-imatrix's `acc[j] += x[j] * x[j]`
            let acc = e!.values, xr = x.row(r)
            for j in 0..<n { acc[j] += xr[j] * xr[j] }
            rows += 1
        }
        if rows > 0 {
            e!.count += Int64(rows)
            touched.append(name)
        }
    }

    /// The first weight touched since the last call whose sums are no longer finite.
    func firstNonFinite() -> String? {
        defer { touched.removeAll(keepingCapacity: true) }
        for name in touched {
            let s = stats[name]!
            for j in 0..<s.ne0 where !s.values[j].isFinite { return name }
        }
        return nil
    }

    func matrix(datasets: [String], chunkSize: Int) -> ImportanceMatrix {
        var entries: [String: ImportanceMatrix.Entry] = [:]
        var maxCount: Int64 = 0
        for (name, s) in stats {
            entries[name] = ImportanceMatrix.Entry(sums: Array(UnsafeBufferPointer(start: s.values, count: s.ne0)),
                                                   counts: [Float(s.count)])
            maxCount = max(maxCount, s.count)
        }
        return ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: Int(maxCount / Int64(chunkSize)),
                                chunkSize: chunkSize)
    }
}
