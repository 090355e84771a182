import Batch
import Calibration
import Conversion
import Evaluation
import Families
import Foundation
import GGMLCore
import GGUFWriter
import Inference
import MappedIO
import Quantizers
import Reports
import Workers

/// Where the importance matrix comes from (batch's manifest type; spelled out because the
/// Calibration module's name shadows it here).
public typealias CalibrationSource = Batch.Calibration

/// What a session reports while it works, for progress lines and ETAs.
public struct SessionEvents {
    /// A step began: "reference", "quantize", "evaluate" with the type it is for.
    public var phase: (_ step: String, _ type: String) -> Void = { _, _ in }
    /// An evaluation finished chunk `done` of `total`.
    public var chunk: (_ done: Int, _ total: Int) -> Void = { _, _ in }

    public init(phase: @escaping (_ step: String, _ type: String) -> Void = { _, _ in },
                chunk: @escaping (_ done: Int, _ total: Int) -> Void = { _, _ in }) {
        self.phase = phase
        self.chunk = chunk
    }
}

/// One checkpoint under measurement: the unquantized reference's log-probs computed once and kept
/// in a file (llama-perplexity's `--kl-divergence-base` format), then each type quantized straight
/// from the checkpoint and evaluated against them. `compare` runs one; `batch` one per model.
public final class ComparisonSession {
    public let modelDir: String
    /// The model's name where `modelDir`'s own is not it (a hub cache snapshot).
    public let directoryName: String?
    public let eval: EvalSettings
    public let threads: Int
    public let calibration: CalibrationSource
    public let referenceLogits: String
    public var events = SessionEvents()
    /// The reference measured (PPL, its size as an unquantized GGUF); nil when its logits were reused.
    public private(set) var referenceRow: QualityRow?
    /// `general.name` as convert writes it (for titles), once the reference has been measured.
    public private(set) var modelName: String?
    private var calibrationDone = false
    private var sourceModel: Model?
    private var imatrix: ImatrixData?
    private var encoder: Converter.TensorEncoder?

    public init(modelDir: String, directoryName: String? = nil, eval: EvalSettings, threads: Int, calibration: CalibrationSource,
                referenceLogits: String, events: SessionEvents = SessionEvents()) {
        self.modelDir = modelDir
        self.directoryName = directoryName
        self.eval = eval
        self.threads = threads
        self.calibration = calibration
        self.referenceLogits = referenceLogits
        self.events = events
    }

    /// Evaluation chunks the text gives (what every evaluation of this session runs).
    public func chunkCount() throws -> Int {
        let n = try tokens().count / eval.ctx
        return min(n, eval.chunks ?? n)
    }

    /// The checkpoint as the reference and the in-memory NF4 model both read it, opened once.
    private func source() throws -> Model {
        if let m = sourceModel { return m }
        let m = try ModelLoader.load(modelDir)
        sourceModel = m
        return m
    }

    private var cachedTokens: [Int32]?
    private func tokens() throws -> [Int32] {
        if let t = cachedTokens { return t }
        let t = try ModelLoader.evaluationTokens(textFile: eval.text, tokenizer: ModelLoader.tokenizer(modelDir, for: source()))
        guard t.count >= eval.ctx else {
            throw ComparisonError.textTooShort(path: eval.text, tokens: t.count, ctx: eval.ctx)
        }
        cachedTokens = t
        return t
    }

    /// Computes the reference log-probs unless `referenceLogits` already holds them for these tokens.
    public func prepareReference(reuse: Bool) throws {
        let toks = try tokens()
        let n = try chunkCount()
        if reuse, FileManager.default.fileExists(atPath: referenceLogits),
           let r = try? LogitsFileReader(path: referenceLogits), r.nCtx == eval.ctx, r.nChunk >= n,
           Array(r.tokens.prefix(n * eval.ctx)) == Array(toks.prefix(n * eval.ctx)) {
            return
        }
        events.phase("reference", "")
        let model = try source()
        let fw = Forward(model: model, engine: GGMLEngine(threads: threads), threads: threads)
        let out = try Evaluation(forward: fw, nCtx: eval.ctx, bos: model.chunkBOS)
            .run(tokens: toks, source: eval.text, maxChunks: n, reference: .none, saveLogits: referenceLogits) { done, total, _ in
                self.events.chunk(done, total)
            }
        var row = QualityRow(type: Self.nativeTypeName(model))
        row.reference = true
        if let target = ConvertTarget(name: row.type),
           let plan = try? target.plan(directory: modelDir, directoryName: directoryName, preTokenizer: nil).plan {
            row.sizeBytes = Calibrate.fileSize(plan)
            row.bpw = Self.bitsPerWeight(plan)
            modelName = plan.metadata.first { $0.key == GGUFKey.General.name }?.value.stringValue
        }
        row.ppl = out.perplexity.ppl
        row.pplStderr = out.perplexity.pplStderr
        row.pplDeltaPct = 0
        row.kldMean = 0
        row.sameTopPct = 100
        row.evalTokensPerSecond = out.perplexity.tokensPerSecond
        referenceRow = row
    }

    /// Quantizes `type` from the checkpoint into `output` (a file, or a directory to put convert's
    /// default file name in; a temp name, renamed when complete) and
    /// measures it. Errors of this type end up in the row, so one bad type does not stop the rest;
    /// a fault of the machine (disk full, read-only destination, I/O error) is thrown instead, since
    /// every other type would meet it too.
    public func measure(type: String, output: String?, keep: Bool, gptq: Bool = true) throws -> QualityRow {
        var row = QualityRow(type: type.lowercased())
        do {
            guard let target = Self.target(for: type) else {
                throw ComparisonError.unknownType(path: modelDir, type: type)
            }
            try prepareCalibration(for: target)
            if target == .nf4 { return try measureNF4(row: row) }
            try write(target, options: .init(), gptq: gptq, output: output, keep: keep, into: &row)
        } catch let e as any FileFault where e.isWriteFault {
            throw e
        } catch {
            row.error = "\(error)"
        }
        return row
    }

    /// A file of `target` with per-tensor `options` (a planned mix), measured like a type; errors
    /// other than the machine's end up in the row.
    public func measure(target: ConvertTarget, label: String, options: QuantizationPolicy.Options, output: String? = nil,
                        keep: Bool = false) throws -> QualityRow {
        var row = QualityRow(type: label)
        do {
            try write(target, options: options, gptq: true, output: output, keep: keep, into: &row)
        } catch let e as any FileFault where e.isWriteFault {
            throw e
        } catch {
            row.error = "\(error)"
        }
        return row
    }

    /// Calibration done elsewhere (`measureBudgets`): what later files are quantized with.
    func useCalibration(imatrix: ImatrixData, encoder: Converter.TensorEncoder?) {
        self.imatrix = imatrix
        self.encoder = encoder
        calibrationDone = true
    }

    private func write(_ target: ConvertTarget, options: QuantizationPolicy.Options, gptq: Bool, output: String?, keep: Bool,
                       into row: inout QualityRow) throws {
        let (plan, defaultName) = try target.plan(directory: modelDir, directoryName: directoryName, preTokenizer: nil, options: options,
                                                  imatrix: target.isLlamaQuantize ? imatrix : nil)
        // a directory gets the file name `convert` would choose
        let dest = output.map { o in isDirectory(o) ? (o as NSString).appendingPathComponent(defaultName) : o }
            ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("edgequant-\(getpid())-\(defaultName)")
        events.phase("quantize", row.type)
        let summary = try Converter(plan: plan, threads: threads, encoder: target.isLlamaQuantize && gptq ? encoder : nil)
            .run(outfile: dest)
        defer { if !keep { try? FileManager.default.removeItem(atPath: dest) } }
        row.quantizeSeconds = summary.seconds
        row.sizeBytes = summary.fileSize
        row.bpw = Self.bitsPerWeight(plan)
        if keep { row.path = dest }
        events.phase("evaluate", row.type)
        try evaluate(Model(gguf: GGUFFile(path: dest)), into: &row)
    }

    /// bitsandbytes NF4 in memory: the tensors the IQ4_NL mix makes 4-bit get NF4's codebook and
    /// 64-weight absmax blocks (4.5 bits per weight, as IQ4_NL), the rest the mix's own types. Its
    /// size is the IQ4_NL file's; no file is written, since llama.cpp could not load one.
    private func measureNF4(row: QualityRow) throws -> QualityRow {
        var row = row
        row.simulated = true
        events.phase("quantize", row.type)
        let start = Date()
        let (plan, _) = try ConvertTarget.nf4.plan(directory: modelDir, directoryName: directoryName, preTokenizer: nil, imatrix: nil)
        row.sizeBytes = Calibrate.fileSize(plan)
        row.bpw = Self.bitsPerWeight(plan)
        let source = try source()
        let weights = source.weightMatrices
        var replaced: [String: Weight] = [:]
        var keep: [AnyObject] = []
        for t in plan.tensors {
            guard let w = weights[t.name], t.type != w.type else { continue }
            let f = OwnedBuffer(floats: w.rows * w.cols)
            let all = UnsafeMutableBufferPointer(start: f.floats, count: w.rows * w.cols)
            Parallel.forEach(w.rows, threads: threads) { r in
                w.row(r, into: UnsafeMutableBufferPointer(rebasing: all[(r * w.cols)..<((r + 1) * w.cols)]))
            }
            if t.type == .iq4_nl {
                Parallel.forEach(w.rows, threads: threads) { r in
                    NF4.roundTrip(UnsafeMutableBufferPointer(rebasing: all[(r * w.cols)..<((r + 1) * w.cols)]))
                }
                replaced[t.name] = Weight(type: .f32, rows: w.rows, cols: w.cols, data: UnsafeRawPointer(f.floats), name: t.name)
                keep.append(f)
            } else {
                guard let q = Quantizers.quantizer(for: t.type), let rowBytes = t.type.rowSize(w.cols) else {
                    throw ComparisonError.nf4Unsupported(path: modelDir, tensor: t.name, type: t.type)
                }
                let bytes = OwnedBuffer(byteCount: rowBytes * w.rows)
                Parallel.forEach(w.rows, threads: threads) { r in
                    q.quantizeRow(UnsafeBufferPointer(rebasing: all[(r * w.cols)..<((r + 1) * w.cols)]),
                                  into: UnsafeMutableRawBufferPointer(start: bytes.raw + r * rowBytes, count: rowBytes))
                }
                replaced[t.name] = Weight(type: t.type, rows: w.rows, cols: w.cols, data: UnsafeRawPointer(bytes.raw), name: t.name)
                keep.append(bytes)
            }
        }
        let model = try source.replacing(replaced, keepAlive: keep)
        row.quantizeSeconds = Date().timeIntervalSince(start)
        events.phase("evaluate", row.type)
        try evaluate(model, into: &row)
        return row
    }

    private func evaluate(_ model: Model, into row: inout QualityRow) throws {
        let reader = try LogitsFileReader(path: referenceLogits)
        let fw = Forward(model: model, engine: GGMLEngine(threads: threads), threads: threads)
        let out = try Evaluation(forward: fw, nCtx: eval.ctx, bos: model.chunkBOS)
            .run(tokens: [], source: referenceLogits, maxChunks: try chunkCount(), reference: .file(reader), saveLogits: nil) { done, total, _ in
                self.events.chunk(done, total)
            }
        row.ppl = out.perplexity.ppl
        row.pplStderr = out.perplexity.pplStderr
        row.evalTokensPerSecond = out.perplexity.tokensPerSecond
        if let k = out.kld {
            row.pplDeltaPct = 100 * (k.ppl / k.pplBase - 1)
            row.kldMean = k.kldMean.0
            row.kldP99 = k.kldQuantile(0.99)
            row.sameTopPct = k.sameTopPct
        }
    }

    /// The importance matrix (and for --calibrate the GPTQ second moments), made once per session.
    private func prepareCalibration(for target: ConvertTarget) throws {
        guard !calibrationDone, target.isLlamaQuantize, target != .nf4 else { return }
        calibrationDone = true
        switch calibration {
        case .none: break
        case .imatrix(let path):
            let m = try ImatrixReader.read(path: path)
            imatrix = ImatrixData(weights: m.allQuantWeights(), file: path, datasets: m.datasets, chunkCount: m.chunkCount)
        case .calibrate(let text):
            events.phase("calibrate", "")
            let r = try Calibrate.run(model: modelDir, opts: CalibrationSettings(text: text), threads: threads) { _, _ in 0 }
            let q = r.quantization(text: text, base: QuantizationPolicy.Options(), threads: threads)
            (imatrix, encoder) = (q.imatrix, q.encoder)
        }
    }

    /// Quantized types as llama-quantize writes them (q8_0 included, which `convert` writes as
    /// convert_hf_to_gguf.py does), so that every row has a llama.cpp counterpart to check.
    public static func target(for type: String) -> ConvertTarget? {
        let l = type.lowercased()
        if !["f32", "f16", "bf16"].contains(l), let f = LlamaFileType(name: l) { return .llamaQuantize(f) }
        return ConvertTarget(name: l)
    }

    /// llama.cpp's BPW: bits of all tensor data over the number of weights.
    public static func bitsPerWeight(_ plan: any OutputPlan) -> Double {
        var bytes = 0, elements = 0
        for t in plan.tensors {
            let rows = t.ne.dropFirst().reduce(1, *)
            bytes += (t.type.rowSize(t.ne[0]) ?? 0) * rows
            elements += t.ne[0] * rows
        }
        return elements > 0 ? Double(bytes) * 8 / Double(elements) : 0
    }

    /// The float type most of the model's weight matrices have in the checkpoint (its reference).
    public static func nativeTypeName(_ m: Model) -> String {
        var counts: [GGMLType: Int] = [:]
        for w in m.weightMatrices.values { counts[w.type, default: 0] += w.rows * w.cols }
        return (counts.max { $0.value < $1.value }?.key ?? .f32).name.lowercased()
    }
}
