import ArgumentParser
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
import StrictJSON
import Tokenizer
import Workers

/// `--calibrate` / `--target-size` / `--target-bpw`, shared by `convert` and `quantize`.
struct CalibrationOptions: ParsableArguments {
    @Option(name: .customLong("calibrate"), help: ArgumentHelp(
        "Calibration text (plain or .gz): collect an importance matrix on it with our inference and quantize with it; with --target-size/--target-bpw also measure each tensor's sensitivity.",
        valueName: "TEXTFILE"))
    var calibrate: String?

    @Option(name: .customLong("target-size"), help: ArgumentHelp(
        "Choose every tensor's type so the file is at most SIZE: bytes, or with a unit: 100MB, 3.5GB (10^6, 10^9) or MiB/GiB (2^20, 2^30). Needs --calibrate.",
        valueName: "SIZE"))
    var targetSize: String?

    @Option(name: .customLong("target-bpw"), help: ArgumentHelp(
        "Like --target-size, as bits per weight over all tensor data.", valueName: "BITS"))
    var targetBPW: Double?

    @Option(name: .customLong("calib-chunks"), help: "Chunks of --calib-ctx tokens of calibration text for the importance matrix.")
    var calibChunks = 64

    @Option(name: .customLong("calib-ctx"), help: "Context (tokens per chunk) for calibration.")
    var calibCtx = 512

    @Option(name: .customLong("sensitivity-chunks"), help: "Chunks of calibration text each tensor's sensitivity is measured on (with --target-size/--target-bpw).")
    var sensitivityChunks = 2

    @Option(name: .customLong("sensitivity-file"), help: ArgumentHelp(
        "Reuse the sensitivities measured for this model from FILE if it exists, else measure and save them there: one measurement serves every budget.",
        valueName: "FILE"))
    var sensitivityFile: String?

    @Option(name: .customLong("gptq-chunks"), help: "Chunks of calibration text for the activation second moments GPTQ rounding uses (0: no GPTQ, importance-weighted rounding only).")
    var gptqChunks = 16

    var wantsBudget: Bool { targetSize != nil || targetBPW != nil }

    func validate() throws {
        if wantsBudget && calibrate == nil { throw ValidationError("--target-size and --target-bpw need --calibrate TEXTFILE") }
        if targetSize != nil && targetBPW != nil { throw ValidationError("give --target-size or --target-bpw, not both") }
        if let t = targetSize, Self.parseSize(t) == nil {
            throw ValidationError("--target-size \(t): expected bytes or a number with KB, MB, GB, KiB, MiB or GiB")
        }
        if let b = targetBPW, !(b > 0 && b <= 32) { throw ValidationError("--target-bpw must be in (0, 32]") }
        if calibChunks < 1 || sensitivityChunks < 1 || gptqChunks < 0 || calibCtx < 8 {
            throw ValidationError("calibration chunk counts must be ≥ 1 (--gptq-chunks ≥ 0) and --calib-ctx ≥ 8")
        }
    }

    static func parseSize(_ s: String) -> Int? {
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("B", 1)]
        let t = s.trimmingCharacters(in: .whitespaces)
        for (u, m) in units where t.uppercased().hasSuffix(u.uppercased()) {
            guard let v = Double(t.dropLast(u.count).trimmingCharacters(in: .whitespaces)), v > 0 else { return nil }
            return Int(v * m)
        }
        return Int(t).flatMap { $0 > 0 ? $0 : nil }
    }
}

/// What calibration produced: the importance matrix (always) and, with a budget, a type per tensor.
struct CalibrationResult {
    var imatrix: ImportanceMatrix
    var types: [String: GGMLType] = [:]
    /// Second moments of each weight's input, for GPTQ (empty with --gptq-chunks 0).
    var hessians: [String: Hessian] = [:]
}

enum Calibrate {
    /// `options` with every tensor of `types` pinned to its type (exact-name patterns, ahead of the
    /// user's own --tensor-type patterns).
    static func withTypes(_ types: [String: GGMLType], _ options: QuantizationPolicy.Options) -> QuantizationPolicy.Options {
        var o = options
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
    static func fileSize(_ plan: any OutputPlan) -> Int {
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
    static func f32Reference(_ m: Model, threads: Int) throws -> Model {
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

    /// Collects the importance matrix on `opts.calibrate` (and, with a budget, measures
    /// sensitivities and plans types). `budgetBytes(types)` gives the whole file's size for a type
    /// assignment of the weight matrices.
    static func run(model path: String, opts: CalibrationOptions, threads: Int, quiet: Bool,
                    fileSize: ([String: GGMLType]) throws -> Int) throws -> CalibrationResult {
        let text = opts.calibrate!
        func say(_ s: String) { if !quiet { FileHandle.standardError.write(Data((s + "\n").utf8)) } }
        let source = try ModelLoader.load(path)
        let tokenizer = try ModelLoader.tokenizer(path, for: source)
        let tokens = try ModelLoader.evaluationTokens(textFile: text, tokenizer: tokenizer)
        let ref = try f32Reference(source, threads: threads)
        let bos = ref.chunkBOS
        let collector = ImatrixCollector(model: ref, engine: GGMLEngine(threads: threads), threads: threads,
                                         options: .init(nCtx: opts.calibCtx, maxChunks: opts.calibChunks))
        let t0 = Date()
        let imatrix = try collector.run(tokens: tokens, datasets: [text], bos: bos) { p in
            if !quiet { FileHandle.standardError.write(Data(String(format: "\rcalibrate: importance matrix, chunk %d/%d", p.chunk, p.chunks).utf8)) }
        }
        say(String(format: "\rcalibrate: importance matrix of %d tensors from %d chunks of %d tokens in %.1f s",
                   imatrix.entries.count, imatrix.chunkCount, opts.calibCtx, Date().timeIntervalSince(t0)))
        var result = CalibrationResult(imatrix: imatrix)
        func chunked(_ n: Int) -> [[Int32]] {
            (0..<min(n, tokens.count / opts.calibCtx)).map { c in
                var ch = Array(tokens[(c * opts.calibCtx)..<((c + 1) * opts.calibCtx)])
                if let b = bos { ch[0] = b }
                return ch
            }
        }
        if opts.gptqChunks > 0 {
            let t2 = Date()
            try HessianCollector.checkMemory(ref)
            let collector = HessianCollector.collect(model: ref, chunks: chunked(opts.gptqChunks), threads: threads) { i, _ in
                if !quiet { FileHandle.standardError.write(Data(String(format: "\rcalibrate: activation second moments, chunk %d", i).utf8)) }
            }
            result.hessians = collector.hessians
            say(String(format: "\rcalibrate: second moments of %d inputs from %d chunks in %.1f s", Set(collector.hessians.values.map { ObjectIdentifier($0) }).count,
                       min(opts.gptqChunks, tokens.count / opts.calibCtx), Date().timeIntervalSince(t2)))
        }
        guard opts.wantsBudget else { return result }

        let chunks = chunked(opts.sensitivityChunks)
        let nChunks = chunks.count
        guard nChunks > 0 else { throw FileError(path: text, message: "too short for one chunk of \(opts.calibCtx) tokens") }
        let infos: [Sensitivity.TensorInfo]
        if let f = opts.sensitivityFile, FileManager.default.fileExists(atPath: f) {
            infos = try SensitivityFile.read(f, expecting: ref.weightMatrices)
            say("calibrate: sensitivities of \(infos.count) tensors from \(f)")
        } else {
            let t1 = Date()
            let sens = Sensitivity(reference: ref, chunks: chunks, threads: threads)
            infos = try sens.analyze(importance: imatrix.allQuantWeights()) { i, n, name in
                if !quiet { FileHandle.standardError.write(Data("\rcalibrate: sensitivity \(i)/\(n) \(name)                    ".utf8)) }
            }
            say(String(format: "\rcalibrate: sensitivity of %d tensors on %d chunks in %.1f s%@", infos.count, nChunks,
                       Date().timeIntervalSince(t1), String(repeating: " ", count: 30)))
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
        if let s = opts.targetSize {
            target = CalibrationOptions.parseSize(s)!
        } else {
            target = Int(opts.targetBPW! * Double(totalElements) / 8) + fixed
        }
        let items = infos.map { TypePlanner.Item(name: $0.name, options: $0.options) }
        guard var plan = TypePlanner.plan(items, budget: target - fixed) else {
            throw FileError(path: path, message: "no mix of types fits \(target) bytes (at least \(try fileSize(smallest)) bytes)")
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
        if size > target { throw FileError(path: path, message: "no mix of types fits \(target) bytes") }
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


/// Measured sensitivities on disk (JSON), so that several budgets reuse one measurement.
enum SensitivityFile {
    static func write(_ infos: [Sensitivity.TensorInfo], to path: String) throws {
        let tensors: [JSONValue] = infos.map { i in
            .obj(["name": .string(i.name), "rows": .int(i.rows), "cols": .int(i.cols), "probe": .string(i.probe.name),
                  "probe_kld": .double(i.probeKLD),
                  "options": .array(i.options.map { .obj(["type": .string($0.type.name), "bytes": .int($0.bytes), "loss": .double($0.loss)]) })])
        }
        let doc = JSONValue.obj(["format": .string("edgequant-sensitivity-1"), "tensors": .array(tensors)])
        let out = try OutputFile(path: path) // temp file + rename; removed unless committed
        try out.write(Array(doc.serialized(pretty: true).utf8), at: 0)
        try out.commit()
    }

    static func read(_ path: String, expecting weights: [String: Weight]) throws -> [Sensitivity.TensorInfo] {
        func fail(_ m: String) -> FileError { FileError(path: path, message: m) }
        let file = try MappedFile(path: path)
        let doc: JSONValue
        do { doc = try JSONParser.parse(file.all) } catch { throw fail("not a sensitivity file: \(error)") }
        guard doc["format"]?.stringValue == "edgequant-sensitivity-1", let list = doc["tensors"]?.arrayValue else {
            throw fail("not an edgequant sensitivity file (format edgequant-sensitivity-1)")
        }
        var infos: [Sensitivity.TensorInfo] = []
        for t in list {
            guard let name = t["name"]?.stringValue, let rows = t["rows"]?.intValue, let cols = t["cols"]?.intValue,
                  let opts = t["options"]?.arrayValue else { throw fail("a tensor entry lacks name, rows, cols or options") }
            guard let w = weights[name], w.rows == rows, w.cols == cols else {
                throw fail("tensor \(name) [\(cols), \(rows)] is not in this model; measured for another model?")
            }
            var info = Sensitivity.TensorInfo(name: name, rows: rows, cols: cols)
            info.probeKLD = t["probe_kld"]?.doubleValue ?? 0
            info.options = try opts.map { o in
                guard let tn = o["type"]?.stringValue, let type = GGMLType(name: tn), let b = o["bytes"]?.intValue,
                      let l = o["loss"]?.doubleValue, l.isFinite, l >= 0, b > 0 else { throw fail("tensor \(name): a bad option") }
                return TypePlanner.Option(type: type, bytes: b, loss: l)
            }
            guard !info.options.isEmpty else { throw fail("tensor \(name): no options") }
            infos.append(info)
        }
        guard Set(infos.map(\.name)) == Set(weights.keys) else { throw fail("does not cover this model's weight matrices") }
        return infos
    }
}
