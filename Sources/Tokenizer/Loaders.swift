import Foundation
import GGUFWriter
import MappedIO
import ModelMapping
import StrictJSON

extension Tokenizer {
    /// Loads the `tokenizer.*` metadata of a GGUF file, as llama.cpp's `llama_vocab::load` reads it.
    public convenience init(gguf: GGUFFile) throws {
        var meta: [String: GGUFValue] = [:]
        for (k, v) in gguf.metadata where k.hasPrefix("tokenizer.") { meta[k] = v }
        try self.init(metadata: meta, path: gguf.path)
    }

    /// Loads `tokenizer.*` metadata (a GGUF file's, or what converting a checkpoint would write).
    public convenience init(metadata meta: [String: GGUFValue], path: String) throws {
        func fail(_ m: String) -> TokenizerError { .invalid(path: path, detail: m) }
        var spec = Spec(path: path, model: "")
        guard case .string(let model)? = meta[GGUFKey.Tokenizer.model] else { throw fail("no tokenizer.ggml.model: the file has no vocabulary") }
        spec.model = model
        if case .string(let p)? = meta[GGUFKey.Tokenizer.pre] { spec.pre = p }
        guard case .array(.string, let toks)? = meta[GGUFKey.Tokenizer.tokens] else {
            throw fail("tokenizer.ggml.tokens is missing or not an array of strings")
        }
        spec.tokens = toks.map { $0.stringValue ?? "" }
        if let v = meta[GGUFKey.Tokenizer.scores] {
            switch v {
            case .array(.float32, let a): spec.scores = a.map { if case .float32(let f) = $0 { f } else { 0 } }
            case .array(.int32, let a): spec.scores = a.map { if case .int32(let i) = $0 { Float(i) } else { 0 } }
            default: throw fail("tokenizer.ggml.scores must be an array of float32 or int32")
            }
        }
        if let v = meta[GGUFKey.Tokenizer.tokenType] {
            guard case .array(.int32, let a) = v else { throw fail("tokenizer.ggml.token_type must be an array of int32") }
            spec.types = a.map { if case .int32(let i) = $0 { i } else { 0 } }
        }
        if model == "gpt2" {
            guard let v = meta[GGUFKey.Tokenizer.merges] else { throw fail("cannot find tokenizer merges (tokenizer.ggml.merges)") }
            guard case .array(.string, let a) = v else { throw fail("tokenizer.ggml.merges must be an array of strings") }
            spec.merges = a.map { $0.stringValue ?? "" }
        }
        let idKeys = ["bos": "bos_token_id", "eos": "eos_token_id", "eot": "eot_token_id", "eom": "eom_token_id",
                      "unk": "unknown_token_id", "sep": "seperator_token_id", "pad": "padding_token_id", "mask": "mask_token_id",
                      "fim_pre": "fim_pre_token_id", "fim_suf": "fim_suf_token_id", "fim_mid": "fim_mid_token_id",
                      "fim_pad": "fim_pad_token_id", "fim_rep": "fim_rep_token_id", "fim_sep": "fim_sep_token_id"]
        for (k, key) in idKeys {
            if let v = meta["tokenizer.ggml.\(key)"]?.intValue { spec.ids[k] = v }
        }
        // Deprecated FIM keys (read after the current ones, as llama.cpp's list does).
        for (k, key) in [("fim_pre", "prefix_token_id"), ("fim_suf", "suffix_token_id"), ("fim_mid", "middle_token_id")] {
            if let v = meta["tokenizer.ggml.\(key)"]?.intValue { spec.ids[k] = v }
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = meta[key] else { return nil }
            guard case .bool(let b) = v else { throw fail("\(key) must be a bool") }
            return b
        }
        spec.addBOS = try bool(GGUFKey.Tokenizer.addBosToken)
        spec.addEOS = try bool(GGUFKey.Tokenizer.addEosToken)
        spec.addSpacePrefix = try bool(GGUFKey.Tokenizer.addSpacePrefix)
        try self.init(spec: spec)
    }

    /// Opens a GGUF file and loads its vocabulary.
    public convenience init(ggufPath: String) throws {
        try self.init(gguf: GGUFFile(path: ggufPath))
    }

    /// Loads a Hugging Face model directory's tokenizer: `tokenizer.model` (SentencePiece, read as
    /// convert_hf_to_gguf.py would write it into a GGUF) when present, else `tokenizer.json` with a
    /// byte-level BPE model. `preTokenizer` overrides the detected `tokenizer.ggml.pre` name.
    public convenience init(directory: String, preTokenizer: String? = nil) throws {
        let dir = directory as NSString
        let spmPath = dir.appendingPathComponent("tokenizer.model")
        let tjPath = dir.appendingPathComponent("tokenizer.json")
        let tcPath = dir.appendingPathComponent("tokenizer_config.json")
        let tc = try readOptionalJSONObject(tcPath)
        let tj = try readOptionalJSONObject(tjPath)
        let config = try readOptionalJSONObject(dir.appendingPathComponent("config.json"))
        let spec: Spec
        if FileManager.default.fileExists(atPath: spmPath) {
            spec = try HFLoader.sentencePieceSpec(directory: directory, spmPath: spmPath, tokenizerJSON: tj, tokenizerConfig: tc, config: config)
        } else if let tj {
            spec = try HFLoader.bpeSpec(tj, path: tjPath, tokenizerConfig: tc, preTokenizer: preTokenizer)
        } else {
            throw TokenizerError.noTokenizer(directory: directory)
        }
        try self.init(spec: spec)
    }
}


enum HFLoader {
    /// A vocabulary of `size` ids of which `defined` are real tokens, the rest padding: a few holes
    /// are normal, millions from a few hundred tokens are a hostile file (seconds and gigabytes per load).
    static func isPlausibleVocabulary(size: Int, defined: Int) -> Bool { size <= 2 * defined + 1024 }

    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func looksSpecial(_ t: String) -> Bool { TokenizerMetadata.looksSpecial(t) }

    /// The pre-tokenizer pipeline of tokenizer.json as a llama.cpp `tokenizer.ggml.pre` name: the
    /// same structural detection the converter writes into GGUF files.
    static func detectPre(_ tj: JSONObject, tokens: [String]) -> String? {
        PreTokenizerDetection.detect(tj, tokens: tokens)
    }

    static func tokenContent(_ v: JSONValue?) -> String? { v?.stringValue ?? v?["content"]?.stringValue }

    /// tokenizer.json with a byte-level BPE model, read the way Hugging Face `tokenizers` uses it.
    static func bpeSpec(_ tj: JSONObject, path: String, tokenizerConfig tc: JSONObject?, preTokenizer: String?) throws -> Tokenizer.Spec {
        func fail(_ m: String) -> TokenizerError { .invalid(path: path, detail: m) }
        guard let model = tj["model"]?.objectValue else { throw fail("no model object") }
        guard model["type"]?.stringValue ?? "BPE" == "BPE" else {
            throw fail("model type \(model["type"]?.stringValue ?? "?") is not supported (byte-level BPE only)")
        }
        guard let vocab = model["vocab"]?.objectValue else { throw fail("no model.vocab object") }
        var byID: [Int: String] = [:]
        var maxID = -1
        for (t, v) in vocab.entries {
            guard let id = v.intValue, id >= 0, id < 1 << 24 else { throw fail("vocab id of \"\(t)\" is not a valid id") }
            byID[id] = t
            maxID = max(maxID, id)
        }
        var addedType: [Int: Int32] = [:]
        var attrs: [Int: Tokenizer.Attributes] = [:]
        for a in tj["added_tokens"]?.arrayValue ?? [] {
            guard let id = a["id"]?.intValue, id >= 0, id < 1 << 24, let content = a["content"]?.stringValue else { continue }
            byID[id] = content
            maxID = max(maxID, id)
            let special = a["special"]?.boolValue ?? false
            addedType[id] = (special || looksSpecial(content) ? GGUFTokenType.control : .userDefined).rawValue
            var at: Tokenizer.Attributes = []
            if a["lstrip"]?.boolValue == true { at.insert(.lstrip) }
            if a["rstrip"]?.boolValue == true { at.insert(.rstrip) }
            if !at.isEmpty { attrs[id] = at }
        }
        // Ids missing below the highest become padding tokens, as convert_hf_to_gguf.py writes them;
        // a few holes are normal, but a 400-token file claiming id 2,651,039 would make a vocabulary
        // of millions (seconds and gigabytes per load: found by fuzz-tokenizer).
        guard isPlausibleVocabulary(size: maxID + 1, defined: byID.count) else {
            throw fail("vocabulary ids reach \(maxID) but only \(byID.count) tokens are defined")
        }
        var spec = Tokenizer.Spec(path: path, model: "gpt2")
        var tokens: [String] = []
        var types: [Int32] = []
        for i in 0...max(maxID, 0) {
            if let t = byID[i] {
                tokens.append(t)
                types.append(addedType[i] ?? 1)
            } else {
                tokens.append("[PAD\(i)]")
                types.append(5)
            }
        }
        spec.tokens = tokens
        spec.types = types
        spec.extraAttributes = attrs
        if let m = model["merges"]?.arrayValue {
            for (i, e) in m.enumerated() {
                if let s = e.stringValue {
                    spec.merges.append(s)
                } else if let p = e.arrayValue, p.count == 2, let a = p[0].stringValue, let b = p[1].stringValue {
                    spec.merges.append(a + " " + b)
                } else {
                    throw fail("merge \(i) is neither \"a b\" nor [\"a\", \"b\"]")
                }
            }
        }
        guard let pre = preTokenizer ?? detectPre(tj, tokens: tokens) else {
            throw fail("unrecognised pre-tokenizer pipeline; pass a pre-tokenizer name (\(Tokenizer.supportedPreTokenizers.joined(separator: ", ")))")
        }
        spec.pre = pre
        if model["ignore_merges"]?.boolValue == true, Tokenizer.bpePreTokenizers[pre]?.ignoreMerges == false {
            throw fail("ignore_merges with pre-tokenizer \(pre) is not supported")
        }
        if let n = tj["normalizer"], !n.isNull {
            switch n["type"]?.stringValue {
            case "NFC": spec.nfc = true
            default: throw fail("normalizer \(n["type"]?.stringValue ?? "?") is not supported with a byte-level BPE model")
            }
        }
        // Special ids: tokenizer_config's *_token by content.
        func idOf(_ content: String?) -> Int? {
            guard let content else { return nil }
            return tokens.firstIndex(of: content)
        }
        spec.ids["bos"] = idOf(tokenContent(tc?["bos_token"]))
        spec.ids["eos"] = idOf(tokenContent(tc?["eos_token"]))
        spec.ids["unk"] = idOf(tokenContent(tc?["unk_token"]))
        spec.ids["pad"] = idOf(tokenContent(tc?["pad_token"]))
        // BOS/EOS as the post-processor adds them (`tokenizers`' encode with add_special_tokens).
        spec.addBOS = false
        spec.addEOS = false
        if let pp = tj["post_processor"], !pp.isNull {
            for p in pp["processors"]?.arrayValue ?? [pp] where p["type"]?.stringValue == "TemplateProcessing" {
                let single = p["single"]?.arrayValue ?? []
                if let f = single.first?["SpecialToken"]?["id"]?.stringValue, let id = idOf(f) {
                    spec.addBOS = true
                    spec.ids["bos"] = id
                }
                if single.count > 1, let l = single.last?["SpecialToken"]?["id"]?.stringValue, let id = idOf(l) {
                    spec.addEOS = true
                    spec.ids["eos"] = id
                }
            }
        }
        if let c = tc?["clean_up_tokenization_spaces"]?.boolValue { spec.cleanSpaces = c }
        return spec
    }

    /// A SentencePiece `tokenizer.model` with the added tokens convert_hf_to_gguf.py folds in
    /// (`LlamaModel._create_vocab_sentencepiece`, `SpecialVocab`).
    static func sentencePieceSpec(directory: String, spmPath: String, tokenizerJSON tj: JSONObject?, tokenizerConfig tc: JSONObject?,
                                  config: JSONObject?) throws -> Tokenizer.Spec {
        let pieces = try SentencePieceModel(path: spmPath).pieces
        let vocabSize = config?["vocab_size"]?.intValue.flatMap { $0 > 0 && $0 < 1 << 24 ? $0 : nil } ?? pieces.count
        // config.json's vocab_size pads the pieces with [PAD] tokens; a few are normal, millions are an attack.
        guard isPlausibleVocabulary(size: vocabSize, defined: pieces.count) else {
            throw TokenizerError.invalid(path: spmPath, detail: "config.json's vocab_size \(vocabSize) is far beyond the model's \(pieces.count) pieces")
        }
        var tokens = (0..<vocabSize).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: vocabSize)
        var types = [Int32](repeating: GGUFTokenType.unused.rawValue, count: vocabSize)
        for (i, p) in pieces.enumerated() where i < vocabSize {
            tokens[i] = p.piece
            scores[i] = p.score
            types[i] = p.type == .userDefined ? GGUFTokenType.normal.rawValue : Int32(p.type.rawValue) // user-defined pieces are written as normal
        }
        let dir = directory as NSString
        if let added = try readOptionalJSONObject(dir.appendingPathComponent("added_tokens.json")) {
            for (content, v) in added.entries {
                guard let id = v.intValue, id >= 0, id < vocabSize else { continue }
                tokens[id] = content
                scores[id] = -1000
                types[id] = GGUFTokenType.userDefined.rawValue
            }
        }
        if let decoder = tc?["added_tokens_decoder"]?.objectValue {
            for (idText, data) in decoder.entries {
                guard let id = Int(idText), id >= 0, id < vocabSize, let content = data["content"]?.stringValue else { continue }
                if data["special"]?.boolValue == true || looksSpecial(content) {
                    types[id] = GGUFTokenType.control.rawValue
                    tokens[id] = content
                } else {
                    types[id] = GGUFTokenType.userDefined.rawValue
                    tokens[id] = content.replacingOccurrences(of: "\u{2581}", with: " ")
                }
                scores[id] = -1000
            }
        }
        var spec = Tokenizer.Spec(path: spmPath, model: "llama")
        spec.tokens = tokens
        spec.scores = scores
        spec.types = types
        if let a = tc?["add_prefix_space"]?.boolValue, config?["model_type"]?.stringValue != "qwen2" { spec.addSpacePrefix = a }
        if let a = tc?["add_bos_token"]?.boolValue { spec.addBOS = a }
        if let a = tc?["add_eos_token"]?.boolValue { spec.addEOS = a }
        // Special ids: tokenizer_config content looked up among tokenizer.json's added tokens, then config.json.
        let added = tj?["added_tokens"]?.arrayValue ?? []
        for (k, name) in [("bos", "bos"), ("eos", "eos"), ("unk", "unk"), ("pad", "pad")] {
            if let content = tokenContent(tc?["\(name)_token"]),
               let id = added.first(where: { $0["content"]?.stringValue == content })?["id"]?.intValue, id < vocabSize {
                spec.ids[k] = id
            } else if let id = config?["\(name)_token_id"]?.intValue, id >= 0, id < vocabSize {
                spec.ids[k] = id
            }
        }
        return spec
    }
}
