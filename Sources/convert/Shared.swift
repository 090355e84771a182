import ArgumentParser
import Calibration
import Conversion
import Foundation
import GGUFWriter
import GGMLCore
import StrictJSON

/// llama-quantize's per-tensor type options, shared by `convert` and `quantize`.
struct MixOptions: ParsableArguments {
    @Option(name: .customLong("tensor-type"), help: ArgumentHelp("Override tensors whose name matches a regex, e.g. attn_v=q8_0 (repeatable; first match wins).", valueName: "PATTERN=TYPE"))
    var tensorType: [String] = []

    @Option(name: .customLong("output-tensor-type"), help: ArgumentHelp("Type of output.weight.", valueName: "TYPE"))
    var outputTensorType: String?

    @Option(name: .customLong("token-embedding-type"), help: ArgumentHelp("Type of token_embd.weight.", valueName: "TYPE"))
    var tokenEmbeddingType: String?

    @Flag(help: "Every quantizable tensor gets the file type's base type (no mix).")
    var pure = false

    func parseType(_ s: String, _ what: String) throws -> GGMLType {
        guard let t = GGMLType(name: s) else { throw ValidationError("\(what): unknown ggml type \(s)") }
        return t
    }

    func policyOptions() throws -> QuantizationPolicy.Options {
        var o = QuantizationPolicy.Options()
        o.pure = pure
        for spec in tensorType {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
                throw ValidationError("--tensor-type \(spec): expected PATTERN=TYPE")
            }
            o.tensorTypes.append((String(spec[..<eq]), try parseType(String(spec[spec.index(after: eq)...]), "--tensor-type")))
        }
        if let t = outputTensorType { o.outputTensorType = try parseType(t, "--output-tensor-type") }
        if let t = tokenEmbeddingType { o.tokenEmbeddingType = try parseType(t, "--token-embedding-type") }
        return o
    }
}

/// llama-quantize's importance-matrix options, shared by `convert` and `quantize`.
struct ImatrixOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Quantize with an importance matrix from llama-imatrix (GGUF or legacy .dat), as llama-quantize --imatrix.", valueName: "FILE"))
    var imatrix: String?

    @Option(name: .customLong("include-weights"), help: ArgumentHelp("Use imatrix data only for tensors whose name contains NAME (repeatable).", valueName: "NAME"))
    var includeWeights: [String] = []

    @Option(name: .customLong("exclude-weights"), help: ArgumentHelp("Use no imatrix data for tensors whose name contains NAME (repeatable).", valueName: "NAME"))
    var excludeWeights: [String] = []

    func validate() throws {
        if !includeWeights.isEmpty && !excludeWeights.isEmpty {
            throw ValidationError("--include-weights and --exclude-weights cannot be combined")
        }
        if imatrix == nil && !(includeWeights.isEmpty && excludeWeights.isEmpty) {
            throw ValidationError("--include-weights and --exclude-weights need --imatrix")
        }
    }

    /// What llama-quantize's prepare_imatrix hands to the quantizer, or nil without --imatrix.
    func load(quiet: Bool) throws -> ImatrixData? {
        guard let path = imatrix else { return nil }
        let m = try ImatrixReader.read(path: path)
        let data = ImatrixData(weights: m.allQuantWeights(), file: path, datasets: m.datasets, chunkCount: m.chunkCount)
            .filtered(include: includeWeights, exclude: excludeWeights)
        if !quiet {
            writeStderr("imatrix: \(m.entries.count) entries from \(path) computed on \(m.chunkCount) chunks"
                        + (m.datasets.isEmpty ? "" : " of \(m.datasets.joined(separator: ", "))")
                        + (data.weights.count == m.entries.count ? "" : "; \(data.weights.count) used") + "\n")
        }
        return data
    }

    /// Which tensors got no imatrix data (llama-quantize logs each; one line is enough).
    func reportMissing(_ plan: any OutputPlan, quiet: Bool) {
        guard !quiet, let q = plan as? QuantizePlan, !q.tensorsWithoutImatrix.isEmpty else { return }
        let names = q.tensorsWithoutImatrix
        writeStderr("imatrix: no data for \(names.count) tensor\(names.count == 1 ? "" : "s") (quantized without): "
                    + names.prefix(4).joined(separator: ", ") + (names.count > 4 ? ", …" : "") + "\n")
    }
}

/// Progress on stderr, redrawn at most ten times a second (a 70B model has thousands of tensors).
func progressPrinter(show: Bool, start: Date) -> ((Converter.Progress) -> Void)? {
    guard show else { return nil }
    nonisolated(unsafe) var lastDraw = Date.distantPast
    return { p in
        guard p.tensorIndex == p.tensorCount || Date().timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = Date()
        let el = Date().timeIntervalSince(start)
        let rate = el > 0 ? Double(p.bytesWritten) / el : 0
        let eta = rate > 0 ? Double(p.totalBytes - p.bytesWritten) / rate : 0
        writeStderr(String(format: "\r\u{1B}[K[%4d/%4d] %@  %@ / %@  %.0f MB/s  ETA %.0fs", p.tensorIndex, p.tensorCount,
                           p.name, formatBytes(p.bytesWritten), formatBytes(p.totalBytes), rate / 1e6, eta))
    }
}

func report(_ summary: Converter.Summary, fileType: LlamaFileType, json: Bool, quiet: Bool) {
    let types = summary.typeCounts.map { "\($0.1) \($0.0.name)" }.joined(separator: ", ")
    if json {
        var t = JSONObject()
        for (ty, n) in summary.typeCounts { t.append(ty.name, .int(n)) }
        let o = JSONValue.obj([
            "output": .string(summary.path), "files": .array(summary.paths.map { .string($0) }), "file_type": .string(fileType.name),
            "file_size": .int(summary.fileSize), "tensors": .int(summary.tensorCount),
            "tensor_types": .object(t), "seconds": .double(summary.seconds),
        ])
        print(o.serialized(pretty: true))
    } else if !quiet {
        let what = summary.paths.count == 1 ? summary.path : "\(summary.paths.count) splits \(summary.path) …"
        writeStderr(String(format: "wrote %@ (%@, %d tensors: %@) in %.2fs\n", what,
                           formatBytes(summary.fileSize), summary.tensorCount, types, summary.seconds))
    }
}

/// llama.cpp's split files instead of one (`llama-gguf-split --split` of the same file).
struct SplitOptions: ParsableArguments {
    @Option(name: .customLong("split-max-size"), help: ArgumentHelp(
        "Split the output into files of at most SIZE of tensor data: N M or N G as llama-gguf-split takes it (500M, 2G), or bytes, KB/MB/GB, KiB/MiB/GiB.",
        valueName: "SIZE"))
    var maxSize: String?

    @Option(name: .customLong("split-max-tensors"), help: ArgumentHelp("Split the output into files of at most N tensors.", valueName: "N"))
    var maxTensors: Int?

    func validate() throws {
        if maxSize != nil && maxTensors != nil { throw ValidationError("give --split-max-size or --split-max-tensors, not both") }
        if let s = maxSize, Self.parse(s) == nil {
            throw ValidationError("--split-max-size \(s): expected a positive size such as 500M, 2G or 4GiB")
        }
        if let n = maxTensors, n < 1 { throw ValidationError("--split-max-tensors must be at least 1") }
    }

    /// llama-gguf-split's M and G are 10^6 and 10^9 bytes.
    static func parse(_ s: String) -> Int? {
        let t = s.trimmingCharacters(in: .whitespaces)
        if let last = t.last, last == "M" || last == "G", let n = Int(t.dropLast()), n > 0 {
            return n * (last == "M" ? 1_000_000 : 1_000_000_000)
        }
        return CalibrationOptions.parseSize(t)
    }

    var limit: GGUFSplitPlan.Limit? {
        if let n = maxTensors { return .tensors(n) }
        return maxSize.flatMap(Self.parse).map { .bytes($0) }
    }
}
