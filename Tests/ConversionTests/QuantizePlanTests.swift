import Conversion
import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import Testing

@Suite struct QuantizePlanTests {
    /// llama-quantize refuses quantized input unless --allow-requantize; so do we.
    @Test func refusesRequantizeUnlessAllowed() throws {
        let f = try GGUFFile(path: fixture("golden/llama-tied-q8_0.gguf"))
        let model = try QuantizePlan.model(from: f.metadata, path: f.path)
        #expect(model.blockCount == 2 && model.headCount == 4 && model.headCountKV == 2)
        do {
            _ = try QuantizePlan(base: GGUFSourcePlan(f), fileType: .mostlyQ4_0, model: model, path: f.path)
            Issue.record("expected a refusal")
        } catch {
            #expect(error as? ConversionError == .requantize(path: f.path, name: "blk.0.attn_k.weight", type: .q8_0), "\(error)")
        }
        let p = try QuantizePlan(base: GGUFSourcePlan(f), fileType: .mostlyQ4_0, model: model, allowRequantize: true, path: f.path)
        #expect(p.metadata.suffix(2).map(\.key) == ["general.quantization_version", "general.file_type"])
        #expect(p.metadata.last?.value == .uint32(LlamaFileType.mostlyQ4_0.rawValue))
        // Loader order: non-layer tensors first, then by layer number.
        #expect(p.tensors.prefix(2).map(\.name) == ["output_norm.weight", "token_embd.weight"])
    }

    /// The policy divides layer counters by the block count: absurd counts are refused up front.
    @Test func refusesAbsurdCountsForThePolicy() throws {
        let base: [(key: String, value: GGUFValue)] = [("general.architecture", .string("llama")), ("llama.block_count", .uint32(2)),
                                                        ("llama.attention.head_count", .uint32(4))]
        #expect(try QuantizePlan.model(from: base, path: "m.gguf").blockCount == 2)
        for (k, v) in [("llama.block_count", GGUFValue.uint64(.max)), ("llama.block_count", .int32(-1)),
                       ("llama.attention.head_count_kv", .uint32(1 << 30)), ("llama.expert_count", .int64(.max))] {
            var meta = base.filter { $0.key != k }
            meta.append((k, v))
            #expect(throws: ConversionError.metadata(path: "m.gguf", detail: "\(k) is out of range " + (k.hasSuffix("block_count") ? "0...4096" : "0...16384"))) {
                _ = try QuantizePlan.model(from: meta, path: "m.gguf")
            }
        }
    }

    @Test func requantizedFixtureRoundTripsThroughTheWriter() throws {
        let f = try GGUFFile(path: fixture("golden/mistral-f32.gguf"))
        let model = try QuantizePlan.model(from: f.metadata, path: f.path)
        let p = try QuantizePlan(base: GGUFSourcePlan(f), fileType: .mostlyQ8_0, model: model, path: f.path)
        let out = tempOutput("q8.gguf")
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        _ = try Converter(plan: p, threads: 2).run(outfile: out)
        let g = try GGUFFile(path: out)
        // mistral's ffn rows are 48 wide: not a multiple of 32, so Q8_0 falls back to F16 there.
        #expect(g.tensor(named: "blk.0.ffn_down.weight")?.type == .f16)
        #expect(g.tensor(named: "blk.0.attn_q.weight")?.type == .q8_0)
        #expect(g.tensor(named: "output_norm.weight")?.type == .f32)
    }
}
