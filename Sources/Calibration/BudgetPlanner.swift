import Conversion
import Evaluation
import Foundation
import GGMLCore
import GGUFWriter
import Inference
import MappedIO
import Quantizers
import Workers

// `--calibrate` with a size budget: the importance matrix, GPTQ's second moments, per-tensor
// sensitivities, and the type mix the planner picks to fit the budget (TypePlanner.swift).

/// How `--calibrate` runs: the text, chunk counts, and an optional size budget.
public struct CalibrationSettings: Sendable, Equatable {
    /// What the types must fit in: the whole file's bytes, or bits per weight over the tensor data.
    public enum Budget: Sendable, Equatable {
        case bytes(Int)
        case bitsPerWeight(Double)
    }

    /// Calibration text (plain or .gz).
    public var text: String
    /// Chunks of `ctx` tokens for the importance matrix.
    public var chunks = 64
    public var ctx = 512
    /// Chunks each tensor's sensitivity is measured on (with a budget).
    public var sensitivityChunks = 2
    /// Reuse sensitivities from this file if it exists, else measure and save them there.
    public var sensitivityFile: String?
    /// Chunks for GPTQ's activation second moments (0: no GPTQ).
    public var gptqChunks = 16
    public var budget: Budget?

    public init(text: String, chunks: Int = 64, ctx: Int = 512, sensitivityChunks: Int = 2, sensitivityFile: String? = nil,
                gptqChunks: Int = 16, budget: Budget? = nil) {
        self.text = text
        self.chunks = chunks
        self.ctx = ctx
        self.sensitivityChunks = sensitivityChunks
        self.sensitivityFile = sensitivityFile
        self.gptqChunks = gptqChunks
        self.budget = budget
    }
}

/// What calibration produced: the importance matrix (always) and, with a budget, a type per tensor.
public struct CalibrationResult {
    public var imatrix: ImportanceMatrix
    public var types: [String: GGMLType] = [:]
    /// Second moments of each weight's input, for GPTQ (empty with --gptq-chunks 0).
    public var hessians: [String: Hessian] = [:]

    /// What the run hands the quantizer: the importance matrix it collected (named after the
    /// calibration `text`), GPTQ for the matrices it has second moments of, and the types it chose
    /// pinned over the user's `base` options.
    public func quantization(text: String, base: QuantizationPolicy.Options, threads: Int) -> CalibratedQuantization {
        CalibratedQuantization(imatrix: Calibrate.imatrixData(self, text: text), encoder: Calibrate.encoder(self, threads: threads),
                               options: Calibrate.withTypes(types, base))
    }
}

/// A calibration result in the form `ConvertTarget.plan`, `QuantizePlan` and `Converter` take.
public struct CalibratedQuantization {
    public var imatrix: ImatrixData
    public var encoder: Converter.TensorEncoder?
    public var options: QuantizationPolicy.Options
}

public enum Calibrate {
    /// `options` with every tensor of `types` pinned to its type (exact-name patterns, ahead of the
    /// user's own --tensor-type patterns), for a plan that will be quantized with the calibration's
    /// importance matrix (so sized with the policy's imatrix branches, i-quants allowed).
    public static func withTypes(_ types: [String: GGMLType], _ options: QuantizationPolicy.Options) -> QuantizationPolicy.Options {
        var o = options
        o.hasImatrix = true
        let pinned = types.sorted { $0.key < $1.key }.map { (pattern: "^" + NSRegularExpression.escapedPattern(for: $0.key) + "$", type: $0.value) }
        o.tensorTypes = pinned + o.tensorTypes
        return o
    }

    /// GPTQ for every quantized weight matrix with collected second moments (others, like the
    /// token embedding, keep importance-weighted rounding).
    static func encoder(_ r: CalibrationResult, threads: Int) -> Converter.TensorEncoder? {
        guard !r.hessians.isEmpty else { return nil }
        let hessians = r.hessians
        let weights = r.imatrix.allQuantWeights()
        return { t, rows, dst in
            guard let h = hessians[t.name], h.cols == t.ne[0], t.ne.count == 2, Quantizers.gridQuantizer(for: t.type) != nil else { return false }
            do {
                let (bytes, _) = try GPTQ.quantize(rows, cols: t.ne[0], type: t.type, hessian: h, importance: weights[t.name],
                                                   options: GPTQ.Options(threads: threads))
                guard bytes.count <= dst.count else { return false }
                bytes.withUnsafeBytes { dst.copyMemory(from: $0) }
                return true
            } catch {
                return false
            }
        }
    }

    /// The size of the GGUF file a plan writes (header, metadata, aligned tensor data).
    public static func fileSize(_ plan: any OutputPlan) -> Int {
        GGUFLayout(metadata: plan.metadata.map { ($0.key, $0.value) },
                   tensors: plan.tensors.map { GGUFTensorInfo(name: $0.name, ne: $0.ne, type: $0.type) }).totalSize
    }

    /// The collected importance matrix as the quantizer takes it (llama-quantize's weights and
    /// `quantize.imatrix.*` metadata, naming the calibration text).
    static func imatrixData(_ r: CalibrationResult, text: String) -> ImatrixData {
        ImatrixData(weights: r.imatrix.allQuantWeights(), file: text, datasets: r.imatrix.datasets, chunkCount: r.imatrix.chunkCount)
    }

    /// Every weight matrix of `m` as an f32 copy: sensitivities are measured against the
    /// unquantized weights, and the f32 kernels are the fast path.
    public static func f32Reference(_ m: Model, threads: Int) throws -> Model {
        var repl: [String: Weight] = [:]
        var keep: [AnyObject] = []
        for (name, w) in m.weightMatrices where w.type != .f32 {
            let buf = OwnedBuffer(floats: w.rows * w.cols)
            for r in 0..<w.rows { w.row(r, into: UnsafeMutableBufferPointer(start: buf.floats + r * w.cols, count: w.cols)) }
            repl[name] = Weight(type: .f32, rows: w.rows, cols: w.cols, data: UnsafeRawPointer(buf.floats), name: name)
            keep.append(buf)
        }
        return repl.isEmpty ? m : try m.replacing(repl, keepAlive: keep)
    }

    /// Collects the importance matrix on `opts.text` (and, with a budget, measures sensitivities
    /// and plans types). `fileSize(types)` gives the whole file's size for a type assignment of the
    /// weight matrices; `log` gets finished steps as lines, `progress` the step in progress.
    public static func run(model path: String, opts: CalibrationSettings, threads: Int,
                           log: (String) -> Void = { _ in }, progress: @escaping (String) -> Void = { _ in },
                           fileSize: ([String: GGMLType]) throws -> Int) throws -> CalibrationResult {
        let text = opts.text
        func say(_ s: String) { log(s) }
        let source = try ModelLoader.load(path)
        let tokenizer = try ModelLoader.tokenizer(path, for: source)
        let tokens = try ModelLoader.evaluationTokens(textFile: text, tokenizer: tokenizer)
        let ref = try f32Reference(source, threads: threads)
        let bos = ref.chunkBOS
        let collector = ImatrixCollector(model: ref, engine: GGMLEngine(threads: threads), threads: threads,
                                         options: .init(nCtx: opts.ctx, maxChunks: opts.chunks))
        let t0 = Date()
        let imatrix = try collector.run(tokens: tokens, datasets: [text], bos: bos) { p in
            progress(String(format: "calibrate: importance matrix, chunk %d/%d", p.chunk, p.chunks))
        }
        say(String(format: "calibrate: importance matrix of %d tensors from %d chunks of %d tokens in %.1f s",
                   imatrix.entries.count, imatrix.chunkCount, opts.ctx, Date().timeIntervalSince(t0)))
        var result = CalibrationResult(imatrix: imatrix)
        func chunked(_ n: Int) -> [[Int32]] {
            (0..<min(n, tokens.count / opts.ctx)).map { c in
                var ch = Array(tokens[(c * opts.ctx)..<((c + 1) * opts.ctx)])
                if let b = bos { ch[0] = b }
                return ch
            }
        }
        if opts.gptqChunks > 0 {
            let t2 = Date()
            try HessianCollector.checkMemory(ref)
            let collector = HessianCollector.collect(model: ref, chunks: chunked(opts.gptqChunks), threads: threads) { i, _ in
                progress(String(format: "calibrate: activation second moments, chunk %d", i))
            }
            result.hessians = collector.hessians
            say(String(format: "calibrate: second moments of %d inputs from %d chunks in %.1f s", Set(collector.hessians.values.map { ObjectIdentifier($0) }).count,
                       min(opts.gptqChunks, tokens.count / opts.ctx), Date().timeIntervalSince(t2)))
        }
        guard let budget = opts.budget else { return result }

        let chunks = chunked(opts.sensitivityChunks)
        let nChunks = chunks.count
        guard nChunks > 0 else { throw CalibrationError.text(path: text, detail: "too short for one chunk of \(opts.ctx) tokens") }
        let infos: [Sensitivity.TensorInfo]
        if let f = opts.sensitivityFile, FileManager.default.fileExists(atPath: f) {
            infos = try SensitivityFile.read(f, expecting: ref.weightMatrices)
            say("calibrate: sensitivities of \(infos.count) tensors from \(f)")
        } else {
            let t1 = Date()
            let sens = Sensitivity(reference: ref, chunks: chunks, threads: threads)
            infos = try sens.analyze(importance: imatrix.allQuantWeights()) { i, n, name in
                progress("calibrate: sensitivity \(i)/\(n) \(name)")
            }
            say(String(format: "calibrate: sensitivity of %d tensors on %d chunks in %.1f s", infos.count, nChunks,
                       Date().timeIntervalSince(t1)))
            if let f = opts.sensitivityFile {
                try SensitivityFile.write(infos, to: f)
                say("calibrate: sensitivities saved to \(f)")
            }
        }

        // the bytes that do not depend on the matrices' types (header, metadata, vectors)
        let smallest = Dictionary(uniqueKeysWithValues: infos.map { i in (i.name, i.options.min { $0.bytes < $1.bytes }!.type) })
        let fixed = try fileSize(smallest) - infos.reduce(0) { s, i in s + i.options.min { $0.bytes < $1.bytes }!.bytes }
        let totalElements = infos.reduce(0) { $0 + $1.rows * $1.cols }
        let target: Int
        switch budget {
        case .bytes(let b): target = b
        case .bitsPerWeight(let bpw): target = Int(bpw * Double(totalElements) / 8) + fixed
        }
        let items = infos.map { TypePlanner.Item(name: $0.name, options: $0.options) }
        guard var plan = TypePlanner.plan(items, budget: target - fixed) else {
            throw CalibrationError.budgetTooSmall(path: path, target: target, smallest: try fileSize(smallest))
        }
        var types = Dictionary(uniqueKeysWithValues: zip(infos, plan.choices).map { ($0.0.name, $0.1.type) })
        // alignment and metadata are exact in fileSize; tighten if the estimate was off
        var size = try fileSize(types)
        var slack = target - fixed
        while size > target, slack > 0 {
            slack -= size - target
            guard let p = TypePlanner.plan(items, budget: slack) else { break }
            plan = p
            types = Dictionary(uniqueKeysWithValues: zip(infos, plan.choices).map { ($0.0.name, $0.1.type) })
            size = try fileSize(types)
        }
        if size > target { throw CalibrationError.budgetTooSmall(path: path, target: target, smallest: nil) }
        result.types = types
        printMix(infos: infos, plan: plan, fileBytes: size, target: target, say: say)
        return result
    }

    /// The chosen mix by tensor group (attn_q, ffn_down, …), the predicted loss and the size.
    static func printMix(infos: [Sensitivity.TensorInfo], plan: TypePlanner.Plan, fileBytes: Int, target: Int,
                         say: (String) -> Void) {
        var groups: [String: [GGMLType: Int]] = [:]
        for (i, c) in zip(infos, plan.choices) {
            let g = TensorName.blockParts(i.name).map { String($0.rest.prefix { $0 != "." }) } ?? i.name
            groups[g, default: [:]][c.type, default: 0] += 1
        }
        say("calibrate: chosen types (tensor group: type × count)")
        for g in groups.keys.sorted() {
            let parts = groups[g]!.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.name)×\($0.value)" }
            say("  \(g.padding(toLength: 18, withPad: " ", startingAt: 0)) \(parts.joined(separator: " "))")
        }
        say(String(format: "calibrate: predicted mean KLD %.5f; file %d bytes (%.2f MB) for a target of %d", plan.loss,
                   fileBytes, Double(fileBytes) / 1e6, target))
    }
}
