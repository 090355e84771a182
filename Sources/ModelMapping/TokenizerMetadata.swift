import Foundation
import GGUFWriter
import MappedIO
import StrictJSON

/// gguf-py `TokenType`, the values of `tokenizer.ggml.token_type`.
public enum GGUFTokenType: Int32, Sendable {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// What a family's `set_vocab` adds to the shared vocabulary writers.
public struct TokenizerOptions: Sendable {
    /// LlamaModel.set_vocab's quirks: `add_prefix_space` from tokenizer_config.json written before the
    /// vocabulary, and `add_bos_token` false for a 49152-token vocabulary.
    public var llamaQuirks: Bool
    /// `tokenizer.ggml.add_space_prefix` set after the vocabulary (Gemma: false).
    public var addSpacePrefix: Bool?
    /// Phi3MiniModel.set_vocab's own SentencePiece reader: added tokens from tokenizer_config.json
    /// and tokenizer.json kept verbatim, CONTROL only when marked special.
    public var phi3Vocab = false
    /// GemmaModel.set_vocab: CodeGemma's end-of-turn id (107), forced.
    public var gemmaFIMTokens: Bool
    /// `tokenizer.ggml.pre` names convert_hf_to_gguf gives this family's vocabulary instead of the
    /// detected pipeline's (it hashes the vocabulary: phi-2's GPT-2 pipeline is written "phi-2").
    public var preTokenizerAliases: [String: String] = [:]

    public init(llamaQuirks: Bool = false, addSpacePrefix: Bool? = nil, gemmaFIMTokens: Bool = false) {
        self.llamaQuirks = llamaQuirks
        self.addSpacePrefix = addSpacePrefix
        self.gemmaFIMTokens = gemmaFIMTokens
    }
}

/// Builds the `tokenizer.*` metadata of a model directory as convert_hf_to_gguf does:
/// SentencePiece (`tokenizer.model`) → `llama`, else byte-level BPE (`tokenizer.json`) → `gpt2`.
public struct TokenizerMetadata: Sendable {
    public var entries: [(key: String, value: GGUFValue)] = []

    /// - Parameter preTokenizer: overrides `tokenizer.ggml.pre` for BPE vocabularies.
    public init(directory: String, config: ModelConfig, options: TokenizerOptions, preTokenizer: String? = nil) throws {
        let dir = directory as NSString
        let spmPath = dir.appendingPathComponent("tokenizer.model")
        let tokJSONPath = dir.appendingPathComponent("tokenizer.json")
        let tokConfigPath = dir.appendingPathComponent("tokenizer_config.json")
        let tokenizerConfig = try readOptionalJSONObject(tokConfigPath)
        let sentencePiece = FileManager.default.fileExists(atPath: spmPath)
        // beside a tokenizer.model, tokenizer.json's own vocabulary and merges are never read
        let tokenizerJSON = try readOptionalJSONObject(tokJSONPath, skipping: sentencePiece ? ["model"] : [])

        // LlamaModel.set_vocab writes this before the vocabulary.
        if options.llamaQuirks, let ap = tokenizerConfig?["add_prefix_space"]?.boolValue {
            entries.append((GGUFKey.Tokenizer.addSpacePrefix, .bool(ap)))
        }
        let nVocab: Int
        if sentencePiece {
            let (tokens, scores, types) = try Self.sentencePieceVocab(spmPath: spmPath, directory: directory, config: config,
                                                                       tokenizerConfig: tokenizerConfig, tokenizerJSON: tokenizerJSON,
                                                                       phi3: options.phi3Vocab)
            entries.append((GGUFKey.Tokenizer.model, .string("llama")))
            entries.append((GGUFKey.Tokenizer.pre, .string("default")))
            entries.append((GGUFKey.Tokenizer.tokens, .strings(tokens)))
            entries.append((GGUFKey.Tokenizer.scores, .float32s(scores)))
            entries.append((GGUFKey.Tokenizer.tokenType, .int32s(types.map(\.rawValue))))
            nVocab = tokens.count
            var special = SpecialVocab(loadMerges: false, nVocab: nVocab)
            try special.load(tokenizerJSON: tokenizerJSON, tokenizerConfig: tokenizerConfig, config: config, path: tokJSONPath)
            entries += special.entries
        } else if let tj = tokenizerJSON {
            let (tokens, types) = try Self.bpeVocab(tj, config: config, path: tokJSONPath)
            let pre: String
            if let p = preTokenizer { pre = p } else {
                guard let d = PreTokenizerDetection.detect(tj, tokens: tokens) else {
                    throw ModelFileError.tokenizer(path: tokJSONPath, detail: "unrecognised pre-tokenizer (\(PreTokenizerDetection.describe(tj))); pass --pre-tokenizer NAME (e.g. \(PreTokenizerDetection.knownNames.joined(separator: ", ")))")
                }
                pre = options.preTokenizerAliases[d] ?? d
            }
            entries.append((GGUFKey.Tokenizer.model, .string("gpt2")))
            entries.append((GGUFKey.Tokenizer.pre, .string(pre)))
            entries.append((GGUFKey.Tokenizer.tokens, .strings(tokens)))
            entries.append((GGUFKey.Tokenizer.tokenType, .int32s(types.map(\.rawValue))))
            var special = SpecialVocab(loadMerges: true, nVocab: nil)
            try special.load(tokenizerJSON: tj, tokenizerConfig: tokenizerConfig, config: config, path: tokJSONPath)
            entries += special.entries
            nVocab = tokens.count
        } else {
            throw ModelFileError.noTokenizer(directory: directory)
        }
        // LlamaModel.set_vocab: granite-small quirk, applied by vocabulary size alone.
        if options.llamaQuirks, (config.vocabSize ?? 32000) == 49152 {
            set(GGUFKey.Tokenizer.addBosToken, .bool(false))
        }
        // GemmaModel's second SpecialVocab forces CodeGemma's ids; of prefix/suffix/middle/fsep/eot
        // gguf-py has a writer for eot only.
        if options.gemmaFIMTokens { set(GGUFKey.Tokenizer.eotTokenId, .uint32(107)) }
        if let ap = options.addSpacePrefix { set(GGUFKey.Tokenizer.addSpacePrefix, .bool(ap)) }
        _ = nVocab
    }

    /// Replaces a key's value in place, or appends it: gguf-py's writer is a dict.
    mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = entries.firstIndex(where: { $0.key == key }) { entries[i].value = value } else { entries.append((key, value)) }
    }

    static func sentencePieceVocab(spmPath: String, directory: String, config: ModelConfig, tokenizerConfig: JSONObject?,
                                   tokenizerJSON: JSONObject?, phi3: Bool) throws -> ([String], [Float], [GGUFTokenType]) {
        let model = try SentencePieceModel(path: spmPath)
        let vocabSize = (config.vocabSize.flatMap { $0 > 0 ? $0 : nil }) ?? model.pieces.count
        var tokens = (0..<vocabSize).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: vocabSize)
        var types = [GGUFTokenType](repeating: .unused, count: vocabSize)
        for (i, p) in model.pieces.enumerated() where i < vocabSize {
            tokens[i] = p.piece
            scores[i] = p.score
            switch p.type {
            case .unknown: types[i] = .unknown
            case .control: types[i] = .control
            case .unused: types[i] = .unused
            case .byte: types[i] = .byte
            case .normal, .userDefined: types[i] = .normal
            }
        }
        let addedPath = (directory as NSString).appendingPathComponent("added_tokens.json")
        if let added = try readOptionalJSONObject(addedPath) {
            for (content, v) in added.entries {
                guard let id = v.intValue else { throw ModelFileError.tokenizer(path: addedPath, detail: "id of \"\(content)\" is not an integer") }
                guard id >= 0, id < vocabSize else { continue }
                tokens[id] = content
                scores[id] = -1000
                types[id] = .userDefined
            }
        }
        if phi3 {
            var added: [(Int, String, Bool)] = []
            for (idText, data) in tokenizerConfig?["added_tokens_decoder"]?.objectValue?.entries.map({ $0 }) ?? [] {
                guard let id = Int(idText), let content = data["content"]?.stringValue else { continue }
                added.append((id, content, data["special"]?.boolValue ?? false))
            }
            for data in tokenizerJSON?["added_tokens"]?.arrayValue ?? [] {
                guard let id = data["id"]?.intValue, let content = data["content"]?.stringValue else { continue }
                added.append((id, content, data["special"]?.boolValue ?? false))
            }
            for (id, content, special) in added {
                // Python would index past its list and fail; we refuse the same file
                guard id >= 0, id < vocabSize else {
                    throw ModelFileError.tokenizer(path: spmPath, detail: "added token id \(id) is not below the vocabulary size \(vocabSize)")
                }
                tokens[id] = content
                scores[id] = -1000
                types[id] = special ? .control : .userDefined
            }
            return (tokens, scores, types)
        }
        if let decoder = tokenizerConfig?["added_tokens_decoder"]?.objectValue {
            for (idText, data) in decoder.entries {
                guard let id = Int(idText), let content = data["content"]?.stringValue else { continue }
                guard id >= 0, id < vocabSize else { continue }
                if data["special"]?.boolValue == true || looksSpecial(content) {
                    types[id] = .control
                    tokens[id] = content
                } else {
                    types[id] = .userDefined
                    tokens[id] = content.replacingOccurrences(of: "\u{2581}", with: " ")
                }
                scores[id] = -1000
            }
        }
        return (tokens, scores, types)
    }

    static func bpeVocab(_ tj: JSONObject, config: ModelConfig, path: String) throws -> ([String], [GGUFTokenType]) {
        guard let vocab = tj["model"]?["vocab"]?.objectValue else { throw ModelFileError.tokenizer(path: path, detail: "no model.vocab object") }
        var reverse: [Int: String] = [:]
        reverse.reserveCapacity(vocab.count)
        var maxID = -1
        for (tok, v) in vocab.entries {
            guard let id = v.intValue, id >= 0 else { throw ModelFileError.tokenizer(path: path, detail: "vocab id of \"\(tok)\" is not a non-negative integer") }
            reverse[id] = tok
            maxID = max(maxID, id)
        }
        // Added tokens: id → (content, special). Their content also counts as "added" wherever it appears.
        var addedByID: [Int: (String, Bool)] = [:]
        var addedContent: Set<String> = []
        for a in tj["added_tokens"]?.arrayValue ?? [] {
            guard let id = a["id"]?.intValue, let content = a["content"]?.stringValue else { continue }
            addedByID[id] = (content, a["special"]?.boolValue ?? false)
            addedContent.insert(content)
            reverse[id] = content
            maxID = max(maxID, id)
        }
        let vocabSize = config.vocabSize ?? (maxID + 1)
        guard maxID < vocabSize else {
            throw ModelFileError.tokenizer(path: path, detail: "token id \(maxID) is not below vocab_size \(vocabSize) of config.json")
        }
        var tokens: [String] = []
        var types: [GGUFTokenType] = []
        tokens.reserveCapacity(vocabSize)
        types.reserveCapacity(vocabSize)
        for i in 0..<vocabSize {
            guard var tok = reverse[i] else {
                tokens.append("[PAD\(i)]")
                types.append(.unused)
                continue
            }
            if addedContent.contains(tok) {
                let special = addedByID[i]?.1 ?? false
                if special || looksSpecial(tok) {
                    types.append(.control)
                } else {
                    tok = tok.replacingOccurrences(of: "\u{2581}", with: " ")
                    types.append(.userDefined)
                }
            } else {
                types.append(.normal)
            }
            tokens.append(tok)
        }
        return (tokens, types)
    }

    /// convert_hf_to_gguf `does_token_look_special`.
    public static func looksSpecial(_ t: String) -> Bool {
        if ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(t) { return true }
        if t.hasPrefix("<|") && t.hasSuffix("|>") { return true }
        if t.hasPrefix("<\u{FF5C}") && t.hasSuffix("\u{FF5C}>") { return true }
        if t.hasPrefix("<unused") && t.hasSuffix(">") { return true }
        return false
    }
}

/// gguf-py `SpecialVocab`: merges, special token ids, add_*_token flags, chat template.
struct SpecialVocab {
    let loadMerges: Bool
    let nVocab: Int?
    var types = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
    var merges: [String] = []
    var ids: [(String, Int)] = []
    var add: [(String, Bool)] = []
    var chatTemplate: String?
    var lowercase: Bool?
    var stripAccents: Bool?

    init(loadMerges: Bool, nVocab: Int?) {
        self.loadMerges = loadMerges
        self.nVocab = nVocab
    }

    mutating func setAdd(_ t: String, _ v: Bool, onlyIfAbsent: Bool) {
        if let i = add.firstIndex(where: { $0.0 == t }) { if !onlyIfAbsent { add[i].1 = v } } else { add.append((t, v)) }
    }

    mutating func setID(_ t: String, _ id: Int?, path: String) throws {
        guard let id else { return }
        guard id >= 0 else { throw ModelFileError.tokenizer(path: path, detail: "invalid \(t) token id \(id)") }
        if let n = nVocab, id >= n { return }
        if ids.contains(where: { $0.0 == t }) { return }
        ids.append((t, id))
    }

    mutating func parseNormalizer(_ n: JSONValue) {
        switch n["type"]?.stringValue {
        case "Lowercase": lowercase = true
        case "StripAccents": stripAccents = true
        case "BertNormalizer":
            if let l = n["lowercase"]?.boolValue { lowercase = l }
            if let s = n["strip_accents"]?.boolValue { stripAccents = s }
        case "Sequence": for m in n["normalizers"]?.arrayValue ?? [] { parseNormalizer(m) }
        default: break
        }
    }

    mutating func load(tokenizerJSON: JSONObject?, tokenizerConfig: JSONObject?, config: ModelConfig, path: String) throws {
        var tc = tokenizerConfig
        let added = tokenizerJSON?["added_tokens"]?.arrayValue ?? []
        if let tj = tokenizerJSON {
            if loadMerges, let m = tj["model"]?["merges"]?.arrayValue, !m.isEmpty {
                if m[0].stringValue != nil {
                    merges = m.compactMap(\.stringValue)
                } else if let pair = m[0].arrayValue, pair.count == 2, pair[0].stringValue != nil {
                    merges = m.map { p in
                        (p.arrayValue ?? []).map { ($0.stringValue ?? "").replacingOccurrences(of: " ", with: "\u{0120}") }.joined(separator: " ")
                    }
                } else {
                    throw ModelFileError.tokenizer(path: path, detail: "unknown merges format")
                }
            }
            if let n = tj["normalizer"], !n.isNull { parseNormalizer(n) }
            var bos = tokenContent(tc?["bos_token"])
            var eos = tokenContent(tc?["eos_token"])
            let cls = tokenContent(tc?["cls_token"])
            let sep = tokenContent(tc?["sep_token"])
            if bos == nil, let c = cls, tc != nil { tc!.replace("bos_token", .string(c)); bos = c }
            if eos == nil, let s = sep, tc != nil { tc!.replace("eos_token", .string(s)); eos = s }
            if let pp = tj["post_processor"], !pp.isNull {
                let procs = pp["processors"]?.arrayValue ?? [pp]
                for p in procs {
                    switch p["type"]?.stringValue {
                    case "ByteLevel":
                        setAdd("bos", false, onlyIfAbsent: true)
                        setAdd("eos", false, onlyIfAbsent: true)
                    case "RobertaProcessing":
                        setAdd("bos", true, onlyIfAbsent: false)
                        setAdd("eos", true, onlyIfAbsent: false)
                        setAdd("sep", true, onlyIfAbsent: false)
                    case "TemplateProcessing":
                        let single = p["single"]?.arrayValue ?? []
                        var first: String? = nil
                        var last: String? = nil
                        if single.count > 1 {
                            first = single[0]["SpecialToken"]?["id"]?.stringValue
                            if let f = first {
                                if tc == nil { bos = f } else if f != bos && f != cls, bos == nil {
                                    tc!.replace("bos_token", .string(f)); bos = f
                                }
                                setAdd("bos", f == bos || f == cls, onlyIfAbsent: false)
                            }
                            last = single[single.count - 1]["SpecialToken"]?["id"]?.stringValue
                            if let l = last {
                                if tc == nil { eos = l } else if l != eos {
                                    if !types.contains("eot") { types.append("eot"); if let e = eos { tc!.replace("eot_token", .string(e)) } }
                                    tc!.replace("eos_token", .string(l)); eos = l
                                }
                                setAdd("eos", l == eos, onlyIfAbsent: false)
                            }
                        }
                        // The pair template says whether a separator goes between two sequences.
                        var pair = p["pair"]?.arrayValue ?? []
                        if !pair.isEmpty {
                            let start = first != nil && pair[0]["SpecialToken"]?["id"]?.stringValue == first ? 1 : 0
                            let stop = last != nil && pair[pair.count - 1]["SpecialToken"]?["id"]?.stringValue == last ? pair.count - 1 : pair.count
                            pair = start < stop ? Array(pair[start..<stop]) : []
                            if !pair.isEmpty, pair[0]["Sequence"]?["id"]?.stringValue == "A",
                               pair[pair.count - 1]["Sequence"]?["id"]?.stringValue == "B", pair.count > 2 {
                                let middle = Array(pair[1..<(pair.count - 1)])
                                var addSep = false
                                if let entry = middle[0]["SpecialToken"]?["id"]?.stringValue,
                                   entry == sep || entry == eos, last == nil { addSep = true }
                                if middle.count == 2, let entry = middle[1]["SpecialToken"]?["id"]?.stringValue,
                                   entry == sep || entry == eos { addSep = true }
                                setAdd("sep", addSep, onlyIfAbsent: false)
                            }
                        }
                    default: break
                    }
                }
            }
        }
        if let tc {
            if let t = tc["chat_template"]?.stringValue { chatTemplate = t } else {
                let dir = (path as NSString).deletingLastPathComponent as NSString
                let jinja = dir.appendingPathComponent("chat_template.jinja")
                if let s = try? String(contentsOfFile: jinja, encoding: .utf8) { chatTemplate = s }
            }
            for t in types {
                if let a = tc["add_\(t)_token"]?.boolValue, !add.contains(where: { $0.0 == t }) { add.append((t, a)) }
                guard let content = tokenContent(tc["\(t)_token"]) else { continue }
                let id = added.first(where: { $0["content"]?.stringValue == content })?["id"]?.intValue
                try setID(t, id, path: path)
            }
        }
        for t in types {
            try setID(t, config.json["\(t)_token_id"]?.intValue, path: config.path)
        }
    }

    func tokenContent(_ v: JSONValue?) -> String? {
        if let s = v?.stringValue { return s }
        if let c = v?["content"]?.stringValue { return c }
        return nil
    }

    var entries: [(key: String, value: GGUFValue)] {
        var e: [(String, GGUFValue)] = []
        if !merges.isEmpty { e.append((GGUFKey.Tokenizer.merges, .strings(merges))) }
        let idKeys = ["bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id", "sep": "seperator_token_id",
                      "pad": "padding_token_id", "mask": "mask_token_id", "eot": "eot_token_id", "eom": "eom_token_id"]
        for (t, id) in ids {
            guard let k = idKeys[t] else { continue } // gguf-py has no cls handler
            e.append(("tokenizer.ggml.\(k)", .uint32(UInt32(id))))
        }
        for (t, v) in add where ["bos", "eos", "sep"].contains(t) {
            e.append(("tokenizer.ggml.add_\(t)_token", .bool(v)))
        }
        if let c = chatTemplate { e.append(("tokenizer.chat_template", .string(c))) }
        if let l = lowercase { e.append((GGUFKey.Tokenizer.normalizerLowercase, .bool(l))) }
        if let s = stripAccents { e.append((GGUFKey.Tokenizer.normalizerStripAccents, .bool(s))) }
        return e
    }
}

extension JSONObject {
    /// Sets a key, keeping its position when present.
    mutating func replace(_ key: String, _ value: JSONValue) {
        var copy = JSONObject()
        var found = false
        for (k, v) in entries {
            if k == key { copy.append(k, value); found = true } else { copy.append(k, v) }
        }
        if !found { copy.append(key, value) }
        self = copy
    }
}
