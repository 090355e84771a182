import Foundation
import GGUFWriter
import Testing
@testable import Tokenizer

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures").path
let tokFixtures = fixtures + "/tokenizer"

/// The texts of Fixtures/tokenizer/cases.json plus wiki-eval-20k.txt, by name, in file order.
let cases: [(name: String, text: String)] = {
    let data = try! Data(contentsOf: URL(fileURLWithPath: tokFixtures + "/cases.json"))
    let arr = try! JSONSerialization.jsonObject(with: data) as! [[String: String]]
    var out = arr.map { ($0["name"]!, $0["text"]!) }
    let wiki = try! Data(contentsOf: URL(fileURLWithPath: tokFixtures + "/wiki-eval-20k.txt"))
    out.append(("wiki-eval-20k", String(decoding: wiki, as: UTF8.self)))
    return out
}()

/// Ids recorded by Fixtures/tokenizer/make_tokenizer_fixtures.py.
struct Expected {
    struct Case {
        var llama: [Int32]
        var llamaNoParse: [Int32]
        var hf: [Int32]?
    }
    var hfChecked: Bool
    var cases: [String: Case]

    init(_ model: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(tokFixtures)/expected/\(model).json"))
        let o = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        hfChecked = o["hf_checked"] as? Bool ?? false
        var cs: [String: Case] = [:]
        for (k, v) in try #require(o["cases"] as? [String: [String: [Int]]]) {
            let llama = try #require(v["llama"]).map(Int32.init)
            cs[k] = Case(llama: llama, llamaNoParse: v["llama_noparse"].map { $0.map(Int32.init) } ?? llama,
                         hf: hfChecked ? (v["hf"].map { $0.map(Int32.init) } ?? llama) : nil)
        }
        cases = cs
    }
}

/// First difference, for readable failures on long id lists.
func firstDiff(_ a: [Int32], _ b: [Int32]) -> String {
    if a == b { return "equal" }
    let i = zip(a, b).prefix { $0 == $1 }.count
    return "differ at \(i) (got \(a.count) ids, want \(b.count)): got \(Array(a[i..<min(a.count, i + 8)])), want \(Array(b[i..<min(b.count, i + 8)]))"
}

/// llama-tokenize tokenizes with add_special = the vocabulary's add_bos (and parse_special unless
/// --no-parse-special), so "llama" ids are `encode(text, addSpecial: tok.addBOS, ...)`.
@Suite struct TokenizerLlamaCppParityTests {
    /// Byte-level BPE vocabularies with Qwen2's and Llama 3's pre-tokenizers, read from GGUF: the ids of
    /// llama-tokenize, with and without --no-parse-special, on every text.
    @Test(arguments: ["qwen2-style", "llama3-style"])
    func bpeFromGGUF(style: String) throws {
        let tok = try Tokenizer(ggufPath: "\(tokFixtures)/\(style)/vocab.gguf")
        #expect(tok.kind == .bpe)
        let exp = try Expected(style)
        for (name, text) in cases {
            let e = try #require(exp.cases[name])
            let got = tok.encode(text, addSpecial: tok.addBOS, parseSpecial: true)
            #expect(got == e.llama, "\(style) \(name): \(firstDiff(got, e.llama))")
            let gotNP = tok.encode(text, addSpecial: tok.addBOS, parseSpecial: false)
            #expect(gotNP == e.llamaNoParse, "\(style) \(name) no-parse-special: \(firstDiff(gotNP, e.llamaNoParse))")
        }
    }

    /// SentencePiece vocabularies of the golden GGUFs (convert_hf_to_gguf.py output): llama-tokenize's ids.
    @Test(arguments: ["llama-tied", "mistral", "qwen2"])
    func spmFromGGUF(variant: String) throws {
        let tok = try Tokenizer(ggufPath: "\(fixtures)/golden/\(variant)-f32.gguf")
        #expect(tok.kind == .spm)
        let exp = try Expected("spm-\(variant)")
        // The three variants share one tokenizer.model; only llama-tied has the long text recorded.
        #expect(exp.cases.count >= cases.count - 1)
        for (name, text) in cases {
            guard let e = exp.cases[name] else { continue }
            let got = tok.encode(text, addSpecial: tok.addBOS, parseSpecial: true)
            #expect(got == e.llama, "\(variant) \(name): \(firstDiff(got, e.llama))")
            let gotNP = tok.encode(text, addSpecial: tok.addBOS, parseSpecial: false)
            #expect(gotNP == e.llamaNoParse, "\(variant) \(name) no-parse-special: \(firstDiff(gotNP, e.llamaNoParse))")
        }
    }

    /// The checkpoints' tokenizer.model (+ tokenizer_config/added tokens/config.json) read as convert
    /// would write it gives the same tokenizer as the GGUF.
    @Test(arguments: ["llama-tied", "mistral", "qwen2"])
    func spmFromDirectory(variant: String) throws {
        let tok = try Tokenizer(directory: "\(fixtures)/checkpoints/\(variant)")
        let ref = try Tokenizer(ggufPath: "\(fixtures)/golden/\(variant)-f32.gguf")
        #expect(tok.vocabularySize == ref.vocabularySize)
        #expect(tok.attributes == ref.attributes)
        #expect(tok.addBOS == ref.addBOS && tok.addEOS == ref.addEOS && tok.addSpacePrefix == ref.addSpacePrefix)
        #expect(tok.bosID == ref.bosID && tok.eosID == ref.eosID)
        let exp = try Expected("spm-\(variant)")
        #expect(exp.cases.count >= cases.count - 1)
        for (name, text) in cases {
            guard let e = exp.cases[name] else { continue }
            let got = tok.encode(text, addSpecial: tok.addBOS, parseSpecial: true)
            #expect(got == e.llama, "\(variant) \(name): \(firstDiff(got, e.llama))")
        }
    }
}

@Suite struct TokenizerHFParityTests {
    /// tokenizer.json + tokenizer_config.json: the ids of Hugging Face `tokenizers`
    /// (`Tokenizer.from_file(...).encode(text).ids`, which splits special tokens and adds what the
    /// post-processor adds). For qwen2-style that includes its NFC normalizer, which llama.cpp lacks
    /// (the one recorded difference, on "combining").
    @Test(arguments: ["qwen2-style", "llama3-style"])
    func bpeFromTokenizerJSON(style: String) throws {
        let tok = try Tokenizer(directory: "\(tokFixtures)/\(style)")
        #expect(tok.preTokenizerName == (style == "qwen2-style" ? "qwen2" : "llama-bpe"))
        let exp = try Expected(style)
        #expect(exp.hfChecked)
        for (name, text) in cases {
            let want = try #require(exp.cases[name]?.hf)
            let got = tok.encode(text, addSpecial: true, parseSpecial: true)
            #expect(got == want, "\(style) \(name): \(firstDiff(got, want))")
        }
    }

    /// The mistral checkpoint's tokenizer.json (a SentencePiece-style BPE) agrees with llama.cpp on every
    /// text; our directory loader reads its tokenizer.model, so this checks the recorded HF ids too.
    @Test func mistralHFIdsEqualLlamaCpp() throws {
        let exp = try Expected("spm-mistral")
        #expect(exp.hfChecked)
        let tok = try Tokenizer(directory: "\(fixtures)/checkpoints/mistral")
        #expect(exp.cases.count == cases.count - 1)
        for (name, text) in cases {
            guard let want = exp.cases[name]?.hf else { continue }
            #expect(tok.encode(text, addSpecial: true, parseSpecial: true) == want, "mistral \(name)")
        }
    }
}

@Suite struct TokenizerBehaviourTests {
    static let qwen = try! Tokenizer(ggufPath: "\(tokFixtures)/qwen2-style/vocab.gguf")
    static let llama3 = try! Tokenizer(ggufPath: "\(tokFixtures)/llama3-style/vocab.gguf")
    static let spm = try! Tokenizer(ggufPath: "\(fixtures)/golden/llama-tied-f32.gguf")

    @Test func metadata() throws {
        let q = Self.qwen, l = Self.llama3, s = Self.spm
        #expect(q.preTokenizer == .qwen2 && l.preTokenizer == .llama3 && s.preTokenizer == nil)
        #expect(!q.addBOS && l.addBOS && s.addBOS)
        #expect(l.bosID == l.tokenID("<|begin_of_text|>"))
        #expect(q.eosID == q.tokenID("<|im_end|>"))
        #expect(q.isEndOfGeneration(try #require(q.tokenID("<|im_end|>"))))
        #expect(q.isEndOfGeneration(try #require(q.tokenID("<|endoftext|>"))))
        #expect(l.isEndOfGeneration(try #require(l.tokenID("<|eot_id|>"))))
        #expect(q.attributes[Int(try #require(q.tokenID("<think>")))] == .userDefined)
        #expect(!q.cleanSpaces && l.cleanSpaces && !s.cleanSpaces)
    }

    @Test func specialTokensAndFlags() throws {
        let q = Self.qwen
        let start = try #require(q.tokenID("<|im_start|>"))
        let think = try #require(q.tokenID("<think>"))
        let parsed = q.encode("<|im_start|>x", addSpecial: false, parseSpecial: true)
        #expect(parsed.first == start)
        // Control tokens are text unless parseSpecial; user-defined tokens are always matched.
        #expect(!q.encode("<|im_start|>x", addSpecial: false, parseSpecial: false).contains(start))
        #expect(q.encode("<think>", addSpecial: false, parseSpecial: false) == [think])
        // BOS only with addSpecial, and only where the vocabulary asks for it.
        let l = Self.llama3
        #expect(l.encode("hi", addSpecial: true).first == l.bosID)
        #expect(l.encode("hi", addSpecial: false).first != l.bosID)
        #expect(q.encode("", addSpecial: true).isEmpty)
        #expect(l.encode("", addSpecial: true) == [l.bosID!])
        #expect(Self.spm.encode("", addSpecial: true) == [Self.spm.bosID!])
        #expect(Self.spm.encode("", addSpecial: false).isEmpty)
    }

    /// ignore_merges (llama3): a word that is a token is emitted whole even though no merge makes it.
    @Test func ignoreMerges() throws {
        let l = Self.llama3, q = Self.qwen
        let z = try #require(l.tokenID("\u{0120}zyzzyva"))
        #expect(l.encode(" zyzzyva", addSpecial: false) == [z])
        #expect(q.encode(" zyzzyva", addSpecial: false).count > 1)
    }

    /// Byte-level BPE is lossless: decode(encode(x)) == x (qwen2-style does not clean spaces), for
    /// every text including invalid-looking controls; special tokens come back with unparseSpecial.
    @Test func bpeRoundTrip() throws {
        for (name, text) in cases {
            let ids = Self.qwen.encode(text, addSpecial: false, parseSpecial: true)
            #expect(Self.qwen.decode(ids, unparseSpecial: true) == text, "\(name)")
        }
        let ids = Self.qwen.encode("<|im_start|>a<|im_end|>", addSpecial: false, parseSpecial: true)
        #expect(Self.qwen.decode(ids) == "a")
        #expect(Self.qwen.decode(ids, unparseSpecial: true) == "<|im_start|>a<|im_end|>")
    }

    /// SentencePiece: ▁ back to spaces, byte tokens back to bytes, the prefix space removed from the
    /// first token (llama.cpp keeps it when the sequence starts with BOS).
    @Test func spmRoundTrip() throws {
        let s = Self.spm
        for (name, text) in cases where !text.contains("<s>") && !text.contains("</s>") && !text.contains("<unk>") {
            #expect(s.decode(s.encode(text, addSpecial: false)) == text, "\(name)")
            let withBOS = s.encode(text, addSpecial: true)
            let want = text.isEmpty ? "" : " " + text
            #expect(s.decode(withBOS) == want, "\(name)")
            #expect(s.decode(withBOS, removeSpecial: true) == want, "\(name)")
        }
    }

    /// llama.cpp's clean_up_tokenization_spaces passes (llama3-style sets clean_spaces).
    @Test func cleanSpaces() {
        var t = Array("a ? b ! c . d , e ' f 's g 're h 't".utf8)
        Tokenizer.cleanUpSpaces(&t)
        #expect(String(decoding: t, as: UTF8.self) == "a? b! c. d, e'f's g're h 't")
        let l = Self.llama3
        #expect(l.decode(l.encode("Hello , world ?", addSpecial: false)) == "Hello, world?")
    }

    /// `-f FILE` as llama.cpp's tools read it: one trailing newline dropped, escapes processed.
    @Test func filePrompt() {
        func p(_ s: String, _ esc: Bool = true) -> [UInt8] { Tokenizer.llamaCppFilePrompt(Array(s.utf8), processEscapes: esc) }
        #expect(p(#"a\nb\tc\\d\'e\"f\q\x41\x4g\x 9\x-1"# + "\n") == Array("a\nb\tc\\d'e\"f\\qA\\x4g".utf8) + [0x09, 0xFF])
        #expect(p("text\n\n") == Array("text\n".utf8))
        #expect(p(#"x\n"# + "\n", false) == Array(#"x\n"#.utf8))
        #expect(p(#"end\"#) == Array(#"end\"#.utf8))
    }

    /// Invalid UTF-8: each bad byte is U+FFFD for the splitter, as in llama.cpp.
    @Test func invalidUTF8() {
        let q = Self.qwen
        let bad: [UInt8] = [0x61, 0xFF, 0x62, 0xE2, 0x82, 0x20, 0x63]
        let ids = q.encode(bytes: bad, addSpecial: false)
        let want = q.encode("a\u{FFFD}b\u{FFFD}\u{FFFD} c", addSpecial: false)
        #expect(ids == want)
    }

    @Test func threadSafety() async throws {
        let q = Self.qwen
        let text = cases.last!.text
        let ref = q.encode(text)
        let results = await withTaskGroup(of: Bool.self) { g in
            for _ in 0..<4 { g.addTask { q.encode(text) == ref } }
            var all: [Bool] = []
            for await r in g { all.append(r) }
            return all
        }
        #expect(results.allSatisfy { $0 })
    }
}

@Suite struct TokenizerSplitTests {
    func words(_ kind: PreTokenizer, _ s: String) -> [String] {
        let scalars = s.unicodeScalars.map(\.value)
        let table = CodepointFlags.table
        let flags = scalars.map { table[Int($0)] }
        var ends: [Int] = []
        scalars.withUnsafeBufferPointer { c in flags.withUnsafeBufferPointer { f in Splitter.split(kind, c, f, into: &ends) } }
        var out: [String] = []
        var start = 0
        let us = Array(s.unicodeScalars)
        for e in ends {
            var w = ""
            w.unicodeScalars.append(contentsOf: us[start..<e])
            out.append(w)
            start = e
        }
        return out
    }

    @Test func gpt2() {
        #expect(words(.gpt2, "Hello world's  end  ") == ["Hello", " world", "'s", " ", " end", "  "])
        #expect(words(.gpt2, "a123 b!!") == ["a", "123", " b", "!!"])
    }

    @Test func digitsThenGPT2() {
        #expect(words(.digitsThenGPT2, "a 123") == ["a", " ", "1", "2", "3"])
        #expect(words(.digitsThenGPT2, "x\u{0663}\u{0664}") == ["x", "\u{0663}", "\u{0664}"])
    }

    @Test func llama3AndQwen2() {
        #expect(words(.llama3, "12345 I'M  \n\n x") == ["123", "45", " I", "'M", "  \n\n", " x"])
        #expect(words(.qwen2, "123 ab") == ["1", "2", "3", " ab"])
        #expect(words(.llama3, "..\n\nx") == ["..\n\n", "x"])
    }

    @Test func tables() {
        let t = CodepointFlags.table
        #expect(t[0x41] & CodepointFlags.letter != 0)
        #expect(t[0x4E00] & CodepointFlags.letter != 0)
        #expect(t[0x0663] & CodepointFlags.number != 0)
        #expect(t[0x3000] & CodepointFlags.whitespace != 0)
        #expect(t[0x0085] & CodepointFlags.whitespace != 0)
        #expect(t[0x10FFFF] & CodepointFlags.defined != 0)
        #expect(CodepointFlags.asciiLower(0x212A) == 0x6B)
    }
}

@Suite struct TokenizerLoadTests {
    func write(_ kv: [(String, GGUFValue)]) throws -> String {
        let w = GGUFFileWriter()
        for (k, v) in kv { w.add(k, v) }
        let path = NSTemporaryDirectory() + "tok-\(UUID().uuidString).gguf"
        try Data(w.layout.headerBytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func errors() throws {
        let noVocab = try write([("general.architecture", .string("llama"))])
        defer { try? FileManager.default.removeItem(atPath: noVocab) }
        #expect(throws: (any Error).self) { try Tokenizer(ggufPath: noVocab) }
        let badPre = try write([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("bogus")),
                                ("tokenizer.ggml.tokens", .strings(["a", "b"])), ("tokenizer.ggml.merges", .strings(["a b"]))])
        defer { try? FileManager.default.removeItem(atPath: badPre) }
        do {
            _ = try Tokenizer(ggufPath: badPre)
            Issue.record("expected an error")
        } catch let error as TokenizerError {
            #expect(error.fault.contains("unsupported pre-tokenizer \"bogus\""))
        }
        let noMerges = try write([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("gpt-2")),
                                  ("tokenizer.ggml.tokens", .strings(["a", "b"]))])
        defer { try? FileManager.default.removeItem(atPath: noMerges) }
        #expect(throws: (any Error).self) { try Tokenizer(ggufPath: noMerges) }
    }

    /// A minimal vocabulary built in memory: merges by rank, not by vocabulary order; a symbol
    /// that is not a token falls back to its one-byte tokens.
    @Test func tinyVocabulary() throws {
        let tokens = ["a", "b", "c", "ab", "bc", "abc", "\u{0120}", "\u{0120}a"]
        let path = try write([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("gpt-2")),
                              ("tokenizer.ggml.tokens", .strings(tokens)),
                              ("tokenizer.ggml.merges", .strings(["b c", "a b", "a bc", "\u{0120} a"]))])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t = try Tokenizer(ggufPath: path)
        #expect(t.encode("abc", addSpecial: false) == [5])      // b c first (rank 0), then a bc
        #expect(t.encode("ab", addSpecial: false) == [3])
        #expect(t.encode("abab", addSpecial: false) == [3, 3])
        #expect(t.encode(" abc", addSpecial: false) == [6, 5])  // b+c, then a+bc; "\u{0120} a" never applies
        #expect(t.encode("add", addSpecial: false) == [0])      // 'd' has no token: dropped, as in llama.cpp
        #expect(t.decode([6, 5]) == " abc")
        #expect(t.decode([7, 4]) == " abc")
    }
}
