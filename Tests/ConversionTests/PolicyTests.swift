import Conversion
import Foundation
import GGMLCore
import StrictJSON
import Testing

/// Replays llama-quantize's type choices (recorded by Fixtures/policy/make_policy_golden.sh with
/// `llama-quantize --dry-run`) for every file type on two models, and on SmolLM2 with its imatrix
/// (`smollm2+imatrix`: the mixes that read has_imatrix).
@Suite struct PolicyTests {
    static let doc: JSONValue = {
        let data = FileManager.default.contents(atPath: fixture("policy/llama-quantize-types.json"))!
        return try! JSONParser.parse(data)
    }()

    static let models: [(String, QuantizationPolicy.Model)] = [
        ("smollm2", .init(architecture: "llama", blockCount: 30, headCount: 9, headCountKV: 3)),
        ("smollm2+imatrix", .init(architecture: "llama", blockCount: 30, headCount: 9, headCountKV: 3)),
        ("synth", .init(architecture: "llama", blockCount: 8, headCount: 4, headCountKV: 1)),
    ]

    static var cases: [(String, LlamaFileType)] {
        models.flatMap { m in LlamaFileType.allCases.map { (m.0, $0) } }
    }

    @Test(arguments: cases)
    func sameTypesAsLlamaQuantize(_ c: (String, LlamaFileType)) throws {
        let (modelName, fileType) = c
        let model = try #require(Self.models.first { $0.0 == modelName }?.1)
        let entry = try #require(Self.doc[modelName])
        let tensors = try #require(entry["tensors"]?.arrayValue)
        let names = tensors.map { $0.arrayValue![0].stringValue! }
        let ne = tensors.map { $0.arrayValue![1].arrayValue!.map { $0.intValue! } }
        let expected = try #require(entry["types"]?[fileType.name]?.objectValue)
        // The recorded order is llama-quantize's; our ordering must reproduce it from any order.
        #expect(names.sorted(by: QuantizationPolicy.fileOrder) == names)
        var options = QuantizationPolicy.Options()
        options.hasImatrix = modelName.hasSuffix("+imatrix")
        let policy = QuantizationPolicy(fileType: fileType, model: model, options: options)
        let got = try policy.assignTypes(names: names, ne: ne, current: names.map { _ in .f32 })
        for (n, t) in zip(names, got) {
            #expect(t.name == expected[n]?.stringValue, "\(modelName) \(fileType.name): \(n)")
        }
    }

    @Test func overridesAndPure() throws {
        let names = ["output.weight", "token_embd.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight", "blk.0.attn_norm.weight"]
        let ne = [[256, 512], [256, 512], [256, 64], [512, 256], [256]]
        var o = QuantizationPolicy.Options()
        o.tensorTypes = [("ATTN_V", .q8_0)]
        o.outputTensorType = .q4_0
        o.tokenEmbeddingType = .q5_1
        let model = QuantizationPolicy.Model(architecture: "llama", blockCount: 1, headCount: 4, headCountKV: 1)
        let t = try QuantizationPolicy(fileType: .mostlyQ4_K_M, model: model, options: o)
            .assignTypes(names: names, ne: ne, current: names.map { _ in .f32 })
        #expect(t == [.q4_0, .q5_1, .q8_0, .q6_K, .f32])
        var p = QuantizationPolicy.Options()
        p.pure = true
        let pure = try QuantizationPolicy(fileType: .mostlyQ4_K_M, model: model, options: p)
            .assignTypes(names: names, ne: ne, current: names.map { _ in .f32 })
        #expect(pure == [.q4_K, .q4_K, .q4_K, .q4_K, .f32])
    }
}
