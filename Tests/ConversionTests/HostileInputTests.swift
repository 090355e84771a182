import Conversion
import Foundation
import MappedIO
import GGUFWriter
import ModelMapping
import StrictJSON
import Testing

/// Writes an F32 safetensors file from (name, shape, values).
func writeSafetensors(_ path: String, _ tensors: [(String, [Int], [Float])]) {
    var header: [String] = []
    var data: [UInt8] = []
    for (name, shape, values) in tensors {
        let start = data.count
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
        header.append("\"\(name)\":{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(start),\(data.count)]}")
    }
    var h = Array(("{" + header.joined(separator: ",") + "}").utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
    _ = FileManager.default.createFile(atPath: path, contents: Data(out + h + data))
}

/// A tiny llama checkpoint directory (copied tokenizer from the fixtures) with the given tensors.
func tinyCheckpoint(_ tensors: [(String, [Int], [Float])], config: [String: Any]? = nil) -> String {
    let dir = NSTemporaryDirectory() + "eq-ckpt-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for f in ["tokenizer.model", "tokenizer_config.json"] {
        try! FileManager.default.copyItem(atPath: fixture("checkpoints/llama-tied/\(f)"), toPath: dir + "/" + f)
    }
    let cfg = config ?? minimalConfig
    _ = FileManager.default.createFile(atPath: dir + "/config.json", contents: try! JSONSerialization.data(withJSONObject: cfg))
    writeSafetensors(dir + "/model.safetensors", tensors)
    return dir
}

/// A whole one-layer llama (hidden 32, 2 heads of 16, 1 KV head, feed-forward 64, vocabulary 300):
/// the least a checkpoint must hold to be converted.
func minimalTensors(embedding: [Float]? = nil) -> [(String, [Int], [Float])] {
    func w(_ name: String, _ shape: [Int]) -> (String, [Int], [Float]) {
        (name, shape, (0..<shape.reduce(1, *)).map { Float(($0 * 7 + name.count) % 23) / 23 - 0.5 })
    }
    let p = "model.layers.0."
    return [("model.embed_tokens.weight", [300, 32], embedding ?? (0..<9600).map { Float($0 % 17) / 17 }),
            ("model.norm.weight", [32], [Float](repeating: 1, count: 32)),
            (p + "input_layernorm.weight", [32], [Float](repeating: 1, count: 32)),
            (p + "post_attention_layernorm.weight", [32], [Float](repeating: 1, count: 32)),
            w(p + "self_attn.q_proj.weight", [32, 32]), w(p + "self_attn.k_proj.weight", [16, 32]),
            w(p + "self_attn.v_proj.weight", [16, 32]), w(p + "self_attn.o_proj.weight", [32, 32]),
            w(p + "mlp.gate_proj.weight", [64, 32]), w(p + "mlp.up_proj.weight", [64, 32]), w(p + "mlp.down_proj.weight", [32, 64])]
}

var minimalConfig: [String: Any] { [
    "architectures": ["LlamaForCausalLM"], "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    "num_key_value_heads": 1, "intermediate_size": 64, "rms_norm_eps": 1e-5, "vocab_size": 300, "max_position_embeddings": 128,
] }

@Suite struct HostileInputTests {
    func expectNoOutput(_ dir: String, outType: OutType = .q8_0, contains text: String) {
        let out = dir + "/out.gguf"
        do {
            let plan = try ConversionPlan(directory: dir, outType: outType)
            _ = try Converter(plan: plan).run(outfile: out)
            Issue.record("expected an error containing \(text)")
        } catch let error as any FileFault {
            #expect(error.description.contains(text), "\(error)")
            #expect(!error.description.contains("\n"))
        } catch {
            Issue.record("not a FileFault: \(type(of: error)): \(error)")
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        #expect(!left.contains { $0.hasSuffix(".gguf") || $0.contains(".tmp-") }, "left behind: \(left)")
    }

    @Test func converts_minimalCheckpoint() throws {
        let dir = tinyCheckpoint(minimalTensors())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try ConversionPlan(directory: dir, outType: .q8_0)
        let s = try Converter(plan: plan).run(outfile: dir + "/ok.gguf")
        #expect(s.tensorCount == 11)
        #expect(FileManager.default.fileExists(atPath: dir + "/ok.gguf"))
    }

    @Test func refusesInfinityInQuantizedTensor() {
        var e = (0..<9600).map { Float($0 % 17) / 17 }
        e[4000] = .infinity
        let dir = tinyCheckpoint(minimalTensors(embedding: e))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        expectNoOutput(dir, contains: "model.embed_tokens.weight\" holds inf or NaN")
    }

    @Test func refusesUnsupportedArchitecture() {
        let dir = tinyCheckpoint(minimalTensors(), config: ["architectures": ["GPTNeoXForCausalLM"], "hidden_size": 32])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        expectNoOutput(dir, contains: "unsupported architecture GPTNeoXForCausalLM; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM")
    }

    @Test func refusesUnknownTensorAndMissingParts() {
        let d1 = tinyCheckpoint(minimalTensors() + [("model.layers.0.mystery.weight", [4], [1, 2, 3, 4])])
        defer { try? FileManager.default.removeItem(atPath: d1) }
        expectNoOutput(d1, contains: "\"model.layers.0.mystery.weight\" has no GGUF name")
        let d2 = tinyCheckpoint([("model.norm.weight", [32], [Float](repeating: 1, count: 32))])
        defer { try? FileManager.default.removeItem(atPath: d2) }
        expectNoOutput(d2, contains: "no tensor for token_embd.weight")
    }

    /// config.json values that do not fit the tensors: refused before a byte is written, with the
    /// key and the numbers, instead of a file that crashes every engine that loads it.
    @Test(arguments: [
        (["head_dim": 15], "rope.dimension_count 15 is odd"),
        (["intermediate_size": 0], "llama.feed_forward_length = 0 is out of range"),
        (["num_key_value_heads": 2], "tensor blk.0.attn_k.weight has shape [32, 16], the hyper-parameters imply [32, 32]"),
        // 4 heads of 8: q keeps its 32 rows, but the one KV head now has 8 rows, not k's 16
        (["num_attention_heads": 4], "tensor blk.0.attn_k.weight has shape [32, 16], the hyper-parameters imply [32, 8]"),
        (["vocab_size": 32_000_000], "vocab_size 32000000 differs from the embedding's 300 rows"),
        (["hidden_size": 64], "tensor token_embd.weight has shape [32, 300], the hyper-parameters imply [64, 300]"),
        (["num_hidden_layers": 2], "missing tensor blk.1.attn_norm.weight"),
        (["num_attention_heads": 3], "tensor \"model.layers.0.self_attn.q_proj.weight\": 32 rows cannot be split into 3 rotary heads"),
    ] as [([String: Int], String)])
    func refusesConfigThatDoesNotFitTheTensors(change: [String: Int], message: String) throws {
        var cfg = minimalConfig
        for (k, v) in change { cfg[k] = v }
        let dir = tinyCheckpoint(minimalTensors(), config: cfg)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        expectNoOutput(dir, contains: message)
    }

    /// Q/K biases (Qwen2's tensors given to LlamaForCausalLM, or a llama with attention_bias) are
    /// permuted element by element as convert_hf_to_gguf's LlamaModel.permute does, not as rows.
    @Test func permutesQKBiasesOfALlama() throws {
        let qb = (0..<32).map(Float.init), kb = (0..<16).map { Float($0) + 100 }, vb = (0..<16).map { Float($0) + 200 }
        let dir = tinyCheckpoint(minimalTensors() + [("model.layers.0.self_attn.q_proj.bias", [32], qb),
                                                     ("model.layers.0.self_attn.k_proj.bias", [16], kb),
                                                     ("model.layers.0.self_attn.v_proj.bias", [16], vb)])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out.gguf"
        _ = try Converter(plan: ConversionPlan(directory: dir, outType: .f32)).run(outfile: out)
        let f = try GGUFFile(path: out)
        func values(_ name: String) throws -> [Float] {
            let t = try #require(f.tensor(named: name))
            #expect(t.type == .f32)
            let d = f.data(t)
            return (0..<t.ne[0]).map { d.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
        // per head of 16: rows [0, 8) and [8, 16) interleaved
        let perm16 = (0..<16).map { ($0 % 2) * 8 + $0 / 2 }
        #expect(try values("blk.0.attn_q.bias") == (0..<32).map { Float(($0 / 16) * 16 + perm16[$0 % 16]) })
        #expect(try values("blk.0.attn_k.bias") == perm16.map { Float($0) + 100 })
        #expect(try values("blk.0.attn_v.bias") == vb)
    }

    @Test func refusesTruncatedCheckpoint() throws {
        let dir = tinyCheckpoint(minimalTensors())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/model.safetensors"
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: p))
        try h.truncate(atOffset: 20_000)
        try h.close()
        expectNoOutput(dir, contains: "model.safetensors: tensor")
    }

    @Test func refusesBadConfig() {
        let dir = tinyCheckpoint(minimalTensors())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/config.json", contents: Data("{\"architectures\": [\"LlamaForCausalLM\"], ".utf8))
        expectNoOutput(dir, contains: "config.json: invalid JSON")
        try? FileManager.default.removeItem(atPath: dir + "/config.json")
        expectNoOutput(dir, contains: "not a model directory: no config.json")
    }
}

@Suite struct UnsupportedInputTests {
    @Test func refusesKnownButUnsupportedDtype() throws {
        let dir = tinyCheckpoint(minimalTensors())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Same file with one tensor declared I32 instead of F32 (same byte size).
        let p = dir + "/model.safetensors"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: p))
        let range = bytes.range(of: Data(#"{"dtype":"F32","shape":[32]"#.utf8))!
        bytes.replaceSubrange(range, with: Data(#"{"dtype":"I32","shape":[32]"#.utf8))
        try bytes.write(to: URL(fileURLWithPath: p))
        do {
            _ = try ConversionPlan(directory: dir, outType: .f16)
            Issue.record("expected an unsupported-dtype error")
        } catch {
            #expect(error is ConversionError)
            #expect("\(error)" == "\(p): tensor \"model.norm.weight\": unsupported dtype I32 (F32, F16 and BF16 are supported)")
        }
    }

    @Test func unknownPreTokenizerNamesTheWayOut() throws {
        let dir = tinyCheckpoint(minimalTensors())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.removeItem(atPath: dir + "/tokenizer.model")
        let vocab = (0..<300).map { "\"t\($0)\":\($0)" }.joined(separator: ",")
        let tj = #"{"version":"1.0","added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"BPE","vocab":{"# + vocab + #"},"merges":["t t1"]}}"#
        _ = FileManager.default.createFile(atPath: dir + "/tokenizer.json", contents: Data(tj.utf8))
        do {
            _ = try ConversionPlan(directory: dir, outType: .f16)
            Issue.record("expected an unknown pre-tokenizer error")
        } catch {
            #expect(error is ModelFileError)
            #expect("\(error)".contains("tokenizer.json: unrecognised pre-tokenizer (Whitespace); pass --pre-tokenizer NAME"))
        }
        // The override works and lands in the metadata.
        let plan = try ConversionPlan(directory: dir, outType: .f16, preTokenizer: "gpt-2")
        #expect(plan.metadata.first { $0.key == "tokenizer.ggml.pre" }?.value == .string("gpt-2"))
        #expect(plan.metadata.first { $0.key == "tokenizer.ggml.model" }?.value == .string("gpt2"))
        #expect(plan.metadata.first { $0.key == "tokenizer.ggml.merges" }?.value == .strings(["t t1"]))
    }
}

@Suite struct InspectionTests {
    @Test func describesGGUFAndSafetensors() throws {
        let g = try Inspection(path: fixture("golden/llama-tied-q8_0.gguf"))
        #expect(g.json["format"] == .string("gguf"))
        #expect(g.json["metadata"]?["general.architecture"] == .string("llama"))
        let byType = try #require(g.json["totals"]?["by_type"]?.arrayValue)
        let q8 = try #require(byType.first { $0["type"] == .string("q8_0") })
        #expect(q8["bpw"] == .double(8.5))
        #expect(g.text.contains("token_embd.weight"))
        let s = try Inspection(path: fixture("checkpoints/llama-untied-sharded"))
        #expect(s.json["format"] == .string("safetensors"))
        #expect(s.json["files"]?.arrayValue?.count == 2)
        #expect(s.text.contains("F16"))
    }
}
