import Conversion
import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import Quantizers
import StrictJSON
import Testing

/// A base plan for QuantizePlan: given metadata and tensors (data never read).
private struct ListPlan: OutputPlan {
    var metadata: [(key: String, value: GGUFValue)]
    var tensors: [PlannedTensor]

    init(metadata: [(key: String, value: GGUFValue)] = ListPlan.llamaKV, tensors: [(String, [Int])]) {
        self.metadata = metadata
        self.tensors = tensors.map { PlannedTensor(name: $0.0, sourceName: $0.0, ne: $0.1, type: .f32, source: .generated([])) }
    }

    static let llamaKV: [(key: String, value: GGUFValue)] = [
        ("general.architecture", .string("llama")), ("llama.block_count", .uint32(1)),
        ("llama.attention.head_count", .uint32(4)), ("llama.attention.head_count_kv", .uint32(1)),
        ("general.file_type", .uint32(0)), ("general.quantization_version", .uint32(2)),
    ]
}

private let smallTensors: [(String, [Int])] = [
    ("token_embd.weight", [64, 32]), ("output_norm.weight", [64]),
    ("blk.0.attn_q.weight", [64, 64]), ("blk.0.attn_norm.weight", [64]), ("blk.0.ffn_down.weight", [128, 64]),
]

private func plan(_ base: ListPlan, _ ft: LlamaFileType, _ imatrix: ImatrixData?) throws -> QuantizePlan {
    let model = try QuantizePlan.model(from: base.metadata, path: "in.gguf")
    return try QuantizePlan(base: base, fileType: ft, model: model, imatrix: imatrix, path: "in.gguf")
}

private func plan(_ ft: LlamaFileType, _ imatrix: ImatrixData?) throws -> QuantizePlan {
    try plan(ListPlan(tensors: smallTensors), ft, imatrix)
}

private func ones(_ n: Int) -> [Float] { [Float](repeating: 1, count: n) }

@Suite struct ImatrixQuantizeTests {
    /// With an imatrix, llama-quantize's policy takes its imatrix branches (Q4_0/Q5_0 ffn_down of the
    /// first n/8 layers as Q4_1/Q5_1, IQ4_NL's not as Q5_K): every file type's choices on SmolLM2
    /// against `llama-quantize --dry-run --imatrix` (recorded by scripts/make-smollm2-reference.sh).
    @Test func typesAsLlamaQuantizeDryRunWithImatrix() throws {
        let doc = try JSONParser.parse(FileManager.default.contents(atPath: fixture("smollm2/llama-quantize-types-imatrix.json"))!)
        let tensors = try #require(doc["tensors"]?.arrayValue).map { ($0.arrayValue![0].stringValue!, $0.arrayValue![1].arrayValue!.map { $0.intValue! }) }
        let smol: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("llama.block_count", .uint32(30)),
            ("llama.attention.head_count", .uint32(9)), ("llama.attention.head_count_kv", .uint32(3)),
        ]
        let base = ListPlan(metadata: smol, tensors: tensors)
        // Any entry at all switches the branches; its data only matters for the bytes.
        let imatrix = ImatrixData(weights: ["blk.0.attn_q.weight": ones(576)], file: "imatrix.gguf")
        var checked = 0
        for ft in LlamaFileType.allCases {
            guard let expected = doc["types"]?[ft.name]?.arrayValue?.map({ $0.stringValue! }) else { continue }
            let p = try plan(base, ft, imatrix)
            #expect(p.tensors.map(\.name) == tensors.map(\.0))
            #expect(p.tensors.map(\.type.name) == expected, "\(ft.name)")
            // The same choices straight from the policy with hasImatrix.
            var o = QuantizationPolicy.Options()
            o.hasImatrix = true
            let direct = try QuantizationPolicy(fileType: ft, model: QuantizePlan.model(from: smol, path: "x"), options: o)
                .assignTypes(names: tensors.map(\.0), ne: tensors.map(\.1), current: tensors.map { _ in .f32 })
            #expect(direct.map(\.name) == expected, "\(ft.name)")
            checked += 1
        }
        #expect(checked == 18)
    }

    @Test func imatrixChangesOnlyTheImatrixBranches() throws {
        let tensors = (0..<8).flatMap { i in [("blk.\(i).ffn_down.weight", [256, 64]), ("blk.\(i).attn_v.weight", [256, 64])] }
            + [("token_embd.weight", [256, 32])]
        var kv = ListPlan.llamaKV
        kv[1] = ("llama.block_count", .uint32(8))
        let base = ListPlan(metadata: kv, tensors: tensors)
        let im = ImatrixData(weights: ["blk.0.ffn_down.weight": ones(256)], file: "i.gguf")
        func types(_ ft: LlamaFileType, _ im: ImatrixData?) throws -> [String: GGMLType] {
            Dictionary(uniqueKeysWithValues: try plan(base, ft, im).tensors.map { ($0.name, $0.type) })
        }
        #expect(try types(.mostlyQ4_0, nil)["blk.0.ffn_down.weight"] == .q4_0)
        #expect(try types(.mostlyQ4_0, im)["blk.0.ffn_down.weight"] == .q4_1)
        #expect(try types(.mostlyQ4_0, im)["blk.1.ffn_down.weight"] == .q4_0)
        #expect(try types(.mostlyQ5_0, im)["blk.0.ffn_down.weight"] == .q5_1)
        #expect(try types(.mostlyIQ4_NL, nil)["blk.0.ffn_down.weight"] == .q5_K)
        #expect(try types(.mostlyIQ4_NL, im)["blk.0.ffn_down.weight"] == .iq4_nl)
        // GQA 4: attn_v goes to Q5_K in IQ4_NL with or without.
        #expect(try types(.mostlyIQ4_NL, im)["blk.0.attn_v.weight"] == .q5_K)
        // Entries filtered away entirely: llama-quantize then passes no imatrix at all.
        let none = im.filtered(include: ["attn_k"], exclude: [])
        #expect(none.weights.isEmpty)
        #expect(try types(.mostlyQ4_0, none)["blk.0.ffn_down.weight"] == .q4_0)
        #expect(try plan(base, .mostlyQ4_0, none).metadata.allSatisfy { !$0.key.hasPrefix("quantize.") })
    }

    /// quantize.imatrix.* are set after general.file_type, in llama-quantize's order, each with
    /// gguf_set_val (an existing key moves to the end); entries_count counts every entry kept.
    @Test func metadataKeysAsLlamaQuantize() throws {
        var kv = ListPlan.llamaKV
        kv.insert(("quantize.imatrix.file", .string("old.gguf")), at: 1)
        kv.insert(("quantize.imatrix.chunks_count", .uint32(99)), at: 1)
        let base = ListPlan(metadata: kv, tensors: smallTensors)
        let im = ImatrixData(weights: ["blk.0.attn_q.weight": ones(64), "blk.0.ffn_down.weight": ones(128), "not.in.model": [2]],
                             file: "cal/imatrix.gguf", datasets: ["wiki.txt", "more.txt"], chunkCount: 10)
        let p = try plan(base, .mostlyQ4_0, im)
        #expect(p.metadata.suffix(6).map(\.key) == [
            "general.quantization_version", "general.file_type", "quantize.imatrix.file", "quantize.imatrix.dataset",
            "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count",
        ])
        #expect(p.metadata.filter { $0.key.hasPrefix("quantize.") }.map(\.value) == [
            .string("cal/imatrix.gguf"), .string("wiki.txt"), .uint32(3), .uint32(10),
        ])
        #expect(p.metadata.count == kv.count + 2)

        // No dataset, no chunk count (legacy files may have neither): those keys are not set, and an
        // existing one stays where it was.
        let bare = try plan(base, .mostlyQ4_0, ImatrixData(weights: im.weights, file: "x.dat", datasets: [], chunkCount: 0))
        #expect(bare.metadata.map(\.key).filter { $0.hasPrefix("quantize.") } == [
            "quantize.imatrix.chunks_count", "quantize.imatrix.file", "quantize.imatrix.entries_count",
        ])
        #expect(bare.metadata.first { $0.key == "quantize.imatrix.chunks_count" }?.value == .uint32(99))

        // val_str is char[128]: llama-quantize keeps 127 bytes of the path.
        let long = String(repeating: "d/", count: 100) + "imatrix.gguf"
        let t = try plan(base, .mostlyQ4_0, ImatrixData(weights: im.weights, file: long, datasets: [String(repeating: "x", count: 126) + "é"]))
        #expect(t.metadata.first { $0.key == "quantize.imatrix.file" }?.value == .string(String(long.prefix(127))))
        // A cut through a two-byte character backs off to the character before it.
        #expect(t.metadata.first { $0.key == "quantize.imatrix.dataset" }?.value == .string(String(repeating: "x", count: 126)))
    }

    /// llama_model_quantize_impl's lookup: only for tensors that change type; a missing entry
    /// quantizes without; a size other than ne0·ne2 is an error, except for the token embedding.
    @Test func lookupRules() throws {
        let im = ImatrixData(weights: [
            "blk.0.attn_q.weight": (0..<64).map(Float.init),
            "token_embd.weight": ones(5),          // wrong size: skipped for the embedding
            "blk.0.attn_norm.weight": ones(3),     // wrong size, but the norm stays F32: never looked up
        ], file: "i.gguf")
        let p = try plan(.mostlyQ4_0, im)
        let byName = Dictionary(uniqueKeysWithValues: p.tensors.map { ($0.name, $0) })
        #expect(byName["blk.0.attn_q.weight"]?.importance == (0..<64).map(Float.init))
        #expect(byName["token_embd.weight"]?.importance == nil)
        #expect(byName["blk.0.ffn_down.weight"]?.importance == nil)
        #expect(byName["blk.0.attn_norm.weight"]?.importance == nil)
        #expect(p.tensorsWithoutImatrix == ["token_embd.weight", "blk.0.ffn_down.weight"])

        var bad = im
        bad.weights["blk.0.ffn_down.weight"] = ones(64)
        #expect(throws: ConversionError.imatrix(path: "i.gguf", detail: "imatrix size 64 is different from tensor size 128 for blk.0.ffn_down.weight")) {
            try plan(.mostlyQ4_0, bad)
        }
        var nonFinite = im
        nonFinite.weights["blk.0.attn_q.weight"]![3] = .infinity
        do {
            _ = try plan(.mostlyQ4_0, nonFinite)
            Issue.record("expected a refusal")
        } catch let error as ConversionError {
            #expect(error.path == "i.gguf")
            #expect(error.fault.contains("imatrix contains non-finite value inf"))
        } catch {
            Issue.record("\(type(of: error)): \(error)")
        }
    }

    /// prepare_imatrix's --include-weights / --exclude-weights: substring matches on entry names.
    @Test func includeExcludeFilters() {
        let im = ImatrixData(weights: ["blk.0.attn_q.weight": [1], "blk.0.attn_k.weight": [1], "blk.1.ffn_up.weight": [1]], file: "f")
        #expect(Set(im.filtered(include: [], exclude: ["attn"]).weights.keys) == ["blk.1.ffn_up.weight"])
        #expect(Set(im.filtered(include: ["attn_q", "blk.1"], exclude: []).weights.keys) == ["blk.0.attn_q.weight", "blk.1.ffn_up.weight"])
        #expect(im.filtered(include: [""], exclude: []).weights.count == 3)
        #expect(im.filtered(include: [], exclude: []).weights.count == 3)
    }

    /// The writer hands each row its matrix's slice of the importance vector (`imatrix +
    /// (row / ne1) · ne0`), and the bytes are ggml_quantize_chunk's for those rows.
    @Test(arguments: [GGMLType.q4_0, .q5_1, .iq4_nl, .q4_K, .q6_K])
    func converterQuantizesEachMatrixWithItsSlice(_ type: GGMLType) throws {
        let dir = (tempOutput("x") as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ne0 = 256, ne1 = 3, ne2 = 2
        var rng = SystemRandomNumberGenerator()
        let x = (0..<(ne0 * ne1 * ne2)).map { _ in Float.random(in: -1...1, using: &rng) * (Bool.random() ? 4 : 0.25) }
        let w = (0..<(ne0 * ne2)).map { _ in Float.random(in: 0.01...5, using: &rng) }
        let src = try writeF32GGUF(dir + "/src.gguf", name: "blk.0.ffn_up_exps.weight", ne: [ne0, ne1, ne2], data: x)
        let info = src.tensors[0]
        let t = PlannedTensor(name: info.name, sourceName: info.name, ne: info.ne, type: type, source: .gguf(src, info), importance: w)
        let out = dir + "/out.gguf"
        _ = try Converter(plan: ListPlan(metadata: [], tensors: []).with([t]), threads: 2).run(outfile: out)
        let g = try GGUFFile(path: out)
        let got = [UInt8](g.data(g.tensors[0]))

        let q = try #require(Quantizers.quantizer(for: type))
        let rowBytes = type.rowSize(ne0)!
        var expected = [UInt8](repeating: 0, count: rowBytes * ne1 * ne2)
        var unweighted = expected
        for e in 0..<ne2 {
            x[(e * ne0 * ne1)..<((e + 1) * ne0 * ne1)].withUnsafeBufferPointer { s in
                w[(e * ne0)..<((e + 1) * ne0)].withUnsafeBufferPointer { iw in
                    expected.withUnsafeMutableBytes { d in
                        q.quantizeRows(s, rowLength: ne0, importance: iw,
                                       into: UnsafeMutableRawBufferPointer(rebasing: d[(e * ne1 * rowBytes)...]))
                    }
                    unweighted.withUnsafeMutableBytes { d in
                        q.quantizeRows(s, rowLength: ne0, importance: nil,
                                       into: UnsafeMutableRawBufferPointer(rebasing: d[(e * ne1 * rowBytes)...]))
                    }
                }
            }
        }
        #expect(got == expected)
        #expect(got != unweighted)
    }

    @Test func convertHFTypesTakeNoImatrix() {
        let im = ImatrixData(weights: ["a": [1]], file: "i.gguf")
        for name in ["f32", "f16", "bf16", "q8_0"] {
            do {
                _ = try ConvertTarget(name: name)!.plan(directory: fixture("checkpoints/llama-tied"), preTokenizer: nil, imatrix: im)
                Issue.record("expected a refusal for \(name)")
            } catch let error as ConversionError {
                #expect(error.path == "i.gguf" && error.fault.contains("llama-quantize file types"))
            } catch {
                Issue.record("\(type(of: error)): \(error)")
            }
        }
        #expect(ConvertTarget(name: "q4_0")!.isLlamaQuantize && ConvertTarget(name: "nf4")!.isLlamaQuantize)
        #expect(!ConvertTarget(name: "q8_0")!.isLlamaQuantize)
    }

    /// tensor_requires_imatrix: the 1- and 2-bit types and iq3_xxs are refused without an imatrix
    /// (before anything is written), and with one that lacks the tensor's entry; the embedding and
    /// output are exempt, and IQ3_S / IQ3_M / IQ4_XS never need one.
    @Test func lowBitTypesRequireAnImatrix() throws {
        let t: [(String, [Int])] = [("token_embd.weight", [256, 32]), ("blk.0.attn_q.weight", [256, 256]),
                                    ("blk.0.ffn_down.weight", [512, 256])]
        for ft in [LlamaFileType.mostlyIQ2_XXS, .mostlyIQ2_XS, .mostlyIQ2_S, .mostlyIQ2_M, .mostlyIQ1_S, .mostlyIQ1_M] {
            #expect(throws: ConversionError.imatrixRequired(path: "in.gguf", name: "blk.0.attn_q.weight",
                                                            type: QuantizationPolicy.defaultType(ft))) {
                try plan(ListPlan(tensors: t), ft, nil)
            }
            let partial = ImatrixData(weights: ["blk.0.attn_q.weight": ones(256)], file: "i.gguf")
            #expect(throws: ConversionError.self) { try plan(ListPlan(tensors: t), ft, partial) }
            let full = ImatrixData(weights: ["blk.0.attn_q.weight": ones(256), "blk.0.ffn_down.weight": ones(512)], file: "i.gguf")
            #expect(try plan(ListPlan(tensors: t), ft, full).tensors.count == 3)
        }
        let missing = ImatrixData(weights: ["blk.0.attn_q.weight": ones(256)], file: "i.gguf")
        do {
            _ = try plan(ListPlan(tensors: t), .mostlyIQ1_S, missing)
            Issue.record("expected a refusal")
        } catch let e as ConversionError {
            #expect(e == .imatrixMissing(path: "i.gguf", name: "blk.0.ffn_down.weight", type: .iq1_s))
            #expect(e.fault.hasPrefix("missing importance matrix for tensor blk.0.ffn_down.weight in a very low-bit quantization"))
        }
        #expect(ConversionError.imatrixRequired(path: "in.gguf", name: "blk.0.attn_q.weight", type: .iq2_xxs).fault
                    .hasPrefix("this quantization requires an importance matrix"))
        for ft in [LlamaFileType.mostlyIQ3_S, .mostlyIQ3_M, .mostlyIQ4_XS] {
            #expect(try plan(ListPlan(tensors: t), ft, nil).tensors.count == 3, "\(ft.name)")
        }
        // IQ3_XS and IQ3_XXS put attn_q in iq3_xxs / iq2_s.
        #expect(throws: ConversionError.imatrixRequired(path: "in.gguf", name: "blk.0.attn_q.weight", type: .iq3_xxs)) {
            try plan(ListPlan(tensors: t), .mostlyIQ3_XS, nil)
        }
        #expect(!QuantizationPolicy.requiresImatrix(name: "token_embd.weight", type: .iq2_xxs))
        #expect(!QuantizationPolicy.requiresImatrix(name: "output.weight", type: .iq1_s))
        #expect(QuantizationPolicy.requiresImatrix(name: "blk.3.ffn_up.weight", type: .iq3_xxs))
    }
}

private extension ListPlan {
    func with(_ t: [PlannedTensor]) -> ListPlan {
        var p = self
        p.tensors = t
        return p
    }
}

private func writeF32GGUF(_ path: String, name: String, ne: [Int], data: [Float]) throws -> GGUFFile {
    let w = GGUFFileWriter()
    w.add("general.architecture", .string("llama"))
    _ = w.addTensor(name: name, ne: ne, type: .f32)
    try w.begin(path: path)
    try data.withUnsafeBytes { try w.writeTensorData(0, $0) }
    try w.commit()
    return try GGUFFile(path: path)
}
