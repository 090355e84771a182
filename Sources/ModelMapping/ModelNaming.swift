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
//   * The README.md YAML front matter is read by a small YAML subset parser (block mappings and
//     sequences, compact `- key: value` items, flow sequences of scalars, plain / quoted / block
//     scalars, comments, YAML 1.1 implicit typing of plain scalars). Keys convert does not read
//     are never parsed, so odd YAML there is ignored (PyYAML would parse or reject the whole
//     document). Anchors, aliases, tags, non-empty flow mappings, nested flow collections,
//     `key: value` pairs inside flow sequences, complex keys, or values whose Python type would
//     make convert crash or write non-string arrays (numbers/booleans/dates where strings are
//     expected) in the keys convert reads -> `ModelNamingError` instead of a guess. Falsy
//     non-strings (false, 0, [], {}) that Python silently skips are skipped too, except in
//     basename/finetune/version/size_label, where they would break Python's file naming.
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
    public static func infer(modelDirectory: String, hfConfig: JSONValue?, totalParams: Int,
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
        return try infer(directoryName: pathName(modelDirectory), modelCardText: cardText,
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

// MARK: - GGUF keys

extension ModelNaming {
    /// The key/value pairs `Metadata.set_gguf_meta_model` adds, in its order. Like GGUFWriter,
    /// empty strings and empty arrays are skipped. (`general.architecture` and `general.type`
    /// come before these in convert's output and are not included.)
    public func ggufKeys() -> [(String, GGUFValue)] {
        var kv: [(String, GGUFValue)] = []
        func str(_ key: String, _ v: String?) {
            if let v, !v.isEmpty { kv.append((key, .string(v))) }
        }
        func f32(_ key: String, _ v: Float?) { if let v { kv.append((key, .float32(v))) } }
        func i32(_ key: String, _ v: Int32?) { if let v { kv.append((key, .int32(v))) } }

        str("general.sampling.sequence", samplingSequence)
        i32("general.sampling.top_k", samplingTopK)
        f32("general.sampling.top_p", samplingTopP)
        f32("general.sampling.min_p", samplingMinP)
        f32("general.sampling.xtc_probability", samplingXTCProbability)
        f32("general.sampling.xtc_threshold", samplingXTCThreshold)
        f32("general.sampling.temp", samplingTemp)
        i32("general.sampling.penalty_last_n", samplingPenaltyLastN)
        f32("general.sampling.penalty_repeat", samplingPenaltyRepeat)
        i32("general.sampling.mirostat", samplingMirostat)
        f32("general.sampling.mirostat_tau", samplingMirostatTau)
        f32("general.sampling.mirostat_eta", samplingMirostatEta)

        str("general.name", name)
        str("general.author", author)
        str("general.version", version)
        str("general.organization", organization)
        str("general.finetune", finetune)
        str("general.basename", basename)
        str("general.description", description)
        str("general.quantized_by", quantizedBy)
        str("general.size_label", sizeLabel)
        str("general.license", license)
        str("general.license.name", licenseName)
        str("general.license.link", licenseLink)
        str("general.url", url)
        str("general.doi", doi)
        str("general.uuid", uuid)
        str("general.repo_url", repoURL)
        str("general.source.url", sourceURL)
        str("general.source.doi", sourceDOI)
        str("general.source.uuid", sourceUUID)
        str("general.source.repo_url", sourceRepoURL)

        func sources(_ list: [Source]?, _ prefix: String) {
            guard let list else { return }
            kv.append(("general.\(prefix).count", .uint32(UInt32(truncatingIfNeeded: list.count))))
            for (i, e) in list.enumerated() {
                let p = "general.\(prefix).\(i)."
                str(p + "name", e.name)
                str(p + "author", e.author)
                str(p + "version", e.version)
                str(p + "organization", e.organization)
                str(p + "description", e.description)
                str(p + "url", e.url)
                str(p + "doi", e.doi)
                str(p + "uuid", e.uuid)
                str(p + "repo_url", e.repoURL)
            }
        }
        sources(baseModels, "base_model")
        sources(datasets, "dataset")

        if let tags, !tags.isEmpty { kv.append(("general.tags", .strings(tags))) }
        if let languages, !languages.isEmpty { kv.append(("general.languages", .strings(languages))) }
        return kv
    }
}

// MARK: - Heuristics

extension ModelNaming {
    /// The result of `Metadata.get_model_id_components`.
    public struct IDComponents: Sendable, Equatable {
        public var fullName: String?
        public var organization: String?
        public var basename: String?
        public var finetune: String?
        public var version: String?
        public var sizeLabel: String?

        public init(fullName: String? = nil, organization: String? = nil, basename: String? = nil,
                    finetune: String? = nil, version: String? = nil, sizeLabel: String? = nil) {
            self.fullName = fullName; self.organization = organization; self.basename = basename
            self.finetune = finetune; self.version = version; self.sizeLabel = sizeLabel
        }
    }

    private mutating func fillFromID(_ id: String, totalParams: Int) {
        let c = ModelNaming.modelIDComponents(id, totalParams: totalParams)
        if name == nil, let n = c.fullName { name = ModelNaming.idToTitle(n) }
        if organization == nil, let o = c.organization { organization = ModelNaming.idToTitle(o) }
        if basename == nil, let b = c.basename { basename = b }
        if finetune == nil, let f = c.finetune { finetune = f }
        if version == nil, let v = c.version { version = v }
        if sizeLabel == nil, let s = c.sizeLabel { sizeLabel = s }
    }

    /// gguf-py `Metadata.id_to_title`.
    public static func idToTitle(_ string: String) -> String {
        let words = Py.split(Py.replace(Py.strip(string), "-", " "))
        return words.map { w -> String in
            let s = Array(w.unicodeScalars)
            if Py.isLower(s) && !titleExempt(s) { return Py.title(s) }
            return w
        }.joined(separator: " ")
    }

    /// `re.match(r'^(v\d+(?:\.\d+)*|\d.*)$', w)` for a word without whitespace.
    private static func titleExempt(_ w: [Unicode.Scalar]) -> Bool {
        guard let first = w.first else { return false }
        if Py.isDecimal(first) { return true }
        if first == "v" { return dottedDigits(w[1...]) }
        return false
    }

    /// `\d+([.]\d+)*` over the whole slice.
    private static func dottedDigits(_ s: ArraySlice<Unicode.Scalar>) -> Bool {
        guard !s.isEmpty else { return false }
        var sawDigit = false
        for c in s {
            if c == "." {
                if !sawDigit { return false }
                sawDigit = false
            } else if Py.isDecimal(c) {
                sawDigit = true
            } else {
                return false
            }
        }
        return sawDigit
    }

    private enum Kind: Hashable { case basename, sizeLabel, finetune, version, type }

    /// gguf-py `Metadata.get_model_id_components`.
    public static func modelIDComponents(_ modelID: String?, totalParams: Int) -> IDComponents {
        guard let modelID else { return IDComponents() }
        let id = Array(modelID.unicodeScalars)
        if id.contains(" ") { return IDComponents(fullName: modelID) }

        var org: [Unicode.Scalar]?
        let full: [Unicode.Scalar]
        if let slash = id.firstIndex(of: "/") {
            org = Array(id[..<slash])
            full = Array(id[(slash + 1)...])
        } else {
            full = id
        }
        if let o = org, let f = o.first, f == "." { org = nil }

        var parts: [[Unicode.Scalar]] = full.split(separator: "-", omittingEmptySubsequences: true).map(Array.init)
        var types: [Set<Kind>] = Array(repeating: [], count: parts.count)

        for i in parts.indices {
            var part = parts[i]
            if isVersionPart(part) {
                types[i].insert(.version)
            } else if isQuantTypePart(part) {
                types[i].insert(.type)
                parts[i] = Array(Py.upper(Py.string(part)).unicodeScalars)
            } else if i > 0 && isSizePart(part) {
                part = part.map { $0 == "_" ? "." : $0 }
                if let last = part.last, Py.isDecimal(last) {
                    // weird bloom-7b1 notation: part[:-2] + "." + part[-1] + part[-2]
                    let n = part.count
                    var p = Array(part[..<max(n - 2, 0)])
                    p.append(".")
                    p.append(part[n - 1])
                    if n >= 2 { p.append(part[n - 2]) }
                    part = p
                }
                if part.count > 1, Py.isDecimal(part[part.count - 2]), let last = part.last,
                   "kmbt".unicodeScalars.contains(last) {
                    part[part.count - 1] = Unicode.Scalar(UInt8(last.value) - 0x20)
                }
                if totalParams != 0, let value = Py.float(part.dropLast()) {
                    let unit = part[part.count - 1]
                    let idx = Array(" KMBT".unicodeScalars).firstIndex(of: unit) ?? -1
                    let labelParams = value * (idx >= 0 ? pow(1000.0, Double(idx)) : pow(1000.0, -1.0))
                    let tooSmallForLoRA = totalParams < 0
                        && labelParams < Double(abs(totalParams) / 8)
                    let farFromModel = totalParams > 0
                        && abs(labelParams - Double(totalParams)) > Double(7 * totalParams / 8)
                    if tooSmallForLoRA || farFromModel {
                        // likely a context length
                        types[i].insert(.finetune)
                        part = Array(part.dropLast()) + Array(Py.lower(Py.string([unit])).unicodeScalars)
                    }
                }
                if types[i].isEmpty { types[i].insert(.sizeLabel) }
                parts[i] = part
            } else if i > 0 && isFinetuneWord(part) {
                if totalParams < 0 && Array(Py.lower(Py.string(part)).unicodeScalars) == Array("lora".unicodeScalars) {
                    types[i].insert(.type)
                } else {
                    types[i].insert(.finetune)
                }
            }
        }

        // Ignore word-based size labels when there is at least a number-based one present
        let numericSize = zip(parts, types).contains { p, t in t.contains(.sizeLabel) && p.contains(where: Py.isDecimal) }
        if numericSize {
            for i in parts.indices where types[i].contains(.sizeLabel) && parts[i].allSatisfy(Py.isAlpha) {
                types[i].remove(.sizeLabel)
            }
        }

        var atStart = true
        for i in parts.indices {
            if atStart && ((types[i].isEmpty && Py.isAlpha(parts[i][0])) || types[i].contains(.version)) {
                types[i].insert(.basename)
            } else {
                if atStart { atStart = false }
                if types[i].isEmpty { types[i].insert(.finetune) }
            }
        }

        // Remove the basename annotation from trailing version
        for i in parts.indices.reversed() {
            if types[i].contains(.basename) && types[i].count > 1 {
                types[i].remove(.basename)
            } else {
                break
            }
        }

        func joined(_ pick: (Set<Kind>) -> Bool, dedupe: Bool = false) -> String? {
            var seen: [[Unicode.Scalar]] = []
            for (p, t) in zip(parts, types) where pick(t) {
                if dedupe && seen.contains(p) { continue }
                seen.append(p)
            }
            if seen.isEmpty { return nil }
            let s = seen.map { Py.string($0) }.joined(separator: "-")
            return s.isEmpty ? nil : s
        }

        var basename = joined { $0.contains(.basename) }
        let sizeLabel = joined({ $0.contains(.sizeLabel) }, dedupe: true)
        let finetune = joined { $0.contains(.finetune) }
        let version = joined { $0.contains(.version) && !$0.contains(.basename) }
        if sizeLabel == nil && finetune == nil && version == nil { basename = nil }

        return IDComponents(fullName: Py.string(full), organization: org.map(Py.string),
                            basename: basename, finetune: finetune, version: version,
                            sizeLabel: sizeLabel)
    }

    /// `re.fullmatch(r'(v|iter)?\d+([.]\d+)*', part, re.IGNORECASE)`
    private static func isVersionPart(_ s: [Unicode.Scalar]) -> Bool {
        if dottedDigits(s[...]) { return true }
        if let f = s.first, Py.ci(f, "v"), dottedDigits(s[1...]) { return true }
        if s.count > 4, Py.ciPrefix(s, "iter"), dottedDigits(s[4...]) { return true }
        return false
    }

    /// `re.fullmatch(r'i?q\d(_\w)*|b?fp?(16|32)', part, re.IGNORECASE)`
    private static func isQuantTypePart(_ s: [Unicode.Scalar]) -> Bool {
        func quant(_ from: Int) -> Bool {
            var i = from
            guard i < s.count, Py.ci(s[i], "q") else { return false }
            i += 1
            guard i < s.count, Py.isDecimal(s[i]) else { return false }
            i += 1
            while i < s.count {
                guard i + 1 < s.count, s[i] == "_", Py.isWord(s[i + 1]) else { return false }
                i += 2
            }
            return true
        }
        if quant(0) { return true }
        if let f = s.first, Py.ci(f, "i"), quant(1) { return true }
        // b?fp?(16|32)
        var i = 0
        if i < s.count, Py.ci(s[i], "b") { i += 1 }
        guard i < s.count, Py.ci(s[i], "f") else { return false }
        i += 1
        if i < s.count, Py.ci(s[i], "p") { i += 1 }
        let rest = String(String.UnicodeScalarView(s[i...]))
        return rest == "16" || rest == "32"
    }

    /// `re.fullmatch(r'(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)', part, re.I)`
    private static func isSizePart(_ s: [Unicode.Scalar]) -> Bool {
        for w in ["small", "mini", "medium", "large", "xl", "xxl"] where Py.ciEquals(s, w) { return true }
        // \d+([._]\d+)?[KMBT][\d]? from index i to the end
        func core(_ from: Int) -> Bool {
            var i = from
            let start = i
            while i < s.count, Py.isDecimal(s[i]) { i += 1 }
            guard i > start else { return false }
            if i < s.count, s[i] == "." || s[i] == "_" {
                let j = i + 1
                var k = j
                while k < s.count, Py.isDecimal(s[k]) { k += 1 }
                if k > j { i = k }
            }
            guard i < s.count, ["K", "M", "B", "T"].contains(where: { Py.ci(s[i], $0) }) else { return false }
            i += 1
            if i < s.count, Py.isDecimal(s[i]) { i += 1 }
            return i == s.count
        }
        if core(0) { return true }
        if let f = s.first, Py.ci(f, "a"), core(1) { return true }
        var i = 0
        while i < s.count, Py.isDecimal(s[i]) { i += 1 }
        if i > 0, i < s.count, Py.ci(s[i], "x"), core(i + 1) { return true }
        return false
    }

    /// `re.fullmatch(r'chat|instruct|vision|lora', part, re.IGNORECASE)`
    private static func isFinetuneWord(_ s: [Unicode.Scalar]) -> Bool {
        ["chat", "instruct", "vision", "lora"].contains { Py.ciEquals(s, $0) }
    }
}

// MARK: - generation_config.json

extension ModelNaming {
    private mutating func applyGenerationConfig(_ g: JSONObject) throws(ModelNamingError) {
        func present(_ key: String) -> JSONValue? {
            guard let v = g[key], v != .null else { return nil }
            return v
        }
        func int32(_ key: String) throws(ModelNamingError) -> Int32?? {
            guard g[key] != nil else { return .none }
            guard let v = present(key) else { return .some(nil) }
            switch v {
            case .int(let i):
                guard let r = Int32(exactly: i) else { throw ModelNamingError("generation_config.json \(key) out of int32 range") }
                return .some(r)
            case .bool(let b): return .some(b ? 1 : 0)
            default: throw ModelNamingError("generation_config.json \(key) is not an integer")
            }
        }
        func float32(_ key: String) throws(ModelNamingError) -> Float?? {
            guard g[key] != nil else { return .none }
            guard let v = present(key) else { return .some(nil) }
            let d: Double
            switch v {
            case .int(let i): d = Double(i)
            case .double(let x): d = x
            case .bool(let b): d = b ? 1 : 0
            default: throw ModelNamingError("generation_config.json \(key) is not a number")
            }
            let f = Float(d)
            if f.isInfinite && d.isFinite { throw ModelNamingError("generation_config.json \(key) too large for float32") }
            return .some(f)
        }
        if let v = g["sequence"] {
            switch v {
            case .null: samplingSequence = nil
            case .string(let s): samplingSequence = s
            default: throw ModelNamingError("generation_config.json sequence is not a string")
            }
        }
        if let v = try int32("top_k") { samplingTopK = v }
        if let v = try float32("top_p") { samplingTopP = v }
        if let v = try float32("min_p") { samplingMinP = v }
        if let v = try float32("xtc_probability") { samplingXTCProbability = v }
        if let v = try float32("xtc_threshold") { samplingXTCThreshold = v }
        if let v = try float32("temperature") { samplingTemp = v }
        if let v = try int32("penalty_last_n") { samplingPenaltyLastN = v }
        if let v = try float32("penalty_repeat") { samplingPenaltyRepeat = v }
        else if let v = try float32("repetition_penalty") { samplingPenaltyRepeat = v }
        if let v = try int32("mirostat") { samplingMirostat = v }
        if let v = try float32("mirostat_tau") { samplingMirostatTau = v }
        if let v = try float32("mirostat_eta") { samplingMirostatEta = v }
    }
}

// MARK: - Model card

extension ModelNaming {
    private mutating func applyModelCard(_ card: FrontMatter, totalParams: Int) throws(ModelNamingError) {
        // Python keeps whatever YAML gave; GGUFWriter.add_string then skips falsy values (False,
        // 0, [], {}) and crashes on other non-strings. A falsy value still blocks later sources, so
        // it becomes "" here (also skipped). basename/finetune/version/size_label also feed
        // naming_convention, where Python would crash or write "False"; those are refused. (A
        // falsy `name` makes Python's naming_convention crash only when there is no basename.)
        func string(_ key: String, naming: Bool) throws(ModelNamingError) -> String? {
            guard let node = card[key] else { return nil }
            switch node {
            case .null: return nil
            case .string(let s): return s
            case .unsupported(let why): throw ModelNamingError("README.md front matter `\(key)`: \(why)")
            default:
                if !naming && YAML.isFalsy(node) { return "" }
                throw ModelNamingError("README.md front matter `\(key)` is not a string")
            }
        }
        func use(_ field: WritableKeyPath<ModelNaming, String?>, _ key: String) throws(ModelNamingError) {
            let naming = [\ModelNaming.basename, \.finetune, \.version, \.sizeLabel].contains(field)
            if card[key] != nil && self[keyPath: field] == nil { self[keyPath: field] = try string(key, naming: naming) }
        }
        func useArray(_ field: WritableKeyPath<ModelNaming, [String]?>, _ key: String) throws(ModelNamingError) {
            guard let node = card[key] else { return }
            var current = self[keyPath: field] ?? []
            switch node {
            case .null: return
            case .string(let s): current.append(s)
            case .sequence(let items):
                for item in items {
                    guard case .string(let s) = item else {
                        throw ModelNamingError("README.md front matter `\(key)` has a non-string item")
                    }
                    current.append(s)
                }
            case .unsupported(let why): throw ModelNamingError("README.md front matter `\(key)`: \(why)")
            case .scalar, .mapping: break // Python appends nothing but still sets the list
            }
            self[keyPath: field] = current
        }

        // llama.cpp's own convention
        try use(\.name, "name")
        try use(\.author, "author")
        try use(\.version, "version")
        try use(\.organization, "organization")
        try use(\.description, "description")
        try use(\.finetune, "finetune")
        try use(\.basename, "basename")
        try use(\.sizeLabel, "size_label")
        try use(\.sourceURL, "url")
        try use(\.sourceDOI, "doi")
        try use(\.sourceUUID, "uuid")
        try use(\.sourceRepoURL, "repo_url")
        // ... with model_ prefix
        try use(\.name, "model_name")
        try use(\.author, "model_author")
        try use(\.version, "model_version")
        try use(\.organization, "model_organization")
        try use(\.description, "model_description")
        try use(\.finetune, "model_finetune")
        try use(\.basename, "model_basename")
        try use(\.sizeLabel, "model_size_label")
        try use(\.sourceURL, "model_url")
        try use(\.sourceDOI, "model_doi")
        try use(\.sourceUUID, "model_uuid")
        try use(\.sourceRepoURL, "model_repo_url")
        // seen in the wild (TheBloke)
        try use(\.name, "model_name")
        try use(\.author, "model_creator")
        try use(\.basename, "model_type")

        if let list = try sourceList(card, keys: ["base_model", "base_models", "base_model_sources"], totalParams: totalParams) {
            baseModels = (baseModels ?? []) + list
        }
        if let list = try sourceList(card, keys: ["datasets", "dataset", "dataset_sources"], totalParams: totalParams) {
            datasets = (datasets ?? []) + list
        }

        if card["license"] != nil && license == nil {
            switch card["license"]! {
            case .null: break
            case .string(let s): license = s
            case .sequence(let items):
                var parts: [String] = []
                for item in items {
                    guard case .string(let s) = item else {
                        throw ModelNamingError("README.md front matter `license` has a non-string item")
                    }
                    parts.append(s)
                }
                license = parts.joined(separator: ",")
            case .unsupported(let why): throw ModelNamingError("README.md front matter `license`: \(why)")
            case let node where YAML.isFalsy(node): license = ""
            default: throw ModelNamingError("README.md front matter `license` is not a string")
            }
        }
        try use(\.licenseName, "license_name")
        try use(\.licenseLink, "license_link")

        try useArray(\.tags, "tags")
        try useArray(\.tags, "pipeline_tag")
        try useArray(\.languages, "languages")
        try useArray(\.languages, "language")
    }

    /// The base_model / datasets handling of `apply_metadata_heuristic`; nil when none of the
    /// keys is present.
    private func sourceList(_ card: FrontMatter, keys: [String], totalParams: Int) throws(ModelNamingError) -> [Source]? {
        guard let key = keys.first(where: { card[$0] != nil }), let node = card[key] else { return nil }
        var ids: [YAMLNode] = []
        switch node {
        case .string: ids = [node]
        case .sequence(let items): ids = items
        case .unsupported(let why): throw ModelNamingError("README.md front matter `\(key)`: \(why)")
        default: break
        }
        var out: [Source] = []
        for id in ids {
            var entry = Source()
            switch id {
            case .string(let s):
                let scalars = Array(s.unicodeScalars)
                if s.hasPrefixScalars("http://") || s.hasPrefixScalars("https://") || s.hasPrefixScalars("ssh://") {
                    entry.repoURL = s
                    if s.containsScalars("huggingface.co"), let component = ModelNaming.huggingFaceURLComponent(scalars) {
                        let c = ModelNaming.modelIDComponents(component, totalParams: totalParams)
                        if let n = c.fullName { entry.name = ModelNaming.idToTitle(n) }
                        if let o = c.organization { entry.organization = ModelNaming.idToTitle(o) }
                        if let v = c.version { entry.version = v }
                    }
                } else {
                    let c = ModelNaming.modelIDComponents(s, totalParams: totalParams)
                    if let n = c.fullName { entry.name = ModelNaming.idToTitle(n) }
                    if let o = c.organization { entry.organization = ModelNaming.idToTitle(o) }
                    if let v = c.version { entry.version = v }
                    if let o = c.organization, let n = c.fullName {
                        entry.repoURL = "https://huggingface.co/\(o)/\(n)"
                    }
                }
            case .mapping(let pairs):
                func field(_ name: String) throws(ModelNamingError) -> String? {
                    guard let v = pairs.last(where: { $0.key == name })?.value else { return nil }
                    switch v {
                    case .null: return nil
                    case .string(let s): return s
                    case .unsupported(let why): throw ModelNamingError("README.md front matter `\(key)` entry `\(name)`: \(why)")
                    case let node where YAML.isFalsy(node): return nil
                    default: throw ModelNamingError("README.md front matter `\(key)` entry `\(name)` is not a string")
                    }
                }
                entry = Source(name: try field("name"), author: try field("author"), version: try field("version"),
                               organization: try field("organization"), description: try field("description"),
                               url: try field("url"), doi: try field("doi"), uuid: try field("uuid"),
                               repoURL: try field("repo_url"))
            case .unsupported(let why):
                throw ModelNamingError("README.md front matter `\(key)`: \(why)")
            default:
                break // Python logs an error and appends an empty entry
            }
            out.append(entry)
        }
        return out
    }

    /// `re.match(r"https?://huggingface.co/([^/]+/[^/]+)$", s).group(1)`
    static func huggingFaceURLComponent(_ s: [Unicode.Scalar]) -> String? {
        var i = 0
        func lit(_ t: String) -> Bool {
            let u = Array(t.unicodeScalars)
            guard i + u.count <= s.count, Array(s[i..<(i + u.count)]) == u else { return false }
            i += u.count
            return true
        }
        guard lit("http") else { return nil }
        _ = lit("s")
        guard lit("://huggingface") else { return nil }
        guard i < s.count, s[i] != "\n" else { return nil } // '.' matches anything but a newline
        i += 1
        guard lit("co/") else { return nil }
        let rest = s[i...]
        let pieces = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 2, !pieces[0].isEmpty, !pieces[1].isEmpty else { return nil }
        // `$` also matches before a final newline, but `[^/]+` is greedy and takes it.
        return Py.string(Array(rest))
    }
}

private extension String {
    func hasPrefixScalars(_ p: String) -> Bool {
        let a = Array(unicodeScalars), b = Array(p.unicodeScalars)
        return a.count >= b.count && Array(a[..<b.count]) == b
    }

    func containsScalars(_ p: String) -> Bool {
        let a = Array(unicodeScalars), b = Array(p.unicodeScalars)
        guard a.count >= b.count else { return false }
        for i in 0...(a.count - b.count) where Array(a[i..<(i + b.count)]) == b { return true }
        return false
    }
}

// MARK: - Python str semantics

/// The bits of CPython's str methods and `re` (Unicode, IGNORECASE) the heuristics rely on,
/// on Unicode scalars (Python indexes code points).
fileprivate enum Py {
    static func string<S: Sequence<Unicode.Scalar>>(_ s: S) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s)
        return String(v)
    }

    /// str.isspace
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// str.isdecimal / re `\d`
    static func isDecimal(_ c: Unicode.Scalar) -> Bool { c.properties.numericType == .decimal }

    /// str.isalpha
    static func isAlpha(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// re `\w`: str.isalnum() or "_"
    static func isWord(_ c: Unicode.Scalar) -> Bool {
        c == "_" || isAlpha(c) || c.properties.numericType != nil
    }

    /// str.islower
    static func isLower(_ s: [Unicode.Scalar]) -> Bool {
        var cased = false
        for c in s {
            let p = c.properties
            if p.isUppercase || p.generalCategory == .titlecaseLetter { return false }
            if p.isLowercase { cased = true }
        }
        return cased
    }

    /// str.title
    static func title(_ s: [Unicode.Scalar]) -> String {
        var out = ""
        var previousIsCased = false
        for c in s {
            out += previousIsCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
            previousIsCased = c.properties.isCased
        }
        return out
    }

    static func upper(_ s: String) -> String { s.unicodeScalars.map { $0.properties.uppercaseMapping }.joined() }
    static func lower(_ s: String) -> String { s.unicodeScalars.map { $0.properties.lowercaseMapping }.joined() }

    /// str.strip()
    static func strip(_ s: String) -> String {
        let a = Array(s.unicodeScalars)
        guard let first = a.firstIndex(where: { !isSpace($0) }), let last = a.lastIndex(where: { !isSpace($0) }) else { return "" }
        return string(a[first...last])
    }

    /// str.split()
    static func split(_ s: String) -> [String] {
        Array(s.unicodeScalars).split(whereSeparator: isSpace).map { string($0) }
    }

    /// str.replace(old, new) for a single-scalar `old`.
    static func replace(_ s: String, _ old: Unicode.Scalar, _ new: Unicode.Scalar) -> String {
        string(s.unicodeScalars.map { $0 == old ? new : $0 })
    }

    /// float(s) for what the size heuristic can produce: `\d+(\.\d*)?` or `\.\d+` (any Unicode
    /// decimal digits, as Python accepts); nil where Python raises ValueError.
    static func float(_ s: ArraySlice<Unicode.Scalar>) -> Double? {
        var ascii = ""
        var digits = 0
        var dots = 0
        for c in s {
            if c == "." { dots += 1; ascii.append("."); continue }
            guard isDecimal(c), let v = c.properties.numericValue else { return nil }
            digits += 1
            ascii.append(Character(String(Int(v))))
        }
        guard digits > 0, dots <= 1 else { return nil }
        return Double(ascii)
    }

    /// One scalar against one ASCII letter under re.IGNORECASE (including the special folds
    /// Python applies: İ ı ~ i, K (Kelvin) ~ k, ſ ~ s).
    static func ci(_ c: Unicode.Scalar, _ letter: Character) -> Bool {
        guard let a = letter.asciiValue else { return false }
        let lower = a | 0x20
        if c.value == UInt32(lower) || c.value == UInt32(lower & ~0x20) { return true }
        switch lower {
        case UInt8(ascii: "i"): return c.value == 0x130 || c.value == 0x131
        case UInt8(ascii: "k"): return c.value == 0x212A
        case UInt8(ascii: "s"): return c.value == 0x17F
        default: return false
        }
    }

    static func ciEquals(_ s: [Unicode.Scalar], _ word: String) -> Bool {
        let w = Array(word)
        return s.count == w.count && zip(s, w).allSatisfy { ci($0, $1) }
    }

    static func ciPrefix(_ s: [Unicode.Scalar], _ word: String) -> Bool {
        let w = Array(word)
        return s.count >= w.count && zip(s, w).allSatisfy { ci($0, $1) }
    }
}

// MARK: - README.md front matter (YAML subset)

/// A parsed YAML value, as far as the naming metadata needs it.
fileprivate indirect enum YAMLNode {
    case null
    case string(String)
    /// A plain scalar PyYAML resolves to bool / int / float / timestamp / merge / value.
    case scalar(String)
    case sequence([YAMLNode])
    case mapping([(key: String, value: YAMLNode)])
    /// YAML this parser does not handle (or that PyYAML would reject).
    case unsupported(String)
}

/// The top-level mapping of README.md's YAML front matter (`Metadata.load_model_card`).
/// Values are parsed only when asked for.
fileprivate struct FrontMatter {
    private var entries: [String: (inline: [Unicode.Scalar], body: [YAMLLine])] = [:]
    private var topIndent = 0

    init(readme: String) throws(ModelNamingError) {
        // open(..., encoding="utf-8").read(): universal newlines; then str.splitlines()
        var lines: [[Unicode.Scalar]] = []
        var cur: [Unicode.Scalar] = []
        let s = Array(readme.unicodeScalars)
        var i = 0
        var pendingLine = false
        while i < s.count {
            let c = s[i]
            switch c.value {
            case 0x0D, 0x0A, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
                lines.append(cur); cur = []; pendingLine = false
                if c.value == 0x0D, i + 1 < s.count, s[i + 1].value == 0x0A { i += 1 }
            default:
                cur.append(c); pendingLine = true
            }
            i += 1
        }
        if pendingLine { lines.append(cur) }
        guard let first = lines.first, first == Array("---".unicodeScalars) else { return }
        var yamlLines: [[Unicode.Scalar]] = []
        for line in lines.dropFirst() {
            if line == Array("---".unicodeScalars) { break }
            yamlLines.append(line)
        }
        var content: [Unicode.Scalar] = []
        for (n, l) in yamlLines.enumerated() {
            if n > 0 { content.append("\n") }
            content += l
        }
        content.append("\n")
        // the "Norway problem" hack and tab -> two spaces, as plain string replaces
        content = FrontMatter.replaceAll(content, Array("- no\n".unicodeScalars), Array("- \"no\"\n".unicodeScalars))
        content = FrontMatter.replaceAll(content, ["\t"], [" ", " "])

        var parsed: [YAMLLine] = []
        for raw in content.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let indent = raw.prefix(while: { $0 == " " }).count
            parsed.append(YAMLLine(indent: indent, text: Array(raw.dropFirst(indent))))
        }
        // a document end marker: only comments may follow (PyYAML wants a single document)
        if let end = parsed.firstIndex(where: { $0.indent == 0 && $0.text.count >= 3 && Array($0.text[..<3]) == [".", ".", "."]
                                                && ($0.text.count == 3 || $0.text[3] == " ") }) {
            guard parsed[(end + 1)...].allSatisfy({ $0.isBlank || $0.isComment }) else {
                throw ModelNamingError("README.md front matter: more than one YAML document")
            }
            parsed.removeSubrange(end...)
        }
        guard let firstContent = parsed.first(where: { !$0.isBlank && !$0.isComment }) else { return } // None
        if firstContent.text.first == "{" || firstContent.text.first == "?" {
            throw ModelNamingError("README.md front matter: flow or complex top-level mapping is not supported")
        }
        if YAML.keyLine(firstContent.text) == nil { return } // a scalar or a list, not a dict
        topIndent = firstContent.indent
        guard let top = YAML.splitMapping(parsed[...], indent: firstContent.indent) else {
            throw ModelNamingError("README.md front matter: YAML structure not understood")
        }
        for e in top { entries[e.key] = (e.inline, e.body) }
    }

    subscript(key: String) -> YAMLNode? {
        guard let e = entries[key] else { return nil }
        return YAML.parseNode(inline: e.inline, body: e.body, blockIndent: topIndent)
    }

    static func replaceAll(_ s: [Unicode.Scalar], _ old: [Unicode.Scalar], _ new: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if i + old.count <= s.count, s[i] == old[0], Array(s[i..<(i + old.count)]) == old {
                out += new
                i += old.count
            } else {
                out.append(s[i]); i += 1
            }
        }
        return out
    }
}

fileprivate struct YAMLLine {
    var indent: Int
    var text: [Unicode.Scalar]
    var isBlank: Bool { text.isEmpty }
    var isComment: Bool { text.first == "#" }
    var raw: [Unicode.Scalar] { Array(repeating: " ", count: indent) + text }
}

fileprivate enum YAML {
    typealias Scalars = [Unicode.Scalar]

    static func isSeqItem(_ t: Scalars) -> Bool { t.first == "-" && (t.count == 1 || t[1] == " ") }

    /// A block mapping key line: `key: rest` / `key:`; plain or quoted key.
    static func keyLine(_ t: Scalars) -> (key: String, rest: Scalars)? {
        guard let c = t.first else { return nil }
        if c == "\"" || c == "'" {
            var scan = Scanner(t + ["\n"])
            guard let key = scan.quoted() else { return nil }
            var j = scan.pos
            while j < t.count, t[j] == " " { j += 1 }
            guard j < t.count, t[j] == ":", j + 1 == t.count || t[j + 1] == " " else { return nil }
            return (key, Array(t[(j + 1)...]))
        }
        if "-?:".unicodeScalars.contains(c) && (t.count == 1 || t[1] == " ") { return nil }
        if ",[]{}#&*!|>%@`".unicodeScalars.contains(c) { return nil }
        var j = 0
        while j < t.count {
            if t[j] == ":" && (j + 1 == t.count || t[j + 1] == " ") {
                var k = j
                while k > 0, t[k - 1] == " " { k -= 1 }
                return (Py.string(t[..<k]), Array(t[(j + 1)...]))
            }
            if t[j] == "#" && j > 0 && t[j - 1] == " " { return nil }
            j += 1
        }
        return nil
    }

    /// Tracks an inline value that starts a quoted scalar or flow collection spanning lines.
    struct Continuation {
        var depth = 0
        var quote: Unicode.Scalar?
        var escape = false
        var prev: Unicode.Scalar?
        var done: Bool { depth == 0 && quote == nil }

        static func start(_ rest: Scalars) -> Continuation? {
            let r = rest.drop(while: { $0 == " " })
            guard let f = r.first, f == "\"" || f == "'" || f == "[" || f == "{" else { return nil }
            var c = Continuation()
            c.feed(Array(r))
            return c.done ? nil : c
        }

        mutating func feed(_ t: Scalars) {
            escape = false
            var i = 0
            while i < t.count {
                let ch = t[i]
                if let q = quote {
                    if q == "\"" {
                        if escape { escape = false } else if ch == "\\" { escape = true } else if ch == "\"" { quote = nil; if depth == 0 { return } }
                    } else if ch == "'" {
                        if i + 1 < t.count, t[i + 1] == "'" { i += 1 } else { quote = nil; if depth == 0 { return } }
                    }
                } else {
                    if ch == "#" && (i == 0 || t[i - 1] == " ") { return }
                    if (ch == "\"" || ch == "'") && (prev == nil || "[{,:".unicodeScalars.contains(prev!)) {
                        quote = ch
                    } else if ch == "[" || ch == "{" {
                        depth += 1
                    } else if ch == "]" || ch == "}" {
                        depth -= 1
                        if depth <= 0 { depth = 0; return }
                    }
                    if ch != " " { prev = ch }
                }
                i += 1
            }
        }
    }

    /// Splits a block mapping at `indent` into entries: key, the rest of the key line, and the
    /// lines belonging to the value. nil when the lines are not such a mapping.
    static func splitMapping(_ lines: ArraySlice<YAMLLine>, indent: Int) -> [(key: String, inline: Scalars, body: [YAMLLine])]? {
        var out: [(key: String, inline: Scalars, body: [YAMLLine])] = []
        var i = lines.startIndex
        while i < lines.endIndex {
            let l = lines[i]
            if l.isBlank || l.isComment { i += 1; continue }
            guard l.indent == indent, let (key, rest) = keyLine(l.text) else { return nil }
            i += 1
            var body: [YAMLLine] = []
            var cont = Continuation.start(rest)
            while i < lines.endIndex {
                let n = lines[i]
                if var c = cont {
                    body.append(n)
                    c.feed(n.raw)
                    cont = c.done ? nil : c
                    i += 1
                    continue
                }
                if n.isBlank || n.isComment || n.indent > indent || (n.indent == indent && isSeqItem(n.text)) {
                    body.append(n); i += 1; continue
                }
                break
            }
            if cont != nil { return nil }
            out.append((key, rest, body))
        }
        return out
    }

    /// The value after `key:` (or `- `): `inline` is the rest of that line, `body` the lines
    /// under it; `blockIndent` the indentation of the enclosing collection.
    static func parseNode(inline: Scalars, body: [YAMLLine], blockIndent: Int) -> YAMLNode {
        let r = Array(inline.drop(while: { $0 == " " }))
        if r.isEmpty || r[0] == "#" {
            guard let fi = body.firstIndex(where: { !$0.isBlank && !$0.isComment }) else { return .null }
            let first = body[fi]
            if isSeqItem(first.text) {
                guard first.indent >= blockIndent else { return .unsupported("bad indentation") }
                return parseBlockSequence(Array(body[fi...]), indent: first.indent)
            }
            guard first.indent > blockIndent else { return .unsupported("bad indentation") }
            if keyLine(first.text) != nil {
                return parseBlockMapping(Array(body[fi...]), indent: first.indent)
            }
            return parseNode(inline: first.text, body: Array(body[(fi + 1)...]), blockIndent: blockIndent)
        }
        var text = r + ["\n"]
        for l in body { text += l.raw + ["\n"] }
        var scan = Scanner(text, firstLineOffset: 1 << 20)
        let node: YAMLNode
        switch r[0] {
        case "\"", "'":
            guard let s = scan.quoted() else { return .unsupported("bad quoted scalar") }
            node = .string(s)
        case "[":
            node = scan.flowSequence()
            if case .unsupported = node { return node }
        case "|", ">":
            guard let s = scan.blockScalar(blockIndent: blockIndent) else { return .unsupported("bad block scalar") }
            node = .string(s)
        case "{":
            var j = 1
            while j < r.count, r[j] == " " { j += 1 }
            guard j < r.count, r[j] == "}" else { return .unsupported("flow mappings are not supported") }
            scan.forward(j + 1)
            node = .mapping([])
        case "&", "*", "!": return .unsupported("anchors, aliases and tags are not supported")
        case "%", "@", "`", "]", "}", ",": return .unsupported("invalid plain scalar")
        default:
            if (r[0] == "-" || r[0] == "?" || r[0] == ":") && (r.count == 1 || r[1] == " ") {
                return .unsupported("nested collection on one line is not supported")
            }
            let s = scan.plain(indent: blockIndent + 1, flow: false)
            node = resolvePlain(s)
        }
        guard scan.onlyCommentsLeft() else { return .unsupported("unexpected content after a value") }
        return node
    }

    static func parseBlockSequence(_ lines: [YAMLLine], indent: Int) -> YAMLNode {
        var items: [YAMLNode] = []
        var i = 0
        while i < lines.count {
            let l = lines[i]
            if l.isBlank || l.isComment { i += 1; continue }
            guard l.indent == indent, isSeqItem(l.text) else { return .unsupported("bad block sequence") }
            let inline = Array(l.text.dropFirst())
            i += 1
            var itemBody: [YAMLLine] = []
            while i < lines.count {
                let n = lines[i]
                if n.isBlank || n.isComment || n.indent > indent { itemBody.append(n); i += 1; continue }
                break
            }
            let lead = inline.prefix(while: { $0 == " " }).count
            let t = Array(inline.dropFirst(lead))
            let item: YAMLNode
            if !t.isEmpty, t[0] != "#", keyLine(t) != nil {
                let col = indent + 1 + lead
                item = parseBlockMapping([YAMLLine(indent: col, text: t)] + itemBody, indent: col)
            } else if isSeqItem(t) {
                let col = indent + 1 + lead
                item = parseBlockSequence([YAMLLine(indent: col, text: t)] + itemBody, indent: col)
            } else {
                item = parseNode(inline: inline, body: itemBody, blockIndent: indent)
            }
            if case .unsupported = item { return item }
            items.append(item)
        }
        return .sequence(items)
    }

    static func parseBlockMapping(_ lines: [YAMLLine], indent: Int) -> YAMLNode {
        guard let entries = splitMapping(lines[...], indent: indent) else { return .unsupported("bad block mapping") }
        return .mapping(entries.map { (key: $0.key, value: parseNode(inline: $0.inline, body: $0.body, blockIndent: indent)) })
    }

    // MARK: scalar resolution (PyYAML's YAML 1.1 implicit resolvers)

    /// Python truthiness of a non-string value: False, 0, 0.0, [] and {} are falsy.
    static func isFalsy(_ node: YAMLNode) -> Bool {
        switch node {
        case .null: return true
        case .string(let s): return s.isEmpty
        case .sequence(let a): return a.isEmpty
        case .mapping(let m): return m.isEmpty
        case .unsupported: return false
        case .scalar(let t):
            if ["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"].contains(t) { return true }
            var u = Array(t.utf8)[...]
            if let f = u.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { u = u.dropFirst() }
            guard let f = u.first, digit(f) || f == UInt8(ascii: ".") else { return false } // bools, timestamps...
            let a = Array(t.utf8)
            if isTimestamp(a) { return false }
            if u.count >= 2, u[u.startIndex] == UInt8(ascii: "0"), u[u.startIndex + 1] == UInt8(ascii: "b") || u[u.startIndex + 1] == UInt8(ascii: "x") {
                u = u.dropFirst(2)
            }
            if isFloat(a), let e = u.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) { u = u[..<e] }
            if [".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"].contains(String(decoding: u, as: UTF8.self)) { return false }
            return u.allSatisfy { $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") }
        }
    }

    static func resolvePlain(_ s: String) -> YAMLNode {
        switch s {
        case "", "~", "null", "Null", "NULL": return .null
        case "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
             "on", "On", "ON", "off", "Off", "OFF", "<<", "=":
            return .scalar(s)
        default: break
        }
        let u = Array(s.utf8)
        guard u.count == s.unicodeScalars.count else { return .string(s) } // non-ASCII: a string
        if isInt(u) || isFloat(u) || isTimestamp(u) { return .scalar(s) }
        return .string(s)
    }

    private static func digit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// `[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ |
    ///  [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+`
    private static func isInt(_ u: [UInt8]) -> Bool {
        var s = u[...]
        if let f = s.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { s = s.dropFirst() }
        guard let f = s.first else { return false }
        func all(_ t: ArraySlice<UInt8>, _ ok: (UInt8) -> Bool) -> Bool { !t.isEmpty && t.allSatisfy(ok) }
        if f == UInt8(ascii: "0") {
            if s.count == 1 { return true }
            let t = s.dropFirst()
            if t.first == UInt8(ascii: "b") { return all(t.dropFirst()) { $0 == 0x30 || $0 == 0x31 || $0 == 0x5F } }
            if t.first == UInt8(ascii: "x") {
                return all(t.dropFirst()) { digit($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) || $0 == 0x5F }
            }
            return all(t) { (0x30...0x37).contains($0) || $0 == 0x5F }
        }
        guard digit(f), f != UInt8(ascii: "0") else { return false }
        var i = s.startIndex + 1
        while i < s.endIndex, digit(s[i]) || s[i] == 0x5F { i += 1 }
        if i == s.endIndex { return true }
        return sexagesimalTail(s[i...])
    }

    /// `(?::[0-5]?[0-9])+` to the end.
    private static func sexagesimalTail(_ t: ArraySlice<UInt8>) -> Bool {
        var i = t.startIndex
        var groups = 0
        while i < t.endIndex {
            guard t[i] == UInt8(ascii: ":") else { return false }
            i += 1
            var n = 0
            while i < t.endIndex, digit(t[i]), n < 2 { i += 1; n += 1 }
            guard n >= 1 else { return false }
            if n == 2 && t[i - 2] > UInt8(ascii: "5") { return false }
            groups += 1
        }
        return groups > 0
    }

    /// PyYAML's float regex.
    private static func isFloat(_ u: [UInt8]) -> Bool {
        let str = String(decoding: u, as: UTF8.self)
        if [".nan", ".NaN", ".NAN"].contains(str) { return true }
        var s = u[...]
        if let f = s.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { s = s.dropFirst() }
        if [".inf", ".Inf", ".INF"].contains(String(decoding: s, as: UTF8.self)) { return true }
        func exponentOK(_ t: ArraySlice<UInt8>) -> Bool {
            // (?:[eE][-+][0-9]+)?
            if t.isEmpty { return true }
            guard t.count >= 3, t.first == UInt8(ascii: "e") || t.first == UInt8(ascii: "E") else { return false }
            let sign = t[t.startIndex + 1]
            guard sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") else { return false }
            return t.dropFirst(2).allSatisfy(digit)
        }
        // \.[0-9][0-9_]*(exp)?  (no sign allowed)
        if u.first == UInt8(ascii: "."), u.count >= 2, digit(u[1]) {
            var i = 2
            while i < u.count, digit(u[i]) || u[i] == 0x5F { i += 1 }
            if exponentOK(u[i...]) { return true }
        }
        guard let f = s.first, digit(f) else { return false }
        var i = s.startIndex + 1
        while i < s.endIndex, digit(s[i]) || s[i] == 0x5F { i += 1 }
        if i < s.endIndex, s[i] == UInt8(ascii: ".") {
            // [0-9][0-9_]*\.[0-9_]*(exp)?
            var j = i + 1
            while j < s.endIndex, digit(s[j]) || s[j] == 0x5F { j += 1 }
            return exponentOK(s[j...])
        }
        // [0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        guard let dot = s[i...].firstIndex(of: UInt8(ascii: ".")) else { return false }
        guard sexagesimalTail(s[i..<dot]) else { return false }
        return s[(dot + 1)...].allSatisfy { digit($0) || $0 == 0x5F }
    }

    /// PyYAML's timestamp regex.
    private static func isTimestamp(_ u: [UInt8]) -> Bool {
        var i = 0
        func digits(_ min: Int, _ max: Int) -> Bool {
            var n = 0
            while i < u.count, digit(u[i]), n < max { i += 1; n += 1 }
            return n >= min
        }
        func lit(_ c: Character) -> Bool {
            guard i < u.count, u[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        guard digits(4, 4), lit("-") else { return false }
        let afterYear = i
        if digits(2, 2), lit("-"), digits(2, 2), i == u.count { return true }
        i = afterYear
        guard digits(1, 2), lit("-"), digits(1, 2) else { return false }
        if i < u.count, u[i] == UInt8(ascii: "T") || u[i] == UInt8(ascii: "t") {
            i += 1
        } else {
            let s0 = i
            while i < u.count, u[i] == 0x20 || u[i] == 0x09 { i += 1 }
            guard i > s0 else { return false }
        }
        guard digits(1, 2), lit(":"), digits(2, 2), lit(":"), digits(2, 2) else { return false }
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            while i < u.count, digit(u[i]) { i += 1 }
        }
        if i == u.count { return true }
        while i < u.count, u[i] == 0x20 || u[i] == 0x09 { i += 1 }
        if lit("Z") { return i == u.count }
        guard i < u.count, u[i] == UInt8(ascii: "-") || u[i] == UInt8(ascii: "+") else { return false }
        i += 1
        guard digits(1, 2) else { return false }
        if i < u.count, u[i] == UInt8(ascii: ":") {
            i += 1
            guard digits(2, 2) else { return false }
        }
        return i == u.count
    }

    // MARK: character-level scanning (ports of PyYAML's scanner routines)

    struct Scanner {
        let s: Scalars
        var pos = 0
        var lineStart = 0
        /// The text starts mid-line (after `key:` or `- `): columns on its first line are only
        /// known to be past any indentation that matters.
        let firstLineOffset: Int

        init(_ s: Scalars, firstLineOffset: Int = 0) { self.s = s; self.firstLineOffset = firstLineOffset }

        func peek(_ k: Int = 0) -> Unicode.Scalar { pos + k < s.count ? s[pos + k] : "\0" }
        var column: Int { pos - lineStart + (lineStart == 0 ? firstLineOffset : 0) }

        mutating func forward(_ n: Int = 1) {
            for _ in 0..<n where pos < s.count {
                if s[pos] == "\n" { lineStart = pos + 1 }
                pos += 1
            }
        }

        static func isBreak(_ c: Unicode.Scalar) -> Bool { c == "\n" || c == "\r" || c == "\u{85}" || c == "\u{2028}" || c == "\u{2029}" }
        static func isBreakOrEnd(_ c: Unicode.Scalar) -> Bool { c == "\0" || isBreak(c) }

        mutating func lineBreak() -> String {
            let c = peek()
            if c == "\r" && peek(1) == "\n" { forward(2); return "\n" }
            if c == "\r" || c == "\n" || c == "\u{85}" { forward(); return "\n" }
            if c == "\u{2028}" || c == "\u{2029}" { forward(); return String(c) }
            return ""
        }

        /// After the value: only spaces, comments and line breaks may remain.
        mutating func onlyCommentsLeft() -> Bool {
            while pos < s.count {
                let c = peek()
                if c == " " || Scanner.isBreak(c) { forward(); continue }
                if c == "#" && (pos == 0 || s[pos - 1] == " " || Scanner.isBreak(s[pos - 1])) {
                    while pos < s.count, !Scanner.isBreak(peek()) { forward() }
                    continue
                }
                return false
            }
            return true
        }

        private func isDocumentMarker() -> Bool {
            guard column == 0 else { return false }
            let p = [peek(0), peek(1), peek(2)]
            return (p == ["-", "-", "-"] || p == [".", ".", "."]) && " \t\r\n\u{85}\u{2028}\u{2029}\0".unicodeScalars.contains(peek(3))
        }

        /// scan_flow_scalar: at a quote character; nil on error.
        mutating func quoted() -> String? {
            let quote = peek()
            let double = quote == "\""
            forward()
            var out = ""
            guard nonSpaces(double, &out) else { return nil }
            while peek() != quote {
                guard spaces(double, &out), nonSpaces(double, &out) else { return nil }
            }
            forward()
            return out
        }

        private mutating func nonSpaces(_ double: Bool, _ out: inout String) -> Bool {
            while true {
                while true {
                    let c = peek()
                    if c == "'" || c == "\"" || c == "\\" || c == " " || c == "\t" || Scanner.isBreakOrEnd(c) { break }
                    out.unicodeScalars.append(c); forward()
                }
                let c = peek()
                if !double && c == "'" && peek(1) == "'" {
                    out += "'"; forward(2)
                } else if (double && c == "'") || (!double && (c == "\"" || c == "\\")) {
                    out.unicodeScalars.append(c); forward()
                } else if double && c == "\\" {
                    forward()
                    let e = peek()
                    let replacements: [Unicode.Scalar: Unicode.Scalar] = [
                        "0": "\0", "a": "\u{07}", "b": "\u{08}", "t": "\t", "\t": "\t", "n": "\n", "v": "\u{0B}",
                        "f": "\u{0C}", "r": "\r", "e": "\u{1B}", " ": " ", "\"": "\"", "/": "/", "\\": "\\",
                        "N": "\u{85}", "_": "\u{A0}", "L": "\u{2028}", "P": "\u{2029}",
                    ]
                    if let r = replacements[e] {
                        out.unicodeScalars.append(r); forward()
                    } else if e == "x" || e == "u" || e == "U" {
                        let n = e == "x" ? 2 : e == "u" ? 4 : 8
                        forward()
                        var v: UInt32 = 0
                        for k in 0..<n {
                            guard let d = hexValue(peek(k)) else { return false }
                            v = v * 16 + d
                        }
                        guard let u = Unicode.Scalar(v) else { return false }
                        out.unicodeScalars.append(u); forward(n)
                    } else if Scanner.isBreak(e) {
                        _ = lineBreak()
                        guard breaks(&out) else { return false }
                    } else {
                        return false
                    }
                } else {
                    return true
                }
            }
        }

        private func hexValue(_ c: Unicode.Scalar) -> UInt32? {
            switch c.value {
            case 0x30...0x39: c.value - 0x30
            case 0x41...0x46: c.value - 0x41 + 10
            case 0x61...0x66: c.value - 0x61 + 10
            default: nil
            }
        }

        private mutating func spaces(_ double: Bool, _ out: inout String) -> Bool {
            var ws = ""
            while peek() == " " || peek() == "\t" { ws.unicodeScalars.append(peek()); forward() }
            let c = peek()
            if c == "\0" { return false }
            if Scanner.isBreak(c) {
                let lb = lineBreak()
                var br = ""
                guard breaks(&br) else { return false }
                if lb != "\n" { out += lb } else if br.isEmpty { out += " " }
                out += br
            } else {
                out += ws
            }
            return true
        }

        private mutating func breaks(_ out: inout String) -> Bool {
            while true {
                if isDocumentMarker() { return false }
                while peek() == " " || peek() == "\t" { forward() }
                if Scanner.isBreak(peek()) { out += lineBreak() } else { return true }
            }
        }

        /// scan_plain (block or flow context); `indent` is PyYAML's `self.indent + 1`.
        mutating func plain(indent: Int, flow: Bool) -> String {
            var out = ""
            var pendingSpaces = ""
            while true {
                if peek() == "#" { break }
                var length = 0
                while true {
                    let c = peek(length)
                    if c == " " || c == "\t" || Scanner.isBreakOrEnd(c) { break }
                    if c == ":" {
                        let n = peek(length + 1)
                        if n == " " || n == "\t" || Scanner.isBreakOrEnd(n) || (flow && ",[]{}".unicodeScalars.contains(n)) { break }
                    }
                    if flow && ",?[]{}".unicodeScalars.contains(c) { break }
                    length += 1
                }
                if length == 0 { break }
                out += pendingSpaces
                for k in 0..<length { out.unicodeScalars.append(peek(k)) }
                forward(length)
                pendingSpaces = plainSpaces()
                if pendingSpaces.isEmpty || peek() == "#" || (!flow && column < indent) { break }
            }
            return out
        }

        private mutating func plainSpaces() -> String {
            var ws = ""
            while peek() == " " { ws += " "; forward() }
            if Scanner.isBreak(peek()) {
                let lb = lineBreak()
                if isDocumentMarker() { return "" }
                var br = ""
                while peek() == " " || Scanner.isBreak(peek()) {
                    if peek() == " " { forward() } else {
                        br += lineBreak()
                        if isDocumentMarker() { return "" }
                    }
                }
                if lb != "\n" { return lb + br }
                return br.isEmpty ? " " : br
            }
            return ws
        }

        /// scan_block_scalar at `|` or `>`.
        mutating func blockScalar(blockIndent: Int) -> String? {
            let folded = peek() == ">"
            forward()
            var chomping: Bool?
            var increment: Int?
            func digitValue(_ c: Unicode.Scalar) -> Int? { c.value >= 0x30 && c.value <= 0x39 ? Int(c.value - 0x30) : nil }
            var c = peek()
            if c == "+" || c == "-" {
                chomping = c == "+"; forward(); c = peek()
                if let d = digitValue(c) { guard d != 0 else { return nil }; increment = d; forward() }
            } else if let d = digitValue(c) {
                guard d != 0 else { return nil }
                increment = d; forward(); c = peek()
                if c == "+" || c == "-" { chomping = c == "+"; forward() }
            }
            guard peek() == " " || Scanner.isBreakOrEnd(peek()) else { return nil }
            while peek() == " " { forward() }
            if peek() == "#" { while !Scanner.isBreakOrEnd(peek()) { forward() } }
            guard Scanner.isBreakOrEnd(peek()) else { return nil }
            _ = lineBreak()

            let minIndent = max(blockIndent + 1, 1)
            var indent: Int
            var brks: [String] = []
            if let increment {
                indent = minIndent + increment - 1
                brks = blockBreaks(indent)
            } else {
                var maxIndent = 0
                while peek() == " " || Scanner.isBreak(peek()) {
                    if peek() != " " { brks.append(lineBreak()) } else {
                        forward()
                        if column > maxIndent { maxIndent = column }
                    }
                }
                indent = max(minIndent, maxIndent)
            }
            var chunks = ""
            var lineBreakStr = ""
            while column == indent && peek() != "\0" {
                chunks += brks.joined()
                let leadingNonSpace = peek() != " " && peek() != "\t"
                while !Scanner.isBreakOrEnd(peek()) { chunks.unicodeScalars.append(peek()); forward() }
                lineBreakStr = lineBreak()
                brks = blockBreaks(indent)
                if column == indent && peek() != "\0" {
                    if folded && lineBreakStr == "\n" && leadingNonSpace && peek() != " " && peek() != "\t" {
                        if brks.isEmpty { chunks += " " }
                    } else {
                        chunks += lineBreakStr
                    }
                } else {
                    break
                }
            }
            if chomping != false { chunks += lineBreakStr }
            if chomping == true { chunks += brks.joined() }
            return chunks
        }

        private mutating func blockBreaks(_ indent: Int) -> [String] {
            var out: [String] = []
            while column < indent && peek() == " " { forward() }
            while Scanner.isBreak(peek()) {
                out.append(lineBreak())
                while column < indent && peek() == " " { forward() }
            }
            return out
        }

        /// A flow sequence of scalars at `[`.
        mutating func flowSequence() -> YAMLNode {
            forward()
            var items: [YAMLNode] = []
            func skipWS() {
                while true {
                    let c = peek()
                    if c == " " || c == "\t" || Scanner.isBreak(c) { forward(); continue }
                    if c == "#" && (pos == 0 || [" ", "\t", "\n"].contains(s[pos - 1])) {
                        while !Scanner.isBreakOrEnd(peek()) { forward() }
                        continue
                    }
                    return
                }
            }
            while true {
                skipWS()
                var c = peek()
                if c == "]" { forward(); break }
                if c == "\"" || c == "'" {
                    guard let q = quoted() else { return .unsupported("bad quoted scalar") }
                    items.append(.string(q))
                } else if c == "[" || c == "{" {
                    return .unsupported("nested flow collections are not supported")
                } else if "&*!|>%@`,?:}".unicodeScalars.contains(c) || c == "\0" {
                    return .unsupported("unsupported flow sequence item")
                } else {
                    let p = plain(indent: 0, flow: true)
                    if p.isEmpty { return .unsupported("unsupported flow sequence item") }
                    items.append(resolvePlain(p))
                }
                skipWS()
                c = peek()
                if c == "," { forward(); continue }
                if c == "]" { forward(); break }
                return .unsupported("unsupported flow sequence")
            }
            return .sequence(items)
        }
    }
}
