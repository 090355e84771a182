import Dispatch
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
    /// The defaults, one place for the library and the command line.
    public static let defaultChunks = 32, defaultCtx = 512
    public static let defaultSensitivityChunks = 1, defaultSensitivityCtx = 256, defaultGPTQChunks = 32

    /// Chunks of `ctx` tokens for the importance matrix.
    public var chunks: Int
    public var ctx: Int
    /// Chunks each tensor's sensitivity is measured on (with a budget), and their length: each
    /// measurement runs the model from a layer on (30 times for a 30-layer model, ~210 with
    /// `Sensitivity.Probes.tensor`) and the check and the mixes run it again; positions from 64
    /// on are scored.
    public var sensitivityChunks: Int
    public var sensitivityCtx = CalibrationSettings.defaultSensitivityCtx
    /// One probe per layer (shared by the change each matrix makes to the layer's output) or one
    /// per matrix: see `Sensitivity.Probes`.
    public var sensitivityProbes = Sensitivity.Probes.layer
    /// Reuse sensitivities from this file if it exists, else measure and save them there.
    public var sensitivityFile: String?
    /// Chunks for GPTQ's activation second moments (0: no GPTQ), and how many of them the
    /// planner's predictions of GPTQ's gain use (nil or at least `gptqChunks`: all, so that the
    /// check and the mixes measure the very tensors the file will hold, and the writer takes them
    /// from there). All by default: on grid-free SmolLM2 at 32 chunks, plans predicted from all 32
    /// or from 8 came out alike on the eval text (KLD against llama-quantize's best at the
    /// Q2_K…Q5_K_M sizes: 69/74/60/60/52/29% lower from 32, 70/74/63/60/45/30% from 8, one probe
    /// per layer both), and from all 32 a first plan costs 27 s less of CPU (190 → 163 s) and
    /// what the check measures is the file. (With one probe per matrix, before a mix had to win
    /// measurably, from 8 looked better: 69/74/63/60/43/28% against 65/74/63/57/38/22%.)
    public var gptqChunks: Int
    public var gptqPredictionChunks: Int? = nil
    public var budget: Budget?
    /// Measure sensitivities even without a budget, and keep what measured them in the result
    /// (to plan and check several budgets afterwards).
    public var measureSensitivity = false

    public init(text: String, chunks: Int = defaultChunks, ctx: Int = defaultCtx, sensitivityChunks: Int = defaultSensitivityChunks,
                sensitivityFile: String? = nil, gptqChunks: Int = defaultGPTQChunks, budget: Budget? = nil) {
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
    /// Second moments of each weight's input for GPTQ, one layer at a time as the writer reaches
    /// it (nil with --gptq-chunks 0).
    public var gptq: HessianStream?
    /// With a budget: the type holding most of the planned bytes (what the file is labelled).
    public var dominantType: GGMLType?
    /// GPTQ's factors, and the tensors the planner's check and mixes quantized with the writer's
    /// second moments: the writer takes a tensor from there when its type was measured.
    var written: (factors: FactorStore, tensors: QuantizedStore)?
    /// Per-tensor sensitivities (with a budget or `measureSensitivity`), for `Calibrate.plan`.
    public var sensitivities: [Sensitivity.TensorInfo] = []
    /// What measured them, for checking plans of other budgets (`Calibrate.checkedPlan`).
    public var sensitivity: Sensitivity?

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
        var o = withImatrix(options)
        let pinned = types.sorted { $0.key < $1.key }.map { (pattern: "^" + NSRegularExpression.escapedPattern(for: $0.key) + "$", type: $0.value) }
        o.tensorTypes = pinned + o.tensorTypes
        return o
    }

    /// GPTQ for every quantized weight matrix with collected second moments (others, like the
    /// token embedding, keep importance-weighted rounding).
    static func encoder(_ r: CalibrationResult, threads: Int) -> Converter.TensorEncoder? {
        guard let stream = r.gptq else { return nil }
        let weights = r.imatrix.allQuantWeights()
        let factors = FactorCache(store: r.written?.factors)
        let written = r.written?.tensors
        return { t, rows, dst in
            guard Quantizers.gridQuantizer(for: t.type) != nil, let h = stream.hessian(for: t.name), h.cols == t.ne[0], t.ne.count == 2,
                  let rb = t.type.rowSize(h.cols), dst.count >= rb * (rows.count / h.cols) else { return false }
            do {
                let imp = weights[t.name] ?? h.importance
                guard imp.count == h.cols else { return false }
                // what the planner measured, quantized the same way from the same rows
                if let written, rows.count == (rows.count / h.cols) * h.cols,
                   written.read(QuantizedStore.Key(name: t.name, type: t.type, hessian: h.fingerprint, importance: imp.map(\.bitPattern),
                                                   source: QuantizedStore.hash(rows, cols: h.cols)),
                                into: UnsafeMutableRawBufferPointer(rebasing: dst[0..<(rb * (rows.count / h.cols))])) {
                    return true
                }
                let factor = try factors.factor(h)
                try imp.withUnsafeBufferPointer { ip in
                    _ = try GPTQ.quantize(rows, cols: t.ne[0], type: t.type, factor: factor, importance: ip,
                                          options: GPTQ.Options(threads: threads), into: dst)
                }
                return true
            } catch {
                return false
            }
        }
    }

    /// The factors of the last two inputs: q, k and v share one, as do gate and up, and the
    /// converter meets them close together (file order is by layer). The factorisation is
    /// O(cols³), the matrix's GPTQ O(rows·cols²): for q/k/v of a 576-wide model it would
    /// otherwise be done three times.
    /// With `store`, a factor the planner made for the same second moments is read back.
    final class FactorCache: @unchecked Sendable {
        private let lock = NSLock()
        private var recent: [(Hessian, GPTQ.Factor)] = []
        private let store: FactorStore?

        init(store: FactorStore? = nil) { self.store = store }

        func factor(_ h: Hessian) throws -> GPTQ.Factor {
            lock.lock()
            defer { lock.unlock() }
            if let f = recent.first(where: { $0.0 === h }) { return f.1 }
            let f = try store?.factor(h) ?? GPTQ.Factor(h)
            recent.append((h, f))
            if recent.count > 2 { recent.removeFirst() }
            return f
        }
    }

    /// The type each tensor of `plan` gets: what `fileTypeMix` hands the planner for a file type.
    public static func tensorTypes(_ plan: any OutputPlan) -> [String: GGMLType] {
        Dictionary(plan.tensors.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
    }

    /// `options` as a calibrated file's are: an importance matrix given (its policy branches).
    public static func withImatrix(_ options: QuantizationPolicy.Options) -> QuantizationPolicy.Options {
        var o = options
        o.hasImatrix = true
        return o
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

    /// Collects the importance matrix on `opts.text` (and, with a budget, measures sensitivities
    /// and plans types). `fileSize(types, imatrix)` gives the whole file's size for a type assignment
    /// of the weight matrices, written with `imatrix` (its `quantize.imatrix.*` keys count, and may
    /// cross an alignment step), `fileTypeMix(f)` the types llama-quantize's file type `f` would give them; `log` gets finished steps as lines, `progress` the step in progress.
    public static func run(model path: String, opts: CalibrationSettings, threads: Int,
                           log: (String) -> Void = { _ in }, progress: @escaping (String) -> Void = { _ in },
                           fileTypeMix: (LlamaFileType) throws -> [String: GGMLType]? = { _ in nil },
                           fileSize: ([String: GGMLType], ImatrixData?) throws -> Int) throws -> CalibrationResult {
        let text = opts.text
        func say(_ s: String) { log(s) }
        let source = try ModelLoader.load(path)
        let tokenizer = try ModelLoader.tokenizer(path, for: source)
        let tokens = try ModelLoader.evaluationTokens(textFile: text, tokenizer: tokenizer)
        // the importance matrix and second moments from the weights as they are
        let ref = source
        let bos = ref.chunkBOS
        func chunked(_ n: Int, ctx: Int) -> [[Int32]] {
            (0..<max(0, min(n, tokens.count / ctx))).map { c in
                var ch = Array(tokens[(c * ctx)..<((c + 1) * ctx)])
                if let b = bos { ch[0] = b }
                return ch
            }
        }
        let t0 = Date()
        let collector = ImatrixCollector(model: ref, engine: GGMLEngine(threads: threads), threads: threads,
                                         options: .init(nCtx: opts.ctx, maxChunks: opts.chunks))
        // the text, context and model checked before anything is cut or run
        let nChunk = try collector.checked(tokens: tokens, datasets: [text], bos: bos).chunks
        let gptqChunks = chunked(opts.gptqChunks, ctx: opts.ctx)
        let planning = opts.budget != nil || opts.measureSensitivity
        var result: CalibrationResult
        // the planner's GPTQ predictions: second moments of all of GPTQ's chunks, or the first few
        var prediction: HessianStream?
        if !gptqChunks.isEmpty {
            try HessianStream.checkMemory(ref, chunks: gptqChunks.count, ctx: opts.ctx)
        }
        if !gptqChunks.isEmpty, nChunk == gptqChunks.count, collector.isPlainForward(chunks: nChunk) {
            // GPTQ's chunks are the importance matrix's: one walk over the layers collects both (the
            // importance matrix is H's Σx², summed as llama-imatrix sums it) and keeps every layer's
            // second moments in a temporary file for the predictions, the check, the mixes and the
            // writer, which would otherwise each run the chunks through the model again.
            let full = HessianStream(model: ref, chunks: gptqChunks, threads: threads, spilling: true)
            let fewer = opts.gptqPredictionChunks.flatMap { $0 < gptqChunks.count ? $0 : nil }
            prediction = planning ? fewer.map { HessianStream(model: ref, chunks: Array(gptqChunks.prefix($0)), threads: threads, spilling: true) } ?? full : nil
            let sums = try full.collectAll(prefix: fewer == nil ? nil : prediction, progress: { l, n in
                progress(String(format: "calibrate: importance matrix and second moments, layer %d/%d", l, n))
            }, nonFinite: { CalibrationError.nonFiniteActivations(path: text, tensor: $0, chunk: $1) })
            let imatrix = ImportanceMatrix(entries: sums.mapValues { ImportanceMatrix.Entry(sums: $0.sums, counts: [Float($0.tokens)]) },
                                           datasets: [text], chunkCount: gptqChunks.count, chunkSize: opts.ctx)
            say(String(format: "calibrate: importance matrix of %d tensors and GPTQ's second moments from %d chunks of %d tokens in %.1f s",
                       imatrix.entries.count, imatrix.chunkCount, opts.ctx, Date().timeIntervalSince(t0)))
            result = CalibrationResult(imatrix: imatrix)
            result.gptq = full
        } else {
            let imatrix = try collector.run(tokens: tokens, datasets: [text], bos: bos) { p in
                progress(String(format: "calibrate: importance matrix, chunk %d/%d", p.chunk, p.chunks))
            }
            say(String(format: "calibrate: importance matrix of %d tensors from %d chunks of %d tokens in %.1f s",
                       imatrix.entries.count, imatrix.chunkCount, opts.ctx, Date().timeIntervalSince(t0)))
            result = CalibrationResult(imatrix: imatrix)
            if !gptqChunks.isEmpty {
                // collected when the writer reaches each layer (GPTQ's chunks are the importance
                // matrix's first ones), and kept for the writer where the planner walks them first
                let full = HessianStream(model: ref, chunks: gptqChunks, threads: threads, spilling: planning)
                result.gptq = full
                if planning {
                    prediction = opts.gptqPredictionChunks.flatMap { $0 < gptqChunks.count ? $0 : nil }.map {
                        HessianStream(model: ref, chunks: Array(gptqChunks.prefix($0)), threads: threads, spilling: true)
                    } ?? full
                }
            }
        }
        let imatrix = result.imatrix
        guard opts.budget != nil || opts.measureSensitivity else { return result }

        // from the end of the text: held out from the chunks GPTQ and the importance matrix fit
        let sctx = opts.sensitivityCtx
        let chunks = (0..<min(opts.sensitivityChunks, tokens.count / sctx)).map { c -> [Int32] in
            let end = tokens.count - c * sctx
            var ch = Array(tokens[(end - sctx)..<end])
            if let b = bos { ch[0] = b }
            return ch
        }
        guard !chunks.isEmpty else { throw CalibrationError.text(path: text, detail: "too short for one chunk of \(opts.sensitivityCtx) tokens") }
        // Measured on the weights as they are. Not on a Q8_0 copy, though its kernels are 1.7×
        // faster: they round each product's input to 8 bits per 32-block, and the attention
        // sink's massive activations make that rounding jump at the smallest change upstream —
        // every matrix of a layer then measured alike (SmolLM2 grid-free, layer 10: 3.0–4.8e-3
        // for all seven at q4_0, against 2.0e-4–1.3e-3 on the weights themselves), and plans at
        // 5+ bits lost to llama-quantize.
        let sens = Sensitivity(reference: source, chunks: chunks, threads: threads)
        // GPTQ's predictions from fewer chunks than it writes with, each layer's second moments
        // read back (or collected) as the analysis (and each measured mix) reaches it
        let stream = prediction
        sens.hessians = stream.map { s in { s.hessian(for: $0) } }
        if let f = opts.sensitivityFile, FileManager.default.fileExists(atPath: f) {
            result.sensitivities = try SensitivityFile.read(f, expecting: source.weightMatrices)
            say("calibrate: sensitivities of \(result.sensitivities.count) tensors from \(f)")
        } else {
            let t1 = Date()
            result.sensitivities = try sens.analyze(importance: imatrix.allQuantWeights(), hessians: { stream?.hessian(for: $0) },
                                                        probes: opts.sensitivityProbes) { i, n, name in
                progress("calibrate: sensitivity \(i)/\(n) \(name)")
            }
            say(String(format: "calibrate: sensitivity of %d tensors on %d chunks in %.1f s (errors and GPTQ %.1f s, KL divergence %.1f s)",
                       result.sensitivities.count, chunks.count, Date().timeIntervalSince(t1), sens.timings.gptq, sens.timings.kld))
            if let f = opts.sensitivityFile {
                try SensitivityFile.write(result.sensitivities, to: f)
                say("calibrate: sensitivities saved to \(f)")
            }
        }
        // kept for planning other budgets; otherwise its model copy is freed before writing
        if opts.measureSensitivity { result.sensitivity = sens }
        if stream != nil, stream === result.gptq { result.written = (sens.factors, sens.mixTensors) }
        if let budget = opts.budget {
            let im = imatrixData(result, text: text)
            let p = try checkedPlan(sens, result.sensitivities, budget: budget, importance: imatrix.allQuantWeights(), model: path,
                                    fileSize: { try fileSize($0, im) }, fileTypeMix: fileTypeMix,
                                    say: say, progress: progress)
            printMix(infos: result.sensitivities, plan: p.plan, fileBytes: p.fileBytes, target: p.target, say: say)
            result.types = p.types
            result.dominantType = p.dominantType
        }
        return result
    }

    /// `plan`, then the plan's mix measured (`Sensitivity.check`) and planned again with each
    /// layer's predictions scaled to what the mix showed.
    /// `fileTypeMix(f)`: the types llama-quantize's file type `f` gives each weight matrix here (with
    /// an importance matrix), or nil; the mixes of the file types that fit the budget compete with
    /// the plan (see below).
    public static func checkedPlan(_ sens: Sensitivity, _ infos: [Sensitivity.TensorInfo], budget: CalibrationSettings.Budget,
                                   importance: [String: [Float]], model path: String, fileSize: ([String: GGMLType]) throws -> Int,
                                   fileTypeMix: (LlamaFileType) throws -> [String: GGMLType]? = { _ in nil },
                                   say: (String) -> Void = { _ in }, progress: (String) -> Void = { _ in }) throws -> BudgetPlan {
        let first = try plan(infos, budget: budget, model: path, fileSize: fileSize)
        progress("calibrate: measuring the planned mix")
        let t0 = Date()
        let losses = Dictionary(uniqueKeysWithValues: zip(infos, first.plan.choices).map { ($0.0.name, $0.1.loss) })
        let check = try sens.check(types: first.types, predicted: losses, importance: importance)
        let scaled = infos.map { i -> Sensitivity.TensorInfo in
            var i = i
            let f = check.scale[i.name] ?? 1
            i.options = i.options.map { TypePlanner.Option(type: $0.type, bytes: $0.bytes, loss: $0.loss * f) }
            return i
        }
        var best = try plan(scaled, budget: budget, model: path, fileSize: fileSize)
        say(String(format: "calibrate: the first plan's mix measured %.5f mean KLD (predicted %.5f) in %.1f s; planned again with each layer's share as measured",
                   check.measured, check.predicted, Date().timeIntervalSince(t0)))
        // The predictions extrapolate from one probe type; far above it (5+ bits on SmolLM2) they
        // can rank mixes wrongly, where one type everywhere does well. So the plan and the largest
        // llama-quantize mix that fits are each measured. (It was the three largest: on grid-free
        // SmolLM2, in 12 plans from 4 to 7 bits, none of them won once the mixes were measured as
        // written, and the largest measured best of its three in 9 of 10 — each more cost a fifth
        // of a first plan's CPU time.) The first plan competes too: the check measured it already,
        // the same way, and the rescaled plan is not always better (one chunk's layer shares are
        // noisy). The lower of the two plans is written unless the llama-quantize mix measured
        // lower by more than the measurement can tell (`measurablyLower`): on grid-free SmolLM2
        // the mixes that won by a hair on the chunk lost on the eval text (Q5_K_M's by 0.2%:
        // 0.0216 against the plans' 0.020 as llama-perplexity measured them).
        var plans: [(label: String, types: [String: GGMLType], bytes: Int, kld: Sensitivity.Measured?)] =
            [("the plan", best.types, best.fileBytes, first.types == best.types ? .init(mean: check.measured, rows: check.rows) : nil)]
        if first.types != best.types { plans.append(("the first plan", first.types, first.fileBytes, .init(mean: check.measured, rows: check.rows))) }
        var fixed: [(LlamaFileType, [String: GGMLType], Int)] = []
        for f in LlamaFileType.allCases where ![.allF32, .mostlyF16, .mostlyBF16].contains(f) {
            guard let all = try? fileTypeMix(f) else { continue }
            let mix = all.filter { best.types[$0.key] != nil }
            // only mixes of candidate types (a policy fallback to F16 has no predicted loss)
            guard mix.count == best.types.count,
                  infos.allSatisfy({ i in i.options.contains { $0.type == mix[i.name] } }) else { continue }
            let size = try fileSize(mix)
            if size <= best.target { fixed.append((f, mix, size)) }
        }
        var candidates = plans
        for (f, mix, size) in fixed.sorted(by: { $0.2 > $1.2 }).prefix(1) { candidates.append((f.name + " mix", mix, size, nil)) }
        if candidates.count > 1 {
            let unknown = candidates.indices.filter { candidates[$0].kld == nil }
            progress("calibrate: measuring \(unknown.count) mixes: the plan's and llama-quantize's that fit")
            let kld = try sens.mixKLDs(unknown.map { candidates[$0].types }, importance: importance)
            for (k, i) in unknown.enumerated() { candidates[i].kld = kld[k] }
            let measured = candidates.map { $0.kld! }
            var i = plans.indices.min { measured[$0].mean < measured[$1].mean }!
            var note = ""
            for j in plans.count..<candidates.count where measured[j].mean < measured[i].mean {
                if Sensitivity.measurablyLower(measured[j].rows, than: measured[i].rows) { i = j } else {
                    note = " (\(candidates[j].label) lower by less than twice the difference's standard error)"
                }
            }
            say("calibrate: measured " + zip(candidates, measured).map { String(format: "%@ %.5f", $0.0.label, $0.1.mean) }.joined(separator: ", ")
                + "; writing \(candidates[i].label)" + note)
            if i > 0 {
                let types = candidates[i].types
                let choices = zip(infos, scaled).map { info, sc in sc.options.first { $0.type == types[info.name] }! }
                best = BudgetPlan(types: types, plan: TypePlanner.Plan(choices: choices), fileBytes: candidates[i].bytes, target: best.target,
                                  dominantType: dominantType(choices))
            }
        }
        return best
    }

    /// The type holding most of `choices`' bytes (the lower id on a tie).
    static func dominantType(_ choices: [TypePlanner.Option]) -> GGMLType? {
        var share: [GGMLType: Int] = [:]
        for c in choices { share[c.type, default: 0] += c.bytes }
        return share.max { $0.value != $1.value ? $0.value < $1.value : $0.key.rawValue > $1.key.rawValue }?.key
    }

    /// A type per weight matrix for `budget`, from measured sensitivities: what `run` does with a
    /// budget, callable again for other budgets (`compare --budgets`) without measuring anew.
    public struct BudgetPlan: Sendable {
        public var types: [String: GGMLType]
        public var plan: TypePlanner.Plan
        /// The whole file's bytes with these types, and the budget in bytes.
        public var fileBytes: Int
        public var target: Int
        /// The type holding most of the planned bytes (what the file is labelled).
        public var dominantType: GGMLType?
    }

    /// `fileSize(types)`: the whole file's size, exactly as it will be written.
    public static func plan(_ infos: [Sensitivity.TensorInfo], budget: CalibrationSettings.Budget, model path: String,
                            fileSize: ([String: GGMLType]) throws -> Int) throws -> BudgetPlan {
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
        return BudgetPlan(types: types, plan: plan, fileBytes: size, target: target, dominantType: dominantType(plan.choices))
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
