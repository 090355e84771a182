import Foundation
import MappedIO
import ModelMapping

/// Text → token ids exactly as llama.cpp's `llama_tokenize` (src/llama-vocab.cpp) produces them,
/// for byte-level BPE (`tokenizer.ggml.model = gpt2`) and SentencePiece (`llama`) vocabularies;
/// and ids → text as `llama_detokenize` does.
///
/// Immutable after loading and `Sendable`: one instance can encode on many threads at once.
public final class Tokenizer: Sendable {
    public enum Kind: String, Sendable {
        /// Byte-level BPE with merges (`tokenizer.ggml.model = gpt2`).
        case bpe = "gpt2"
        /// SentencePiece: score-driven bigram merging with byte fallback (`tokenizer.ggml.model = llama`).
        case spm = "llama"
    }

    /// llama.cpp `llama_token_attr`.
    public struct Attributes: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let unknown = Attributes(rawValue: 1 << 0)
        public static let unused = Attributes(rawValue: 1 << 1)
        public static let normal = Attributes(rawValue: 1 << 2)
        public static let control = Attributes(rawValue: 1 << 3)
        public static let userDefined = Attributes(rawValue: 1 << 4)
        public static let byte = Attributes(rawValue: 1 << 5)
        public static let lstrip = Attributes(rawValue: 1 << 7)
        public static let rstrip = Attributes(rawValue: 1 << 8)
    }

    public let kind: Kind
    /// `tokenizer.ggml.pre` (BPE) or "default" (SPM).
    public let preTokenizerName: String
    /// The splitter for BPE vocabularies; nil for SPM.
    public let preTokenizer: PreTokenizer?
    public let attributes: [Attributes]
    public let scores: [Float]
    public let bosID: Int32?
    public let eosID: Int32?
    public let eotID: Int32?
    public let eomID: Int32?
    public let unknownID: Int32?
    public let paddingID: Int32?
    /// `tokenizer.ggml.add_bos_token` (or the llama.cpp default for the vocabulary type).
    public let addBOS: Bool
    public let addEOS: Bool
    /// SPM: a space is put before text that starts the input or follows a special token.
    public let addSpacePrefix: Bool
    /// `clean_up_tokenization_spaces` as llama.cpp sets it per pre-tokenizer (used by `decode`).
    public let cleanSpaces: Bool
    /// Tokens that end generation (llama.cpp `special_eog_ids`).
    public let endOfGeneration: Set<Int32>

    let tokenBytes: [[UInt8]]
    /// Token text → id (a repeated text maps to its last id, as llama.cpp's `token_to_id`).
    let textTable: ByteKeyTable
    /// Control, user-defined and unknown tokens, longest text first (llama.cpp `cache_special_tokens`).
    let specialOrder: [Int32]
    let bpe: BPEModel?
    let spm: SPMModel?
    /// Unicode NFC normalization before splitting (Hugging Face `normalizer: NFC`, e.g. Qwen2).
    /// llama.cpp does not normalize, so this is only set when loading from tokenizer.json.
    public let normalizesNFC: Bool

    public var vocabularySize: Int { tokenBytes.count }

    /// The text of a token as stored in the vocabulary (byte-level encoded for BPE, `▁` for SPM).
    public func tokenText(_ id: Int32) -> String {
        guard id >= 0, Int(id) < tokenBytes.count else { return "" }
        return String(decoding: tokenBytes[Int(id)], as: UTF8.self)
    }

    /// The id of a vocabulary entry by its stored text.
    public func tokenID(_ text: String) -> Int32? { textTable.find(Array(text.utf8)) }

    public func isEndOfGeneration(_ id: Int32) -> Bool { endOfGeneration.contains(id) }

    // MARK: - Loading

    /// What a vocabulary is made of, in GGUF terms: both loaders fill it, then `init(spec:)`
    /// applies llama.cpp's `llama_vocab::impl::load` rules.
    struct Spec {
        var path: String
        var model: String
        var pre: String?
        var tokens: [String] = []
        var scores: [Float]? = nil
        var types: [Int32]? = nil
        var merges: [String] = []
        /// Explicit special ids ("bos", "eos", "eot", "eom", "unk", "sep", "pad", "mask", "fim_pre", ...).
        var ids: [String: Int] = [:]
        var addBOS: Bool? = nil
        var addEOS: Bool? = nil
        var addSpacePrefix: Bool? = nil
        var cleanSpaces: Bool? = nil
        var nfc = false
        var extraAttributes: [Int: Attributes] = [:]
    }

    /// Per `tokenizer.ggml.pre` name: splitter, clean_spaces, ignore_merges, default add_bos
    /// (llama-vocab.cpp, the branches whose regexes are implemented here).
    static let bpePreTokenizers: [String: (PreTokenizer, clean: Bool, ignoreMerges: Bool, addBOS: Bool)] = {
        var t: [String: (PreTokenizer, clean: Bool, ignoreMerges: Bool, addBOS: Bool)] = [:]
        for n in ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"] {
            t[n] = (.llama3, true, true, true)
        }
        for n in ["dbrx", "smaug-bpe"] { t[n] = (.llama3, true, false, false) }
        for n in ["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
                  "modern-bert", "mpt", "olmo", "jais", "exaone4"] {
            t[n] = (.gpt2, true, false, false)
        }
        for n in ["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"] { t[n] = (.digitsThenGPT2, true, false, false) }
        for n in ["smollm", "command-r"] { t[n] = (.digitsThenGPT2, false, false, false) }
        for n in ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"] { t[n] = (.qwen2, false, false, false) }
        for n in ["megrez", "stablelm2"] { t[n] = (.qwen2, true, false, false) }
        return t
    }()

    public static var supportedPreTokenizers: [String] { bpePreTokenizers.keys.sorted() }

    init(spec s: Spec) throws {
        func fail(_ m: String) -> TokenizerError { .invalid(path: s.path, detail: m) }
        let n = s.tokens.count
        guard n > 0 else { throw fail("the vocabulary is empty") }
        guard n < Int(Int32.max) else { throw fail("vocabulary of \(n) tokens is too large") }

        var bos: Int32? = nil, eos: Int32? = nil, unk: Int32? = nil
        var addBOS = false, addEOS = false, addSpacePrefix = false, clean = false
        var pre: PreTokenizer? = nil
        var ignoreMerges = false
        switch s.model {
        case "llama":
            kind = .spm
            bos = 1; eos = 2; unk = 0
            addSpacePrefix = true
            addBOS = true
            preTokenizerName = "default"
        case "gpt2":
            kind = .bpe
            bos = 11; eos = 11
            let name = s.pre ?? ""
            guard !name.isEmpty else {
                throw fail("no tokenizer.ggml.pre: llama.cpp's \"default\" BPE pre-tokenizer is not supported (supported: \(Self.supportedPreTokenizers.joined(separator: ", ")))")
            }
            guard let p = Self.bpePreTokenizers[name] else {
                throw fail("unsupported pre-tokenizer \"\(name)\" (supported: \(Self.supportedPreTokenizers.joined(separator: ", ")))")
            }
            pre = p.0
            clean = p.clean
            ignoreMerges = p.ignoreMerges
            addBOS = p.addBOS
            preTokenizerName = name
        default:
            throw fail("unsupported tokenizer model \"\(s.model)\" (gpt2 and llama are supported)")
        }
        preTokenizer = pre
        if let a = s.addSpacePrefix { addSpacePrefix = a }
        if let c = s.cleanSpaces { clean = c }

        // Tokens, scores, attributes.
        var bytes: [[UInt8]] = []
        bytes.reserveCapacity(n)
        var table = ByteKeyTable(capacity: n)
        for (i, t) in s.tokens.enumerated() {
            let b = t.isEmpty ? Array("[EMPTY_\(i)]".utf8) : Array(t.utf8)
            bytes.append(b)
            table.insert(b, value: Int32(i))
        }
        if let sc = s.scores, sc.count < n { throw fail("\(sc.count) scores for \(n) tokens") }
        if let ty = s.types, ty.count < n { throw fail("\(ty.count) token types for \(n) tokens") }
        scores = s.scores.map { Array($0.prefix(n)) } ?? [Float](repeating: 0, count: n)
        var attrs = [Attributes](repeating: .normal, count: n)
        if let ty = s.types {
            for i in 0..<n {
                switch GGUFTokenType(rawValue: ty[i]) {
                case .normal: attrs[i] = .normal
                case .unknown: attrs[i] = .unknown
                case .control: attrs[i] = .control
                case .userDefined: attrs[i] = .userDefined
                case .unused: attrs[i] = .unused
                case .byte: attrs[i] = .byte
                case nil: attrs[i] = []
                }
            }
        }
        for (i, a) in s.extraAttributes where i >= 0 && i < n { attrs[i].formUnion(a) }

        // Special ids: defaults out of range are disabled; explicit ids out of range keep the default.
        func inRange(_ v: Int32?) -> Int32? { v.flatMap { $0 >= 0 && Int($0) < n ? $0 : nil } }
        func explicit(_ key: String, _ def: Int32?) -> Int32? {
            let d = inRange(def)
            guard let v = s.ids[key] else { return d }
            return v >= 0 && v < n ? Int32(v) : d
        }
        bos = explicit("bos", bos)
        eos = explicit("eos", eos)
        unk = explicit("unk", unk)
        var eot = explicit("eot", nil)
        var eom = explicit("eom", nil)
        paddingID = explicit("pad", nil)
        var fim: [String: Int32?] = [:]
        for k in ["fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep"] { fim[k] = explicit(k, nil) }
        if let a = s.addBOS { addBOS = a }
        if let a = s.addEOS { addEOS = a }

        // Auto-detected special tokens by text (llama-vocab.cpp); forced to CONTROL.
        let texts = s.tokens
        func detect(_ current: Int32?, _ candidates: Set<String>) -> Int32? {
            if let current { return current }
            for i in 0..<n where candidates.contains(texts[i]) {
                attrs[i].insert(.control)
                return Int32(i)
            }
            return nil
        }
        eot = detect(eot, ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
                           "_<EOT>", "[EOT]", "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>", "<end_of_utterance>"])
        eom = detect(eom, ["<|eom_id|>"])
        fim["fim_pre"] = detect(fim["fim_pre"] ?? nil, ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\u{FF5C}fim\u{2581}begin\u{FF5C}>",
                                                      "<PRE>", "\u{2581}<PRE>", "<|code_prefix|>", "<|prefix|>"])
        fim["fim_suf"] = detect(fim["fim_suf"] ?? nil, ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\u{FF5C}fim\u{2581}hole\u{FF5C}>",
                                                      "<SUF>", "\u{2581}<SUF>", "<|code_suffix|>", "<|suffix|>"])
        fim["fim_mid"] = detect(fim["fim_mid"] ?? nil, ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\u{FF5C}fim\u{2581}end\u{FF5C}>",
                                                      "<MID>", "\u{2581}<MID>", "<|code_middle|>", "<|middle|>"])
        fim["fim_pad"] = detect(fim["fim_pad"] ?? nil, ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"])
        fim["fim_rep"] = detect(fim["fim_rep"] ?? nil, ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"])
        fim["fim_sep"] = detect(fim["fim_sep"] ?? nil, ["<|file_sep|>"])

        var eog: Set<Int32> = []
        for k in ["fim_pad", "fim_rep", "fim_sep"] { if let v = fim[k] ?? nil { eog.insert(v) } }
        let eogTexts: Set<String> = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                                     "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                                     "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                                     "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>", "[e~["]
        for i in 0..<n where eogTexts.contains(texts[i]) {
            eog.insert(Int32(i))
            attrs[i].insert(.control)
        }
        for i in 0..<n where ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"].contains(texts[i]) {
            attrs[i] = .userDefined
        }
        for v in [eos, eot, eom] { if let v { eog.insert(v) } }
        do {
            let eogText = Set(eog.map { texts[Int($0)] })
            let hasCall = eogText.contains("<|call|>") || eogText.contains("<|calls|>")
            if (eogText.contains("<|return|>") && hasCall) || (hasCall && eogText.contains("<|flush|>")),
               let end = eog.first(where: { texts[Int($0)] == "<|end|>" }) {
                eog.remove(end)
                attrs[Int(end)] = .userDefined
            }
            if eogText.contains("<|tool_response>") || eogText.contains("<|plamo:eos|>"),
               let s = eog.first(where: { texts[Int($0)] == "</s>" }) {
                eog.remove(s)
                attrs[Int(s)] = .normal
            }
        }

        // Special-token cache: longest first (llama.cpp's std::sort is not stable; ties here go by id).
        var special: [Int32] = []
        for i in 0..<n where !attrs[i].isDisjoint(with: [.control, .userDefined, .unknown]) { special.append(Int32(i)) }
        special.sort { a, b in
            let la = bytes[Int(a)].count, lb = bytes[Int(b)].count
            return la != lb ? la > lb : a < b
        }

        switch kind {
        case .bpe:
            bpe = BPEModel(tokens: bytes, table: table, merges: s.merges, ignoreMerges: ignoreMerges)
            spm = nil
        case .spm:
            spm = SPMModel(table: table, unknown: unk)
            bpe = nil
        }
        tokenBytes = bytes
        textTable = table
        attributes = attrs
        specialOrder = special
        bosID = bos
        eosID = eos
        eotID = eot
        eomID = eom
        unknownID = unk
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        cleanSpaces = clean
        endOfGeneration = eog
        normalizesNFC = s.nfc
    }

    // MARK: - Encoding

    /// Token ids of `text`, as llama.cpp's `llama_tokenize(vocab, text, add_special, parse_special)`.
    ///
    /// - Parameters:
    ///   - addSpecial: add BOS/EOS as the vocabulary asks (`tokenizer.ggml.add_bos_token`, ...).
    ///   - parseSpecial: match control tokens (e.g. `<|im_start|>`) written in the text; user-defined
    ///     tokens are always matched. llama-perplexity tokenizes with `true, false`;
    ///     llama-tokenize and Hugging Face `tokenizers` behave like `parseSpecial: true`.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int32] {
        var t = text
        return t.withUTF8 { encode(utf8: UnsafeRawBufferPointer($0), addSpecial: addSpecial, parseSpecial: parseSpecial) }
    }

    /// As `encode(_:)`, for raw bytes (invalid UTF-8 is handled as llama.cpp does).
    public func encode(utf8 bytes: UnsafeRawBufferPointer, addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3 + 4)
        let fragments = partition(bytes, parseSpecial: parseSpecial)
        switch kind {
        case .bpe:
            let model = bpe!
            if addSpecial && addBOS, let b = bosID { out.append(b) }
            var session = BPESession(model: model)
            for f in fragments {
                if f.token >= 0 { out.append(f.token); continue }
                let slice = UnsafeRawBufferPointer(rebasing: bytes[f.start..<f.end])
                if normalizesNFC {
                    let s = String(decoding: slice, as: UTF8.self).precomposedStringWithCanonicalMapping
                    var u = Array(s.utf8)
                    u.withUnsafeMutableBytes { session.tokenize(UnsafeRawBufferPointer($0), pre: preTokenizer!, into: &out) }
                } else {
                    session.tokenize(slice, pre: preTokenizer!, into: &out)
                }
            }
            if addSpecial && addEOS, let e = eosID { out.append(e) }
        case .spm:
            let model = spm!
            var isPrevSpecial = true
            if addSpecial && addBOS, let b = bosID { out.append(b) }
            var buf: [UInt8] = []
            var session = SPMSession()
            for f in fragments {
                if f.token >= 0 {
                    out.append(f.token)
                    isPrevSpecial = true
                    continue
                }
                // Prefix a space when the fragment starts the text or follows a special token, then
                // escape spaces as U+2581.
                buf.removeAll(keepingCapacity: true)
                if addSpacePrefix && isPrevSpecial { buf.append(contentsOf: [0xE2, 0x96, 0x81]) }
                for i in f.start..<f.end {
                    let b = bytes[i]
                    if b == 0x20 { buf.append(contentsOf: [0xE2, 0x96, 0x81]) } else { buf.append(b) }
                }
                buf.withUnsafeBytes { session.tokenize($0, model: model, scores: scores, into: &out) }
                isPrevSpecial = false
            }
            if addSpecial && addEOS, let e = eosID { out.append(e) }
        }
        return out
    }

    /// The prompt llama.cpp's tools (llama-perplexity, llama-cli, ...) make of a file given with `-f`:
    /// one trailing newline dropped, then (unless `--no-escape`) `string_process_escapes`
    /// (`\n \r \t \' \" \\` and `\xHH`; any other backslash is kept). llama-perplexity then
    /// tokenizes it with `encode(bytes:, addSpecial: true, parseSpecial: false)`.
    public static func llamaCppFilePrompt(_ file: [UInt8], processEscapes: Bool = true) -> [UInt8] {
        var input = file
        if input.last == 0x0A { input.removeLast() }
        guard processEscapes else { return input }
        let n = input.count
        var out = 0
        var i = 0
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        func strtol2(_ a: UInt8, _ b: UInt8) -> UInt8? {
            if let h = hex(a), let l = hex(b) { return h << 4 | l }
            guard let l = hex(b) else { return nil }
            if isSpace(a) || a == 0x2B { return l }
            if a == 0x2D { return UInt8(truncatingIfNeeded: -Int(l)) }
            return nil
        }
        while i < n {
            if input[i] == 0x5C && i + 1 < n {
                i += 1
                let c = input[i]
                switch c {
                case 0x6E: input[out] = 0x0A; out += 1
                case 0x72: input[out] = 0x0D; out += 1
                case 0x74: input[out] = 0x09; out += 1
                case 0x27, 0x22, 0x5C: input[out] = c; out += 1
                default:
                    // \xHH: the two bytes after x must be consumed whole by strtol(base 16), which
                    // also takes a leading space or sign ("\x 1", "\x-1").
                    if c == 0x78, i + 2 < n, let v = strtol2(input[i + 1], input[i + 2]) {
                        input[out] = v
                        out += 1
                        i += 2
                    } else {
                        input[out] = 0x5C
                        input[out + 1] = c
                        out += 2
                    }
                }
            } else {
                input[out] = input[i]
                out += 1
            }
            i += 1
        }
        input.removeLast(n - out)
        return input
    }

    public func encode(bytes: [UInt8], addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int32] {
        bytes.withUnsafeBytes { encode(utf8: $0, addSpecial: addSpecial, parseSpecial: parseSpecial) }
    }

    struct Fragment {
        var start: Int
        var end: Int
        /// -1 for raw text.
        var token: Int32
    }

    /// Offset of the first occurrence of `needle` in `hay[0..<n]`.
    static func find(_ needle: UnsafeRawBufferPointer, in hay: UnsafeRawPointer, _ n: Int) -> Int? {
        let m = needle.count
        guard m > 0, n >= m else { return nil }
        let first = needle[0]
        let np = needle.baseAddress!
        var i = 0
        let last = n - m
        while i <= last {
            guard let p = memchr(hay + i, Int32(first), last - i + 1) else { return nil }
            let at = UnsafeRawPointer(p) - hay
            if memcmp(hay + at, np, m) == 0 { return at }
            i = at + 1
        }
        return nil
    }

    @inline(__always)
    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    /// llama.cpp `tokenizer_st_partition`: split the text at every occurrence of each special token,
    /// longest tokens first. Control and unknown tokens only when `parseSpecial`.
    func partition(_ text: UnsafeRawBufferPointer, parseSpecial: Bool) -> [Fragment] {
        guard text.count > 0 else { return [] }
        var frags = [Fragment(start: 0, end: text.count, token: -1)]
        let base = text.baseAddress!
        for sid in specialOrder {
            let attr = attributes[Int(sid)]
            if !parseSpecial && !attr.isDisjoint(with: [.control, .unknown]) { continue }
            let tok = tokenBytes[Int(sid)]
            let tlen = tok.count
            guard tlen > 0 else { continue }
            var next: [Fragment]? = nil
            tok.withUnsafeBytes { needle in
                for (fi, f) in frags.enumerated() {
                    if f.token >= 0 || f.end - f.start < tlen {
                        next?.append(f)
                        continue
                    }
                    var start = f.start
                    var len = f.end - f.start
                    var matched = false
                    while true {
                        guard let match = Self.find(needle, in: base + start, len).map({ start + $0 }) else {
                            if matched {
                                if len > 0 { next!.append(Fragment(start: start, end: start + len, token: -1)) }
                            }
                            break
                        }
                        if !matched {
                            matched = true
                            if next == nil { next = Array(frags[0..<fi]) }
                        }
                        if match > start {
                            var leftLen = match - start
                            if attr.contains(.lstrip) {
                                while leftLen > 0 && Self.isSpace(text[start + leftLen - 1]) { leftLen -= 1 }
                            }
                            if leftLen > 0 { next!.append(Fragment(start: start, end: start + leftLen, token: -1)) }
                        }
                        next!.append(Fragment(start: match, end: match + tlen, token: sid))
                        if match + tlen < start + len {
                            var rOff = match + tlen
                            var rLen = start + len - rOff
                            if attr.contains(.rstrip) {
                                while rLen > 0 && Self.isSpace(text[rOff]) { rOff += 1; rLen -= 1 }
                            }
                            start = rOff
                            len = rLen
                            if len == 0 { break }
                        } else {
                            len = 0
                            break
                        }
                    }
                    if !matched { next?.append(f) }
                }
            }
            if let next { frags = next }
        }
        return frags
    }

    // MARK: - Decoding

    /// The bytes of one token, as llama.cpp's `token_to_piece(token, lstrip: 0, special)`.
    /// Control and unknown tokens are empty unless `special`.
    public func piece(_ id: Int32, special: Bool = false) -> [UInt8] {
        guard id >= 0, Int(id) < tokenBytes.count else { return [] }
        let attr = attributes[Int(id)]
        if !special && !attr.isDisjoint(with: [.unknown, .control]) { return [] }
        let text = tokenBytes[Int(id)]
        if !attr.isDisjoint(with: [.unknown, .control, .userDefined]) { return text }
        if attr.contains(.normal) {
            switch kind {
            case .spm: return Self.unescapeWhitespace(text)
            case .bpe: return ByteLevel.decode(text)
            }
        }
        if attr.contains(.byte) {
            // "<0xXX>": strtol of the two hex digits.
            guard text.count >= 5, let v = UInt8(String(decoding: text[3..<5], as: UTF8.self), radix: 16) else { return [] }
            return [v]
        }
        return []
    }

    static func unescapeWhitespace(_ t: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(t.count)
        var i = 0
        while i < t.count {
            if i + 2 < t.count && t[i] == 0xE2 && t[i + 1] == 0x96 && t[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(t[i])
                i += 1
            }
        }
        return out
    }

    /// The bytes of a token sequence, as llama.cpp's `llama_detokenize(tokens, remove_special, unparse_special)`.
    public func decodeBytes(_ ids: [Int32], removeSpecial: Bool = false, unparseSpecial: Bool = false) -> [UInt8] {
        var ids = ids[...]
        var removeSpace = addSpacePrefix
        if removeSpecial && addBOS, let f = ids.first, f == bosID {
            removeSpace = false
            ids = ids.dropFirst()
        }
        if removeSpecial && addEOS, let l = ids.last, l == eosID { ids = ids.dropLast() }
        var text: [UInt8] = []
        for id in ids {
            var p = piece(id, special: unparseSpecial)
            if removeSpace, p.first == 0x20 { p.removeFirst() }
            removeSpace = false
            text.append(contentsOf: p)
        }
        guard cleanSpaces, !text.isEmpty else { return text }
        Self.cleanUpSpaces(&text)
        return text
    }

    /// llama.cpp's `clean_spaces` passes of `detokenize`, ported literally (in place).
    static func cleanUpSpaces(_ text: inout [UInt8]) {
        let space: UInt8 = 0x20, apos: UInt8 = 0x27
        // First pass: " ?", " !", " .", " ," lose their space.
        let total1 = text.count
        var total = total1 > 0 ? 1 : 0
        var i = 1
        while i < total1 {
            let x = text[i]
            if text[i - 1] == space && (x == 0x3F || x == 0x21 || x == 0x2E || x == 0x2C) { total -= 1 }
            text[total] = x
            total += 1
            i += 1
        }
        // Second pass: strip the spaces around a single apostrophe (" ' ").
        let total2 = total
        total = total2 > 0 ? 1 : 0
        i = 1
        while i < total2 {
            let x = text[i]
            if x == apos && i + 1 < total2 && text[i - 1] == space && text[i + 1] == space {
                total -= 1
                i += 1
                text[i] = 0
            }
            text[total] = x
            total += 1
            i += 1
        }
        // Third pass: " 's", " 'm", " 're", " 've" lose their space.
        let total3 = total
        total = total3 > 0 ? 1 : 0
        i = 1
        while i < total3 {
            let x = text[i]
            if text[i - 1] == space && x == apos && i + 1 < total3 {
                let x1 = text[i + 1]
                if x1 == 0x74 || x1 == 0x64 {
                    // " 't", " 'd": kept
                } else if x1 == 0x73 || x1 == 0x6D {
                    total -= 1
                } else if i + 2 < total3 {
                    let x2 = text[i + 2]
                    if (x1 == 0x72 && x2 == 0x65) || (x1 == 0x76 && x2 == 0x65) { total -= 1 }
                }
            }
            text[total] = x
            total += 1
            i += 1
        }
        text.removeLast(text.count - total)
    }

    /// Text of a token sequence (invalid UTF-8 becomes U+FFFD).
    public func decode(_ ids: [Int32], removeSpecial: Bool = false, unparseSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, removeSpecial: removeSpecial, unparseSpecial: unparseSpecial), as: UTF8.self)
    }
}
