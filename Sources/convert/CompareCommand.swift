import ArgumentParser
import Batch
import Calibration
import Comparison
import Conversion
import Evaluation
import Foundation
import MappedIO
import ModelMapping
import Reports

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Size against quality for several quantization types of one checkpoint, in one table.",
        discussion: """
        The unquantized checkpoint is evaluated once and its log-probs kept; then each type is \
        quantized straight from the checkpoint (as `convert --type` would write it) and evaluated on \
        the same chunks with llama-perplexity's method: perplexity, its change, the KL divergence \
        from the reference (mean and 99th percentile) and how often the top token agrees. Rows are \
        sorted by file size. A type that fails is reported in its row; the others still run.

        nf4 is bitsandbytes' NF4 applied in memory (marked simulated): GGUF has no NF4 type, and \
        its file would be IQ4_NL, whose size it shows.

        Examples:
          edgequant compare ./SmolLM2-135M-Instruct --text wiki-eval.txt --chunks 40
          edgequant compare ./SmolLM2-135M-Instruct --types q8_0,q4_k_m,q4_0 \\
              --text wiki-eval.txt --imatrix imatrix.gguf --format csv > table.csv
          edgequant compare ./SmolLM2-135M-Instruct --text wiki-eval.txt \\
              --plot size-vs-kld.svg --keep ggufs/

        With --budgets, calibration runs once on --calibrate's text (importance matrix, GPTQ's \
        second moments, each tensor's sensitivity); then for each budget in bits per weight our \
        planned mix (as `convert --target-bpw` writes it) is measured beside the best of the \
        largest llama-quantize file types that fit the same bytes (within 2% of the largest), \
        written as llama-quantize writes them with the same importance matrix. The table gives both and how much lower our KL \
        divergence is; --plot draws both Pareto fronts.
          edgequant compare ./model --text wiki-eval.txt --calibrate wiki-calib.txt \\
              --budgets 2.5,3,3.5,4,4.5,5,6 --plot budgets.svg
        """
    )

    static let defaultTypes = "q8_0,q6_k,q5_k_m,q4_k_m,q4_0,iq4_nl,nf4"

    @Argument(help: "Hugging Face checkpoint directory (safetensors, config.json, tokenizer.json).")
    var modelDir: String

    @Option(help: ArgumentHelp("Comma-separated types (see `edgequant types`).", valueName: "TYPES"))
    var types = Self.defaultTypes

    @Option(help: "Evaluation text, plain or gzip-compressed (not the calibration text).")
    var text: String

    @Option(help: ArgumentHelp("Quantize with this importance matrix (llama-imatrix GGUF or .dat).", valueName: "FILE"))
    var imatrix: String?

    @Option(help: ArgumentHelp("Collect an importance matrix (and GPTQ statistics) on this text first, as `convert --calibrate`.", valueName: "TEXTFILE"))
    var calibrate: String?

    @Option(help: ArgumentHelp("Comma-separated budgets in bits per weight (e.g. 2.5,3,4.5): plan and measure our mix at each beside the best llama-quantize type that fits. Needs --calibrate.", valueName: "BPW,..."))
    var budgets: String?

    @Option(name: .customLong("sensitivity-file"), help: ArgumentHelp("With --budgets: reuse the sensitivities saved in FILE, or measure and save them there.", valueName: "FILE"))
    var sensitivityFile: String?

    @Option(help: "Context size of each evaluation chunk.") var ctx = 512
    @Option(help: "Maximum number of chunks (default: all the text gives).") var chunks: Int?
    @Option(help: "Worker threads.") var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: ArgumentHelp("Keep the GGUF files (and the reference log-probs, reference.logits) in DIR.", valueName: "DIR"))
    var keep: String?

    @Option(help: "Table format: md, csv or json.") var format: QualityTable.Format = .md
    @Flag(help: "Short for --format json.") var json = false

    @Option(help: ArgumentHelp("Also draw file size against mean KLD, with the Pareto front, as SVG or PNG (by extension; repeatable).", valueName: "FILE"))
    var plot: [String] = []

    @Flag(help: "No progress on stderr.") var quiet = false

    var typeList: [String] {
        types.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
    }

    var budgetList: [Double]? {
        budgets.map { $0.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) } }
    }

    func validate() throws {
        if let b = budgets {
            let list = budgetList ?? []
            guard !list.isEmpty, list.count == b.split(separator: ",").count, list.allSatisfy({ $0 > 0 && $0 <= 32 }) else {
                throw ValidationError("--budgets \(b): expected comma-separated bits per weight in (0, 32], e.g. 2.5,3,4.5")
            }
            guard calibrate != nil else { throw ValidationError("--budgets needs --calibrate TEXTFILE (the planner measures sensitivities on it)") }
            if imatrix != nil { throw ValidationError("--budgets collects its own importance matrix with --calibrate; drop --imatrix") }
        } else if sensitivityFile != nil {
            throw ValidationError("--sensitivity-file applies to --budgets")
        }
        let list = typeList
        guard !list.isEmpty else { throw ValidationError("--types is empty") }
        if let bad = list.first(where: { ComparisonSession.target(for: $0) == nil }) {
            throw unknownName("type in --types:", bad, choices: ConvertTarget.names)
        }
        if Set(list).count != list.count { throw ValidationError("--types lists a type twice") }
        if imatrix != nil && calibrate != nil { throw ValidationError("give --imatrix or --calibrate, not both") }
        guard ctx >= 8 else { throw ValidationError("--ctx must be at least 8") }
        if let c = chunks, c < 1 { throw ValidationError("--chunks must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let p = plot.first(where: { !["svg", "png"].contains(($0 as NSString).pathExtension.lowercased()) }) {
            throw ValidationError("--plot \(p): the name must end in .svg or .png")
        }
    }

    func run() throws {
        installSignalCleanup()
        do {
            let list = typeList
            let fm = FileManager.default
            let location = try ModelLocation.resolve(self.modelDir)
            let modelDir = location.path
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: modelDir, isDirectory: &isDir), isDir.boolValue else {
                throw CommandError.notADirectory(path: modelDir, what: "checkpoint directory")
            }
            try ModelFiles.preflight(modelDir)
            try checkInputFiles(text, imatrix, calibrate)
            for p in plot { try OutputFile.checkDestination(p) }
            let work: String
            if let k = keep {
                try fm.createDirectory(atPath: k, withIntermediateDirectories: true)
                work = k
            } else {
                work = (NSTemporaryDirectory() as NSString).appendingPathComponent("edgequant-compare-\(getpid())")
                try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
            }
            defer { if keep == nil { try? fm.removeItem(atPath: work) } }
            if let b = budgetList, let calib = calibrate {
                try runBudgets(b, calibrate: calib, work: work, modelDir: modelDir, directoryName: location.directoryName)
                return
            }
            let calibration: CalibrationSource = imatrix.map { .imatrix($0) } ?? calibrate.map { .calibrate($0) } ?? .none
            let session = ComparisonSession(
                modelDir: modelDir, directoryName: location.directoryName, eval: EvalSettings(text: text, ctx: ctx, chunks: chunks), threads: threads,
                calibration: calibration, referenceLogits: (work as NSString).appendingPathComponent("reference.logits"))
            // --calibrate runs the model over 32 chunks of 512 calibration tokens, 16 of them also
            // collecting second moments for GPTQ (about as much work again)
            let progress = RunProgress(types: list, chunks: try session.chunkCount(), show: !quiet,
                                       calibrationUnits: calibrate == nil ? 0 : 48 * 512 / Double(ctx))
            session.events = SessionEvents(phase: progress.phase, chunk: progress.chunk)
            try session.prepareReference(reuse: false)
            var rows: [QualityRow] = []
            for type in list {
                let row = try session.measure(type: type, output: keep, keep: keep != nil) // throws a full or read-only disk
                progress.finished(row)
                rows.append(row)
            }
            progress.done()
            if let r = session.referenceRow { rows.insert(r, at: 0) }
            rows = QualityTable.sortedBySize(rows)
            for p in plot { try writePlot(rows, to: p, model: session.modelName) }
            print(QualityTable.render(rows, format: json ? .json : format), terminator: "")
            let failed = rows.filter { $0.error != nil }
            if !failed.isEmpty {
                writeStderr("edgequant: \(failed.count) of \(list.count) types failed: \(failed.map(\.type).joined(separator: ", "))\n")
                throw ExitCode(1)
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            fail(error)
        }
    }

    /// `--budgets`: one calibration, then per budget our plan and the llama-quantize type that fits.
    func runBudgets(_ budgets: [Double], calibrate calib: String, work: String, modelDir: String, directoryName: String?) throws {
        let session = ComparisonSession(
            modelDir: modelDir, directoryName: directoryName, eval: EvalSettings(text: text, ctx: ctx, chunks: chunks), threads: threads,
            calibration: .calibrate(calib), referenceLogits: (work as NSString).appendingPathComponent("reference.logits"))
        var line = ProgressLine(quiet: quiet)
        func show(_ text: String, done: Bool) { line.show(text, done: done) }
        let start = Date()
        var step = ""
        session.events = SessionEvents(phase: { s, t in step = t.isEmpty ? s : "\(s) \(t)"; show("compare: \(step)", done: false) },
                                       chunk: { d, n in show("compare: \(step), chunk \(d)/\(n)", done: false) })
        try session.prepareReference(reuse: false)
        var settings = CalibrationSettings(text: calib)
        settings.sensitivityFile = sensitivityFile
        let rows = try session.measureBudgets(budgets, text: calib, settings: settings, keepDir: keep,
                                              log: { show($0, done: true) }, progress: { show($0, done: false) })
        show(String(format: "compare: %d budgets in %.0f s", budgets.count, Date().timeIntervalSince(start)), done: true)
        for p in plot {
            var points: [PlotPoint] = []
            for r in rows {
                if let s = r.ours.sizeBytes, let k = r.ours.kldMean { points.append(PlotPoint(label: String(format: "%.2g bpw", r.bpw), sizeBytes: s, kld: k, series: 0)) }
            }
            var seen = Set<String>()
            for r in rows {
                if let l = r.llama, let s = l.sizeBytes, let k = l.kldMean, seen.insert(l.type).inserted {
                    points.append(PlotPoint(label: l.type, sizeBytes: s, kld: k, series: 1))
                }
            }
            let name = session.modelName ?? URL(fileURLWithPath: modelDir).standardizedFileURL.lastPathComponent
            let title = "\(name): planned mixes vs llama-quantize types (KLD from \(session.referenceRow?.type ?? "the unquantized model"))"
            let names = ["edgequant --target-bpw", "llama-quantize --imatrix"]
            let bytes: [UInt8] = p.lowercased().hasSuffix(".png")
                ? SizeQualityPlot.png(points, title: title, seriesNames: names) : Array(SizeQualityPlot.svg(points, title: title, seriesNames: names).utf8)
            let out = try OutputFile(path: p)
            try out.write(bytes, at: 0)
            try out.commit()
        }
        print(BudgetRow.render(rows, format: json ? .json : format), terminator: "")
        let failed = rows.filter { ($0.ours.error != nil && !$0.tooSmall) || $0.llama?.error != nil }
        if !failed.isEmpty {
            writeStderr("edgequant: \(failed.count) of \(rows.count) budgets failed\n")
            throw ExitCode(1)
        }
    }

    /// Size against mean KLD for every measured type (the reference, at KLD 0, has no place on a log axis).
    func writePlot(_ rows: [QualityRow], to path: String, model: String?) throws {
        let points = rows.compactMap { r -> PlotPoint? in
            guard !r.reference, let s = r.sizeBytes, let k = r.kldMean else { return nil }
            return PlotPoint(label: r.type, sizeBytes: s, kld: k, simulated: r.simulated)
        }
        let name = model ?? URL(fileURLWithPath: modelDir).standardizedFileURL.lastPathComponent
        let ref = rows.first(where: \.reference)?.type ?? "the unquantized model"
        let title = "\(name): size vs quality (KLD from \(ref))"
        let bytes: [UInt8] = path.lowercased().hasSuffix(".png")
            ? SizeQualityPlot.png(points, title: title) : Array(SizeQualityPlot.svg(points, title: title).utf8)
        let out = try OutputFile(path: path) // removed unless committed
        try out.write(bytes, at: 0)
        try out.commit()
    }
}

extension QualityTable.Format: ExpressibleByArgument {}

/// One progress line for a whole multi-step run, with an ETA from the steps seen so far: the
/// reference evaluation, then per type a quantization and an evaluation of the same chunks.
final class RunProgress: @unchecked Sendable {
    let types: [String]
    let chunks: Int
    let show: Bool
    let tty = isatty(2) != 0
    let start = Date()
    private var unitsDone = 0.0
    private var quantizeUnits: [Double] = []
    private var stepStart = Date()
    private var step = "", type = ""
    private var chunkSeconds = 0.0, chunkCount = 0
    private var typesDone = 0
    /// `unitsDone` when the current type began, so a failed type still counts as done.
    private var typeStartUnits: Double?
    private var lastDraw = Date.distantPast

    /// Calibration's share of the work in evaluation chunks (0 without --calibrate).
    let calibrationUnits: Double

    init(types: [String], chunks: Int, show: Bool, calibrationUnits: Double = 0) {
        self.types = types
        self.chunks = chunks
        self.show = show
        self.calibrationUnits = calibrationUnits
    }

    /// Work in evaluation chunks: a quantization counts as the chunks its measured time is worth.
    private var totalUnits: Double {
        let q = quantizeUnits.isEmpty ? 2 : quantizeUnits.reduce(0, +) / Double(quantizeUnits.count)
        return Double(chunks * (1 + types.count)) + q * Double(types.count) + calibrationUnits
    }

    func phase(_ step: String, _ type: String) {
        let now = Date()
        if self.step == "quantize" || self.step == "calibrate" {
            let perChunk = chunkCount > 0 ? chunkSeconds / Double(chunkCount) : 1
            let u = now.timeIntervalSince(stepStart) / perChunk
            if self.step == "quantize" { quantizeUnits.append(u); unitsDone += u } else { unitsDone += calibrationUnits }
        }
        if !type.isEmpty && typeStartUnits == nil { typeStartUnits = unitsDone }
        self.step = step
        self.type = type
        stepStart = now
        if show && !tty { writeStderr("compare: \(status())\n") }
        draw(force: true)
    }

    func chunk(_ done: Int, _ total: Int) {
        chunkSeconds += Date().timeIntervalSince(stepStart)
        chunkCount += 1
        stepStart = Date()
        unitsDone += 1
        draw(force: done == total)
    }

    func finished(_ row: QualityRow) {
        if row.error != nil, let u = typeStartUnits {
            let q = quantizeUnits.isEmpty ? 2 : quantizeUnits.reduce(0, +) / Double(quantizeUnits.count)
            unitsDone = max(unitsDone, u + Double(chunks) + q)
        }
        typeStartUnits = nil
        typesDone += 1
        if show, let e = row.error { writeStderr((tty ? "\r\u{1B}[K" : "") + "compare: \(row.type) failed: \(e)\n") }
        step = ""
    }

    func done() {
        if show && tty { writeStderr("\r\u{1B}[K") }
        if show { writeStderr(String(format: "compare: %d types in %.0f s\n", types.count, Date().timeIntervalSince(start))) }
    }

    private func describe() -> String {
        switch step {
        case "reference": "reference (unquantized) evaluation"
        case "calibrate": "calibration (importance matrix, GPTQ statistics)"
        default: "[\(typesDone + 1)/\(types.count)] \(step) \(type)"
        }
    }

    private func draw(force: Bool) {
        guard show, tty, force || Date().timeIntervalSince(lastDraw) > 0.2 else { return }
        lastDraw = Date()
        writeStderr("\r\u{1B}[K" + status())
    }

    private func status() -> String {
        let el = Date().timeIntervalSince(start)
        let frac = min(1, unitsDone / totalUnits)
        let eta = unitsDone > 0 ? clock(el / unitsDone * max(0, totalUnits - unitsDone)) : "?"
        return String(format: "%@  %3.0f%%  elapsed %@  ETA %@", describe(), 100 * frac, clock(el), eta)
    }

    private func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
