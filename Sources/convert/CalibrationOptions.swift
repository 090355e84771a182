import ArgumentParser
import Calibration
import Conversion
import Foundation
import GGMLCore

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
    var calibChunks = CalibrationSettings.defaultChunks

    @Option(name: .customLong("calib-ctx"), help: "Context (tokens per chunk) for calibration.")
    var calibCtx = CalibrationSettings.defaultCtx

    @Option(name: .customLong("sensitivity-chunks"), help: "Chunks of calibration text each tensor's sensitivity is measured on (with --target-size/--target-bpw).")
    var sensitivityChunks = CalibrationSettings.defaultSensitivityChunks

    @Option(name: .customLong("sensitivity-ctx"), help: "Tokens per sensitivity chunk.")
    var sensitivityCtx = CalibrationSettings.defaultSensitivityCtx

    @Option(name: .customLong("sensitivity-probes"), help: ArgumentHelp(
        "layer: one run of the model per layer, shared among its matrices by the change each makes to the layer's output; tensor: one run per matrix (each matrix measured alone; about 7× the time for a Llama). Default: layer.",
        valueName: "layer|tensor"))
    var sensitivityProbes = Sensitivity.Probes.layer

    @Option(name: .customLong("sensitivity-file"), help: ArgumentHelp(
        "Reuse the sensitivities measured for this model from FILE if it exists, else measure and save them there: one measurement serves every budget.",
        valueName: "FILE"))
    var sensitivityFile: String?

    @Option(name: .customLong("gptq-chunks"), help: "Chunks of calibration text for the activation second moments GPTQ rounding uses (0: no GPTQ, importance-weighted rounding only). They are kept between passes in unlinked files in $TMPDIR (else /var/tmp), 4 bytes × width² per layer input, and with a budget also GPTQ's factors and the tensors measured: where the disk lacks room they are computed again, which costs only time.")
    var gptqChunks = CalibrationSettings.defaultGPTQChunks

    var wantsBudget: Bool { targetSize != nil || targetBPW != nil }

    func validate() throws {
        if wantsBudget && calibrate == nil { throw ValidationError("--target-size and --target-bpw need --calibrate TEXTFILE") }
        if targetSize != nil && targetBPW != nil { throw ValidationError("give --target-size or --target-bpw, not both") }
        if let t = targetSize, Self.parseSize(t) == nil {
            throw ValidationError("--target-size \(t): expected bytes or a number with KB, MB, GB, KiB, MiB or GiB")
        }
        if let b = targetBPW, !(b > 0 && b <= 32) { throw ValidationError("--target-bpw must be in (0, 32]") }
        if calibChunks < 1 || sensitivityChunks < 1 || gptqChunks < 0 || calibCtx < 8 || sensitivityCtx < 8 {
            throw ValidationError("calibration chunk counts must be ≥ 1 (--gptq-chunks ≥ 0), --calib-ctx and --sensitivity-ctx ≥ 8")
        }
    }

    /// The settings these options ask for; nil without --calibrate.
    var settings: CalibrationSettings? {
        guard let text = calibrate else { return nil }
        let budget: CalibrationSettings.Budget? = targetSize.flatMap(Self.parseSize).map { .bytes($0) } ?? targetBPW.map { .bitsPerWeight($0) }
        var s = CalibrationSettings(text: text, chunks: calibChunks, ctx: calibCtx, sensitivityChunks: sensitivityChunks,
                                    sensitivityFile: sensitivityFile, gptqChunks: gptqChunks, budget: budget)
        s.sensitivityCtx = sensitivityCtx
        s.sensitivityProbes = sensitivityProbes
        return s
    }

    /// Runs calibration with these settings, progress and finished steps on stderr unless `quiet`.
    func run(model: String, threads: Int, quiet: Bool, fileTypeMix: (LlamaFileType) throws -> [String: GGMLType]? = { _ in nil },
             fileSize: ([String: GGMLType], ImatrixData?) throws -> Int) throws -> CalibrationResult {
        var line = ProgressLine(quiet: quiet)
        func show(_ text: String, done: Bool) { line.show(text, done: done) }
        return try Calibrate.run(model: model, opts: settings!, threads: threads, log: { show($0, done: true) },
                                 progress: { show($0, done: false) }, fileTypeMix: fileTypeMix, fileSize: fileSize)
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
extension Sensitivity.Probes: ExpressibleByArgument {}
