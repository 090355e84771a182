import Conversion
import Foundation
import MappedIO
import GGUFWriter
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
    let cfg = config ?? ["architectures": ["LlamaForCausalLM"], "hidden_size": 32, "num_hidden_layers": 1,
                         "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 64,
                         "rms_norm_eps": 1e-5, "vocab_size": 300, "max_position_embeddings": 128]
    _ = FileManager.default.createFile(atPath: dir + "/config.json", contents: try! JSONSerialization.data(withJSONObject: cfg))
    writeSafetensors(dir + "/model.safetensors", tensors)
    return dir
}

func minimalTensors(embedding: [Float]? = nil) -> [(String, [Int], [Float])] {
    [("model.embed_tokens.weight", [300, 32], embedding ?? (0..<9600).map { Float($0 % 17) / 17 }),
     ("model.norm.weight", [32], [Float](repeating: 1, count: 32))]
}

@Suite struct HostileInputTests {
    func expectNoOutput(_ dir: String, outType: OutType = .q8_0, contains text: String) {
        let out = dir + "/out.gguf"
        do {
            let plan = try ConversionPlan(directory: dir, outType: outType)
            _ = try Converter(plan: plan).run(outfile: out)
            Issue.record("expected an error containing \(text)")
        } catch {
            #expect(error.description.contains(text), "\(error)")
            #expect(!error.description.contains("\n"))
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        #expect(!left.contains { $0.hasSuffix(".gguf") || $0.contains(".tmp-") }, "left behind: \(left)")
    }

    @Test func converts_minimalCheckpoint() throws {
        let dir = tinyCheckpoint(minimalTensors())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try ConversionPlan(directory: dir, outType: .q8_0)
        let s = try Converter(plan: plan).run(outfile: dir + "/ok.gguf")
        #expect(s.tensorCount == 2)
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
        expectNoOutput(dir, contains: "config.json: missing")
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
            #expect(error.description == "\(p): tensor \"model.norm.weight\": unsupported dtype I32 (F32, F16 and BF16 are supported)")
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
            #expect(error.description.contains("tokenizer.json: unrecognised pre-tokenizer (Whitespace); pass --pre-tokenizer NAME"))
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
