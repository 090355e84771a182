import Evaluation
import Foundation
import GGMLCore
import GGUFWriter
import Families
import Inference
import MappedIO
import Testing

/// GGUF files whose metadata or tensor shapes lie: each is refused when the model is loaded, with
/// one line naming the file and the fault, before any buffer is sized from the lie (the fuzzer's
/// findings were heap corruption, 40–240 GB allocations and a hang from exactly these keys).
@Suite struct HostileModelTests {
    static let tiny = fixtures + "/calibration/tiny-llama.gguf"

    /// tiny-llama.gguf with some keys replaced (nil removes one) and some tensors re-shaped (the
    /// byte count must stay the same).
    func rewritten(_ meta: [String: GGUFValue?] = [:], shapes: [String: [Int]] = [:],
                   edit: ((inout [(key: String, value: GGUFValue)]) -> Void)? = nil) throws -> String {
        let src = try GGUFFile(path: Self.tiny)
        let w = GGUFFileWriter(alignment: src.alignment)
        var kv = src.metadata
        edit?(&kv)
        for (k, v) in kv where meta[k] == nil { w.add(k, v) }
        for (k, v) in meta { if let v { w.add(k, v) } }
        for t in src.tensors { w.addTensor(name: t.name, ne: shapes[t.name] ?? t.ne, type: t.type) }
        let path = NSTemporaryDirectory() + "eq-hostile-\(UUID().uuidString).gguf"
        try w.begin(path: path)
        for (i, t) in src.tensors.enumerated() { try w.writeTensorData(i, src.data(t)) }
        try w.commit()
        return path
    }

    func expectRefused(_ path: String, _ text: String) {
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try ModelLoader.load(path)
            Issue.record("expected \(text)")
        } catch let error as any FileFault {
            #expect(error.description.hasPrefix(displayName(path) + ": "), "\(error)")
            #expect(error.description.contains(text), "\(error)")
            #expect(!error.description.contains("\n"))
        } catch {
            Issue.record("not a FileFault: \(type(of: error)): \(error)")
        }
    }

    @Test func theFixtureLoads() throws {
        let m = try ModelLoader.load(Self.tiny)
        #expect(m.hparams.nHead == 4 && m.hparams.nHeadKV == 2 && m.hparams.headDim == 8 && m.hparams.nVocab == 320)
        #expect(m.metadata["llama.rope.dimension_count"]?.intValue == 8 && m.tensors["output.weight"] != nil)
    }

    @Test(arguments: [
        ("llama.attention.head_count", GGUFValue.uint32(4_294_967_295), "llama.attention.head_count = 4294967295 is out of range 1...16384"),
        ("llama.attention.head_count", .uint32(6), "head_count 6 does not divide embedding_length 32"),
        ("llama.attention.head_count_kv", .uint32(3), "head_count_kv 3 does not divide head_count 4"),
        ("llama.attention.head_count_kv", .int32(-2), "llama.attention.head_count_kv = -2 is out of range"),
        ("llama.embedding_length", .uint32(0), "llama.embedding_length = 0 is out of range"),
        ("llama.embedding_length", .uint64(UInt64.max), "llama.embedding_length = 18446744073709551615 is out of range"),
        ("llama.feed_forward_length", .uint32(640), "tensor blk.0.ffn_gate.weight has shape [32, 64], the hyper-parameters imply [32, 640]"),
        ("llama.feed_forward_length", .uint32(6_400_000), "llama.feed_forward_length = 6400000 is out of range 1...1048576"),
        ("llama.block_count", .uint32(3), "missing tensor blk.2.attn_norm.weight"),
        ("llama.block_count", .uint32(1 << 30), "llama.block_count = 1073741824 is out of range 1...4096"),
        ("llama.rope.dimension_count", .uint32(9), "llama.rope.dimension_count = 9 is out of range 0...8"),
        ("llama.rope.dimension_count", .uint32(7), "llama.rope.dimension_count 7 is odd"),
        ("llama.attention.key_length", .uint32(1 << 20), "head_count 4 × key_length 1048576 is absurd"),
        ("llama.attention.key_length", .string("eight"), "llama.attention.key_length = \"eight\" is out of range"),
        ("llama.attention.layer_norm_rms_epsilon", .float32(.nan), "layer_norm_rms_epsilon = nan must be a finite non-negative number"),
        ("llama.rope.freq_base", .float32(0), "llama.rope.freq_base = 0.0 must be a finite positive number"),
        ("general.architecture", .string("gemma\nINJECTED"), "unsupported architecture gemma\\nINJECTED for inference (llama, qwen2, "),
    ] as [(String, GGUFValue, String)])
    func refusesLyingMetadata(key: String, value: GGUFValue, message: String) throws {
        expectRefused(try rewritten([key: value]), message)
    }

    @Test func refusesMissingKeysAndWrongShapes() throws {
        expectRefused(try rewritten(["llama.feed_forward_length": GGUFValue?.none]), "missing llama.feed_forward_length")
        expectRefused(try rewritten(shapes: ["output.weight": [64, 160]]),
                      "tensor output.weight has shape [64, 160], the hyper-parameters imply [32, 320]")
        expectRefused(try rewritten(shapes: ["blk.1.attn_k.weight": [16, 32]]),
                      "tensor blk.1.attn_k.weight has shape [16, 32], the hyper-parameters imply [32, 16]")
        expectRefused(try rewritten(shapes: ["blk.0.ffn_norm.weight": [16, 2]]),
                      "tensor blk.0.ffn_norm.weight has shape [16, 2], the hyper-parameters imply [32]")
    }

    /// A BOS id the vocabulary does not hold keeps llama.cpp's default, as llama_vocab::load does,
    /// instead of indexing past the embedding.
    @Test func outOfRangeBOSKeepsTheDefault() throws {
        for bad in [GGUFValue.uint32(4_294_967_295), .int32(-1), .uint32(320)] {
            let p = try rewritten(["tokenizer.ggml.bos_token_id": bad])
            defer { try? FileManager.default.removeItem(atPath: p) }
            #expect(try ModelLoader.load(p).chunkBOS == 1)
        }
    }

    @Test func refusesAVocabularyThatIsNotTheEmbedding() throws {
        let p = try rewritten { kv in
            for i in kv.indices where kv[i].key == "tokenizer.ggml.tokens" || kv[i].key == "tokenizer.ggml.scores"
                || kv[i].key == "tokenizer.ggml.token_type" {
                if case .array(let t, let items) = kv[i].value { kv[i].value = .array(t, Array(items.prefix(300))) }
            }
        }
        defer { try? FileManager.default.removeItem(atPath: p) }
        let m = try ModelLoader.load(p)
        #expect(throws: EvaluationError.vocabularyMismatch(path: p, tokens: 300, rows: 320)) {
            _ = try ModelLoader.tokenizer(p, for: m)
        }
    }

    @Test func refusesTokensPastTheEmbeddingAndShortTexts() throws {
        let m = try ModelLoader.load(Self.tiny)
        let fw = Forward(model: m, engine: F32Engine(threads: 1), threads: 1)
        let ev = Evaluation(forward: fw, nCtx: 8, bos: 1)
        #expect(throws: InferenceError.tokenOutsideVocabulary(path: "ids.txt", id: 320, vocabulary: 320)) {
            _ = try ev.run(tokens: [1, 2, 3, 320, 5, 6, 7, 8], source: "ids.txt", maxChunks: nil, reference: .none, saveLogits: nil)
        }
        #expect(throws: EvaluationError.tooShort(path: "short.txt", detail: "gives 5 tokens, fewer than one chunk of 8")) {
            _ = try ev.run(tokens: [1, 2, 3, 4, 5], source: "short.txt", maxChunks: nil, reference: .none, saveLogits: nil)
        }
    }

    /// What a run would allocate is computed first, overflow-checked, and refused with the figure.
    @Test func refusesAbsurdWorkingMemory() throws {
        let m = try ModelLoader.load(Self.tiny)
        try m.checkMemory(tokens: 512, cacheTokens: 512, path: "x")
        do {
            try m.checkMemory(tokens: 1 << 36, cacheTokens: 1 << 36, path: "x")
            Issue.record("expected a refusal")
        } catch let error as InferenceError {
            #expect(error.fault.contains("GB of working memory") && error.fault.contains("this machine has"), "\(error)")
        }
        #expect(m.hparams.workingSetBytes(tokens: Int.max / 2, cacheTokens: 0) == nil)
    }
}
