import Foundation
import GGUFWriter
import StrictJSON

// A port of gguf-py's naming metadata (gguf/metadata.py `Metadata.load`,
// `apply_metadata_heuristic`, `get_model_id_components`, `id_to_title`, `set_gguf_meta_model`
// and gguf/utility.py `size_label`, `naming_convention`, `fill_templated_filename`), plus the
// part of convert_hf_to_gguf's `prepare_metadata` that decides `general.name` / size label and
// the default output file name.
//
// What the caller must supply:
//   * `totalParams` etc. are what `GGUFWriter.get_total_parameter_count()` returns after all
//     tensors were added: the sum of element counts (product of the logical shape, not bytes) of
//     every tensor WRITTEN to the GGUF: 1-D norms and generated tensors (rope_freqs) count, a tied
//     `output.weight` that is not written does not. For dense models
//     totalParams == sharedParams, expertParams == 0, expertCount == 0.
//   * `hfConfig` is the raw `config.json` (Metadata reads the file itself, not convert's hparams).
//   * `modelDirectory` is the path as given on the command line (pathlib does not resolve it;
//     the name heuristics use its last component, so "." gives an empty, unwritten name and a
//     file name starting with "-", exactly like Python).
//   * The order: callers write `general.architecture` and `general.type` ("model") first, then
//     `ggufKeys()`, then the architecture parameters, file type and quantization version.
//
// Left out (documented, not silently different where it matters):
//   * `--metadata` override file and `--remote` HF ids (no such options in edgequant).
//   * LoRA adapters (negative totalParams) are handled by the heuristics but never produced.
//   * README.md's YAML front matter is parsed by libyaml through Yams with PyYAML's implicit
//     typing (ModelCardFrontMatter.swift); a card the two parsers read differently (a repeated key,
//     explicit tags) is refused. Values whose Python type would make convert crash or write
//     non-string arrays (numbers/booleans/dates where strings are expected) in the keys convert
//     reads -> `ModelNamingError` instead of a guess. Falsy non-strings (false, 0, [], {}) that
//     Python silently skips are skipped too, except in basename/finetune/version/size_label,
//     where they would break Python's file naming.
//   * Python crashes in naming_convention when `name` is a falsy non-string and there is no
//     basename; here the name is just empty.
//   * generation_config.json is parsed with StrictJSON: a file Python's json accepts but
//     StrictJSON refuses (duplicate keys, NaN) is treated as absent; Python only treats
//     undecodable files that way.

/// Why naming metadata could not be derived exactly the way gguf-py would.
public struct ModelNamingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The `general.*` authorship / naming / sampling metadata convert_hf_to_gguf writes.
public struct ModelNaming: Sendable, Equatable {
    /// A `general.base_model.N.*` or `general.dataset.N.*` entry.
    public struct Source: Sendable, Equatable {
        public var name: String?
        public var author: String?
        public var version: String?
        public var organization: String?
        public var description: String?
        public var url: String?
        public var doi: String?
        public var uuid: String?
        public var repoURL: String?

        public init(name: String? = nil, author: String? = nil, version: String? = nil,
                    organization: String? = nil, description: String? = nil, url: String? = nil,
                    doi: String? = nil, uuid: String? = nil, repoURL: String? = nil) {
            self.name = name; self.author = author; self.version = version
            self.organization = organization; self.description = description; self.url = url
            self.doi = doi; self.uuid = uuid; self.repoURL = repoURL
        }
    }

    // general.sampling.* (from generation_config.json)
    public var samplingSequence: String?
    public var samplingTopK: Int32?
    public var samplingTopP: Float?
    public var samplingMinP: Float?
    public var samplingXTCProbability: Float?
    public var samplingXTCThreshold: Float?
    public var samplingTemp: Float?
    public var samplingPenaltyLastN: Int32?
    public var samplingPenaltyRepeat: Float?
    public var samplingMirostat: Int32?
    public var samplingMirostatTau: Float?
    public var samplingMirostatEta: Float?

    // authorship
    public var name: String?
    public var author: String?
    public var version: String?
    public var organization: String?
    public var finetune: String?
    public var basename: String?
    public var description: String?
    public var quantizedBy: String?
    public var sizeLabel: String?
    /// A YAML list of licenses is already joined with "," as set_gguf_meta_model does.
    public var license: String?
    public var licenseName: String?
    public var licenseLink: String?
    public var url: String?
    public var doi: String?
    public var uuid: String?
    public var repoURL: String?
    public var sourceURL: String?
    public var sourceDOI: String?
    public var sourceUUID: String?
    public var sourceRepoURL: String?
    public var baseModels: [Source]?
    public var datasets: [Source]?
    public var tags: [String]?
    public var languages: [String]?

    public init() {}
}

// MARK: - Entry points

extension ModelNaming {
    /// `Metadata.load(None, dir_model, model_name, total_params)` followed by the naming part of
    /// `prepare_metadata` (name fallback, computed size label). Reads `README.md` and
    /// `generation_config.json` from `modelDirectory` when it is a directory.
    /// `directoryName` stands for the directory's own name where that is not the model's (a hub
    /// cache snapshot is named by its commit hash).
    public static func infer(modelDirectory: String, directoryName: String? = nil, hfConfig: JSONValue?, totalParams: Int,
                             sharedParams: Int = 0, expertParams: Int = 0, expertCount: Int = 0,
                             modelName: String? = nil) throws(ModelNamingError) -> ModelNaming {
        let dirPath = modelDirectory.isEmpty ? "." : modelDirectory
        var isDir: ObjCBool = false
        var cardText: String?
        var genConfig: JSONValue?
        if FileManager.default.fileExists(atPath: dirPath, isDirectory: &isDir), isDir.boolValue {
            let base = URL(fileURLWithPath: dirPath, isDirectory: true)
            let cardPath = base.appendingPathComponent("README.md").path
            var cardIsDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: cardPath, isDirectory: &cardIsDir), !cardIsDir.boolValue {
                guard let data = FileManager.default.contents(atPath: cardPath) else {
                    throw ModelNamingError("cannot read \(cardPath)")
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    throw ModelNamingError("\(cardPath) is not valid UTF-8")
                }
                cardText = text
            }
            let genPath = base.appendingPathComponent("generation_config.json").path
            var genIsDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: genPath, isDirectory: &genIsDir), !genIsDir.boolValue,
               let data = FileManager.default.contents(atPath: genPath) {
                genConfig = try? JSONParser.parse(data)
            }
        }
        return try infer(directoryName: directoryName ?? pathName(modelDirectory), modelCardText: cardText,
                         generationConfig: genConfig, hfConfig: hfConfig, totalParams: totalParams,
                         sharedParams: sharedParams, expertParams: expertParams,
                         expertCount: expertCount, modelName: modelName)
    }

    /// Same as `infer(modelDirectory:...)` with the file contents supplied directly.
    /// `directoryName` is pathlib's `Path(dir).name` (see `pathName`), `modelCardText` the whole
    /// README.md (nil when absent), `generationConfig` the parsed generation_config.json.
    public static func infer(directoryName: String, modelCardText: String?, generationConfig: JSONValue?,
                             hfConfig: JSONValue?, totalParams: Int, sharedParams: Int = 0,
                             expertParams: Int = 0, expertCount: Int = 0,
                             modelName: String? = nil) throws(ModelNamingError) -> ModelNaming {
        var m = ModelNaming()

        // Model card heuristics
        if let text = modelCardText {
            let card = try FrontMatter(readme: text)
            try m.applyModelCard(card, totalParams: totalParams)
        }

        // Hugging Face parameter heuristics
        if case .object(let o) = hfConfig, let v = o["_name_or_path"] {
            switch v {
            case .null: break
            case .string(let s):
                if s.unicodeScalars.filter({ $0 == "/" }).count <= 1 {
                    m.fillFromID(s, totalParams: totalParams)
                }
            default:
                throw ModelNamingError("config.json _name_or_path is not a string")
            }
        }

        // Directory name fallback heuristics
        m.fillFromID(directoryName, totalParams: totalParams)

        // generation_config.json
        if case .object(let g) = generationConfig, g.count > 0 {
            try m.applyGenerationConfig(g)
        }

        // --model-name
        if let modelName { m.name = modelName }

        // prepare_metadata
        if m.name == nil { m.name = directoryName }
        if m.sizeLabel == nil && totalParams > 0 {
            m.sizeLabel = sizeLabel(totalParams: totalParams, sharedParams: sharedParams,
                                    expertParams: expertParams, expertCount: expertCount)
        }
        return m
    }

    /// pathlib's `Path(p).name`: the last non-empty, non-"." component ("" for "." or "/").
    public static func pathName(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return parts.last.map(String.init) ?? ""
    }

    /// gguf-py `size_label(total_params, shared_params, expert_params, expert_count)`.
    public static func sizeLabel(totalParams: Int, sharedParams: Int = 0, expertParams: Int = 0,
                                 expertCount: Int = 0) -> String {
        if expertCount > 0 {
            let pretty = roundedNotation(abs(sharedParams) + abs(expertParams), minDigits: 2)
            return "\(expertCount)x\(pretty)"
        }
        return roundedNotation(abs(totalParams), minDigits: 2)
    }

    /// gguf-py `model_weight_count_rounded_notation`.
    static func roundedNotation(_ count: Int, minDigits: Int) -> String {
        let c = Double(count)
        let scaled: Double
        let suffix: String
        if c > 1e12 { scaled = c * 1e-12; suffix = "T" }
        else if c > 1e9 { scaled = c * 1e-9; suffix = "B" }
        else if c > 1e6 { scaled = c * 1e-6; suffix = "M" }
        else { scaled = c * 1e-3; suffix = "K" }
        let rounded = scaled.rounded(.toNearestOrEven)
        var digits = rounded < 1e18 ? String(Int(rounded)) : String(format: "%.0f", rounded)
        while digits.hasPrefix("0") { digits.removeFirst() }
        let fix = max(minDigits - digits.count, 0)
        return String(format: "%.\(fix)f", scaled) + suffix
    }

    /// gguf-py `naming_convention(model_name, base_name, finetune_string, version_string,
    /// size_label, output_type, model_type)` (without ".gguf").
    public static func namingConvention(modelName: String?, baseName: String?, finetune: String?,
                                        version: String?, sizeLabel: String?, outputType: String?,
                                        modelType: String? = nil) -> String {
        func dashed(_ s: String) -> String { Py.replace(Py.strip(s), " ", "-") }
        let name: String
        if let baseName { name = Py.replace(dashed(baseName), "/", "-") }
        else if let modelName { name = Py.replace(dashed(modelName), "/", "-") }
        else { name = "ggml-model" }
        let parameters = sizeLabel.map { "-\($0)" } ?? ""
        let ft = finetune.map { "-" + dashed($0) } ?? ""
        let ver = version.map { "-" + dashed($0) } ?? ""
        let encoding = outputType.map { "-" + Py.upper(dashed($0)) } ?? ""
        let kind = modelType.map { "-" + dashed($0) } ?? ""
        return name + parameters + ft + ver + encoding + kind
    }

    /// The file name convert_hf_to_gguf picks when the output path is a directory:
    /// `naming_convention(...) + ".gguf"`. `fileTypeName` is `LlamaFileType.name` ("Q8_0",
    /// "BF16", "F16", "F32"), i.e. Python's `ftype.name.partition("_")[2]`; it is upper-cased.
    public static func defaultFileName(naming: ModelNaming, fileTypeName: String) -> String {
        namingConvention(modelName: naming.name, baseName: naming.basename, finetune: naming.finetune,
                         version: naming.version, sizeLabel: naming.sizeLabel,
                         outputType: fileTypeName) + ".gguf"
    }

    /// gguf-py `fill_templated_filename`: Python `str.format` with `{}`/`{0}`, `{outtype}`,
    /// `{ftype}` (lower-cased type) and `{OUTTYPE}`, `{FTYPE}` (upper-cased), `{{`/`}}` escapes.
    /// Throws where Python's format would raise (unknown field, second `{}`, format specs).
    public static func fillTemplatedFileName(_ template: String, outputType: String?) throws(ModelNamingError) -> String {
        let lower = outputType.map(Py.lower) ?? ""
        let upper = outputType.map(Py.upper) ?? ""
        let s = Array(template.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        var autoIndex = 0
        var usedManual = false
        while i < s.count {
            let c = s[i]
            if c == "{" {
                if i + 1 < s.count, s[i + 1] == "{" { out.append("{"); i += 2; continue }
                guard let close = s[(i + 1)...].firstIndex(of: "}") else {
                    throw ModelNamingError("output file name template: single '{' in \(template)")
                }
                let field = String(String.UnicodeScalarView(s[(i + 1)..<close]))
                switch field {
                case "":
                    if usedManual { throw ModelNamingError("output file name template mixes {} and {0}") }
                    if autoIndex > 0 { throw ModelNamingError("output file name template has more than one {}") }
                    autoIndex += 1
                    out.append(contentsOf: lower.unicodeScalars)
                case "0":
                    if autoIndex > 0 { throw ModelNamingError("output file name template mixes {} and {0}") }
                    usedManual = true
                    out.append(contentsOf: lower.unicodeScalars)
                case "outtype", "ftype": out.append(contentsOf: lower.unicodeScalars)
                case "OUTTYPE", "FTYPE": out.append(contentsOf: upper.unicodeScalars)
                default:
                    throw ModelNamingError("output file name template: unsupported field {\(field)}")
                }
                i = close + 1
            } else if c == "}" {
                guard i + 1 < s.count, s[i + 1] == "}" else {
                    throw ModelNamingError("output file name template: single '}' in \(template)")
                }
                out.append("}"); i += 2
            } else {
                out.append(c); i += 1
            }
        }
        return String(out)
    }
}
