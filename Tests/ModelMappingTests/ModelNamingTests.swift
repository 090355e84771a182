import Foundation
import GGUFWriter
import ModelMapping
import StrictJSON
import Testing

// Every expected value below was produced by the Python reference (llama.cpp's vendored gguf-py):
//
//   PYTHONPATH=/work/ref/llama/src/gguf-py python3 -c '
//   import gguf; from pathlib import Path; M = gguf.Metadata
//   def naming(dirname, total, hf={}):
//       m = M.apply_metadata_heuristic(M(), {}, hf, Path("/nonexistent") / dirname, total)
//       if m.name is None: m.name = dirname
//       if m.size_label is None and total > 0: m.size_label = gguf.size_label(total, total, 0, 0)
//       return m.name, m.organization, m.basename, m.finetune, m.version, m.size_label, [
//           gguf.naming_convention(m.name, m.basename, m.finetune, m.version, m.size_label, t) + ".gguf"
//           for t in ["Q8_0", "BF16", "F16", "F32"]]
//   print(naming("SmolLM2-135M-Instruct", 134515008))  # ... one line per case below
//   '

private func render(_ kv: [(String, GGUFValue)]) -> [String] {
    kv.map { key, value in
        switch value {
        case .string(let s): return "\(key)=\(s)"
        case .int32(let i): return "\(key)=i32:\(i)"
        case .uint32(let u): return "\(key)=u32:\(u)"
        case .float32(let f): return "\(key)=f32:0x\(String(f.bitPattern, radix: 16))"
        case .array(let t, let a): return "\(key)=[\(t)]" + a.map { $0.stringValue ?? "?" }.joined(separator: ",")
        default: return "\(key)=?"
        }
    }
}

private struct Case: Sendable, CustomStringConvertible {
    let dir: String
    let total: Int
    let name: String
    let basename: String?
    let finetune: String?
    let version: String?
    let sizeLabel: String?
    /// the Q8_0 default file name; BF16/F16/F32 only differ in the suffix
    let q8File: String
    var description: String { dir }
}

// naming(dir, total) for each row, see the header.
private let directoryCases: [Case] = [
    Case(dir: "smol", total: 134_515_008, name: "Smol", basename: nil, finetune: nil, version: nil,
         sizeLabel: "135M", q8File: "Smol-135M-Q8_0.gguf"),
    Case(dir: "SmolLM2-135M-Instruct", total: 134_515_008, name: "SmolLM2 135M Instruct", basename: "SmolLM2",
         finetune: "Instruct", version: nil, sizeLabel: "135M", q8File: "SmolLM2-135M-Instruct-Q8_0.gguf"),
    // a size far from the real parameter count is taken for a context length: lower-cased, finetune
    Case(dir: "SmolLM2-135M-Instruct", total: 7_241_732_096, name: "SmolLM2 135M Instruct", basename: "SmolLM2",
         finetune: "135m-Instruct", version: nil, sizeLabel: "7.2B", q8File: "SmolLM2-7.2B-135m-Instruct-Q8_0.gguf"),
    Case(dir: "Meta-Llama-3.1-8B-Instruct", total: 8_030_261_248, name: "Meta Llama 3.1 8B Instruct",
         basename: "Meta-Llama-3.1", finetune: "Instruct", version: nil, sizeLabel: "8B",
         q8File: "Meta-Llama-3.1-8B-Instruct-Q8_0.gguf"),
    Case(dir: "Qwen2-0.5B", total: 494_032_768, name: "Qwen2 0.5B", basename: "Qwen2", finetune: nil, version: nil,
         sizeLabel: "0.5B", q8File: "Qwen2-0.5B-Q8_0.gguf"),
    Case(dir: "Mistral-7B-v0.1", total: 7_241_732_096, name: "Mistral 7B v0.1", basename: "Mistral", finetune: nil,
         version: "v0.1", sizeLabel: "7B", q8File: "Mistral-7B-v0.1-Q8_0.gguf"),
    Case(dir: "Mistral-7B-v0.1", total: 0, name: "Mistral 7B v0.1", basename: "Mistral", finetune: nil,
         version: "v0.1", sizeLabel: "7B", q8File: "Mistral-7B-v0.1-Q8_0.gguf"),
    Case(dir: "tiny-llama-tied", total: 94528, name: "Tiny Llama Tied", basename: nil, finetune: nil, version: nil,
         sizeLabel: "95K", q8File: "Tiny-Llama-Tied-95K-Q8_0.gguf"),
    Case(dir: "TinyLlama-1.1B-Chat-v1.0", total: 1_100_048_384, name: "TinyLlama 1.1B Chat v1.0",
         basename: "TinyLlama", finetune: "Chat", version: "v1.0", sizeLabel: "1.1B",
         q8File: "TinyLlama-1.1B-Chat-v1.0-Q8_0.gguf"),
    // the quant type part is annotated (and upper-cased) but used nowhere
    Case(dir: "foo-7B-Q4_K_M", total: 7_241_732_096, name: "Foo 7B Q4_K_M", basename: "foo", finetune: nil,
         version: nil, sizeLabel: "7B", q8File: "foo-7B-Q8_0.gguf"),
    // smol with no tensors: no size label at all (prepare_metadata only computes one for total > 0)
    Case(dir: "smol", total: 0, name: "Smol", basename: nil, finetune: nil, version: nil, sizeLabel: nil,
         q8File: "Smol-Q8_0.gguf"),
]

@Suite struct ModelNamingTests {
    @Test(arguments: directoryCases)
    fileprivate func directoryName(_ c: Case) throws {
        let m = try ModelNaming.infer(modelDirectory: "/nonexistent/\(c.dir)", hfConfig: nil, totalParams: c.total,
                                      sharedParams: c.total)
        #expect(m.name == c.name)
        #expect(m.organization == nil)
        #expect(m.basename == c.basename)
        #expect(m.finetune == c.finetune)
        #expect(m.version == c.version)
        #expect(m.sizeLabel == c.sizeLabel)
        #expect(ModelNaming.defaultFileName(naming: m, fileTypeName: "Q8_0") == c.q8File)
        let stem = String(c.q8File.dropLast("Q8_0.gguf".count))
        #expect(ModelNaming.defaultFileName(naming: m, fileTypeName: "BF16") == stem + "BF16.gguf")
        #expect(ModelNaming.defaultFileName(naming: m, fileTypeName: "F16") == stem + "F16.gguf")
        #expect(ModelNaming.defaultFileName(naming: m, fileTypeName: "F32") == stem + "F32.gguf")
        // lower-case file type names are upper-cased like naming_convention does
        #expect(ModelNaming.defaultFileName(naming: m, fileTypeName: "bf16") == stem + "BF16.gguf")
    }

    // naming("some-dir", 1235814400, {"_name_or_path": "org/Model-1B"})
    // -> ('Model 1B', 'Org', 'Model', None, None, '1B', ['Model-1B-Q8_0.gguf', ...])
    @Test func nameOrPathInConfig() throws {
        let config = try JSONParser.parse(#"{"_name_or_path": "org/Model-1B", "model_type": "llama"}"#)
        let m = try ModelNaming.infer(modelDirectory: "/nonexistent/some-dir", hfConfig: config,
                                      totalParams: 1_235_814_400, sharedParams: 1_235_814_400)
        #expect(m.name == "Model 1B")
        #expect(m.organization == "Org")
        #expect(m.basename == "Model")
        #expect(m.finetune == nil)
        #expect(m.version == nil)
        #expect(m.sizeLabel == "1B")
        #expect(ModelNaming.defaultFileName(naming: m, fileTypeName: "F16") == "Model-1B-F16.gguf")
        #expect(render(m.ggufKeys()) == [
            "general.name=Model 1B", "general.organization=Org", "general.basename=Model", "general.size_label=1B",
        ])
        // a path with more than one "/" is a local path, not a model id: the directory name is used
        let local = try JSONParser.parse(#"{"_name_or_path": "/home/me/models/Foo-7B"}"#)
        let n = try ModelNaming.infer(modelDirectory: "/nonexistent/tiny-llama-tied", hfConfig: local, totalParams: 94528)
        #expect(n.name == "Tiny Llama Tied")
    }

    // for t in [134515008, 1100048384, 7241732096, 70553706496, 70000000000, 0, 999, 10**12, 15*10**11]:
    //     print(gguf.size_label(t, t, 0, 0))
    // print(gguf.size_label(46702792704, 1600000000, 5600000000, 8))
    @Test func sizeLabels() {
        #expect(ModelNaming.sizeLabel(totalParams: 134_515_008) == "135M")
        #expect(ModelNaming.sizeLabel(totalParams: 1_100_048_384) == "1.1B")
        #expect(ModelNaming.sizeLabel(totalParams: 7_241_732_096) == "7.2B")
        #expect(ModelNaming.sizeLabel(totalParams: 70_553_706_496) == "71B")
        #expect(ModelNaming.sizeLabel(totalParams: 70_000_000_000) == "70B")
        #expect(ModelNaming.sizeLabel(totalParams: 0) == "0.00K")
        #expect(ModelNaming.sizeLabel(totalParams: 999) == "1.0K")
        #expect(ModelNaming.sizeLabel(totalParams: 1_000_000_000_000) == "1000B")
        #expect(ModelNaming.sizeLabel(totalParams: 1_500_000_000_000) == "1.5T")
        #expect(ModelNaming.sizeLabel(totalParams: 134_515_008, sharedParams: 134_515_008, expertCount: 0) == "135M")
        #expect(ModelNaming.sizeLabel(totalParams: 46_702_792_704, sharedParams: 1_600_000_000,
                                      expertParams: 5_600_000_000, expertCount: 8) == "8x7.2B")
    }

    // M.id_to_title("meta-llama"), M.id_to_title("HuggingFaceTB"), M.id_to_title("llama-3.1-8b-instruct"),
    // M.id_to_title("v2-beta") -> Meta Llama | HuggingFaceTB | Llama 3.1 8b Instruct | v2 Beta
    @Test func titles() {
        #expect(ModelNaming.idToTitle("meta-llama") == "Meta Llama")
        #expect(ModelNaming.idToTitle("HuggingFaceTB") == "HuggingFaceTB")
        #expect(ModelNaming.idToTitle("llama-3.1-8b-instruct") == "Llama 3.1 8b Instruct")
        #expect(ModelNaming.idToTitle("v2-beta") == "v2 Beta")
    }

    // M.get_model_id_components("Mixtral-8x7B-Instruct-v0.1", 46702792704)
    //   -> ('Mixtral-8x7B-Instruct-v0.1', None, 'Mixtral', 'Instruct', 'v0.1', '8x7B')
    // M.get_model_id_components("bloom-7b1", 7069016064) -> ('bloom-7b1', None, 'bloom', None, None, '7.1B')
    // M.get_model_id_components("Qwen3-30B-A3B", 30532122624)
    //   -> ('Qwen3-30B-A3B', None, 'Qwen3', None, None, '30B-A3B')
    // M.get_model_id_components("meta-llama/Llama-2-7b-chat-hf", 6738415616)
    //   -> ('Llama-2-7b-chat-hf', 'meta-llama', 'Llama-2', 'chat-hf', None, '7B')
    @Test func idComponents() {
        typealias C = ModelNaming.IDComponents
        #expect(ModelNaming.modelIDComponents("Mixtral-8x7B-Instruct-v0.1", totalParams: 46_702_792_704)
            == C(fullName: "Mixtral-8x7B-Instruct-v0.1", organization: nil, basename: "Mixtral", finetune: "Instruct",
                 version: "v0.1", sizeLabel: "8x7B"))
        #expect(ModelNaming.modelIDComponents("bloom-7b1", totalParams: 7_069_016_064)
            == C(fullName: "bloom-7b1", organization: nil, basename: "bloom", finetune: nil, version: nil, sizeLabel: "7.1B"))
        #expect(ModelNaming.modelIDComponents("Qwen3-30B-A3B", totalParams: 30_532_122_624)
            == C(fullName: "Qwen3-30B-A3B", organization: nil, basename: "Qwen3", finetune: nil, version: nil,
                 sizeLabel: "30B-A3B"))
        #expect(ModelNaming.modelIDComponents("meta-llama/Llama-2-7b-chat-hf", totalParams: 6_738_415_616)
            == C(fullName: "Llama-2-7b-chat-hf", organization: "meta-llama", basename: "Llama-2", finetune: "chat-hf",
                 version: nil, sizeLabel: "7B"))
    }

    // gguf.fill_templated_filename("out-{ftype}-{FTYPE}-{}.gguf", "Q8_0") -> out-q8_0-Q8_0-q8_0.gguf
    // gguf.fill_templated_filename("x-{{ftype}}-{OUTTYPE}.gguf", "bf16") -> x-{ftype}-BF16.gguf
    @Test func templatedFileName() throws {
        #expect(try ModelNaming.fillTemplatedFileName("out-{ftype}-{FTYPE}-{}.gguf", outputType: "Q8_0") == "out-q8_0-Q8_0-q8_0.gguf")
        #expect(try ModelNaming.fillTemplatedFileName("x-{{ftype}}-{OUTTYPE}.gguf", outputType: "bf16") == "x-{ftype}-BF16.gguf")
        #expect(try ModelNaming.fillTemplatedFileName("plain.gguf", outputType: "F16") == "plain.gguf")
        #expect(throws: ModelNamingError.self) { try ModelNaming.fillTemplatedFileName("{name}.gguf", outputType: "F16") }
    }

    // README.md front matter + generation_config.json, through the file-reading entry point:
    //   d = Path(tmp) / "llama-untied-sharded"; (write README.md, generation_config.json, config.json)
    //   m = gguf.Metadata.load(None, d, None, 115016); m.size_label = m.size_label or gguf.size_label(115016, 115016, 0, 0)
    //   w = gguf.GGUFWriter(None, "llama"); m.set_gguf_meta_model(w); print(list(w.kv_data[0].items()))
    // (The same keys, in the same order, are in Fixtures/golden/llama-untied-sharded-*.gguf.)
    @Test func modelCardAndGenerationConfig() throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("edgequant-naming-\(UUID().uuidString)")
            .appendingPathComponent("llama-untied-sharded")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        try """
        ---
        license: apache-2.0
        language:
        - en
        tags:
        - tiny
        - test-fixture
        pipeline_tag: text-generation
        base_model: meta-llama/Llama-3.2-1B
        datasets:
        - HuggingFaceFW/fineweb-edu
        ---

        # llama-untied-sharded

        """.write(to: dir.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        try #"{"bos_token_id": 1, "do_sample": true, "eos_token_id": 2, "temperature": 0.6, "top_k": 50, "top_p": 0.9}"#
            .write(to: dir.appendingPathComponent("generation_config.json"), atomically: true, encoding: .utf8)

        let m = try ModelNaming.infer(modelDirectory: dir.path, hfConfig: nil, totalParams: 115_016, sharedParams: 115_016)
        #expect(render(m.ggufKeys()) == [
            "general.sampling.top_k=i32:50",
            "general.sampling.top_p=f32:0x3f666666",
            "general.sampling.temp=f32:0x3f19999a",
            "general.name=Llama Untied Sharded",
            "general.size_label=115K",
            "general.license=apache-2.0",
            "general.base_model.count=u32:1",
            "general.base_model.0.name=Llama 3.2 1B",
            "general.base_model.0.organization=Meta Llama",
            "general.base_model.0.repo_url=https://huggingface.co/meta-llama/Llama-3.2-1B",
            "general.dataset.count=u32:1",
            "general.dataset.0.name=Fineweb Edu",
            "general.dataset.0.organization=HuggingFaceFW",
            "general.dataset.0.repo_url=https://huggingface.co/HuggingFaceFW/fineweb-edu",
            "general.tags=[string]tiny,test-fixture,text-generation",
            "general.languages=[string]en",
        ])
        #expect(ModelNaming.defaultFileName(naming: m, fileTypeName: "Q8_0") == "Llama-Untied-Sharded-115K-Q8_0.gguf")
    }

    // Metadata.load_model_card on these READMEs (written to a temp dir), then set_gguf_meta_model:
    //   card 1 -> name 'Fancy Model', author 'Someone', basename 'mistral', license 'mit,apache-2.0',
    //             base models [{'repo_url': 'https://huggingface.co/mistralai/Mistral-7B-v0.1',
    //             'name': 'Mistral 7B v0.1', 'organization': 'Mistralai', 'version': 'v0.1'},
    //             {'name': 'Custom Base', 'organization': 'Acme'}, {}], tags/languages from strings,
    //             "- no" kept as the string "no" (the Norway hack)
    //   card 2 -> no front matter (first line is not ---): only the directory heuristics
    @Test func modelCardVariants() throws {
        let card1 = """
        ---
        model_name: Fancy Model
        model_creator: Someone
        model_type: mistral
        license:
          - mit
          - "apache-2.0"   # a comment
        description: |
          Line one
          line two
        base_model:
        - https://huggingface.co/mistralai/Mistral-7B-v0.1
        - name: Custom Base
          organization: Acme
        - 42
        pipeline_tag: text-generation
        tags: [a, 'b c']
        language:
        - en
        - no
        ---
        """
        let m = try ModelNaming.infer(directoryName: "Foo-7B", modelCardText: card1, generationConfig: nil, hfConfig: nil,
                                      totalParams: 7_000_000_000)
        #expect(render(m.ggufKeys()) == [
            "general.name=Fancy Model",
            "general.author=Someone",
            "general.basename=mistral",
            "general.description=Line one\nline two\n",
            "general.size_label=7B",
            "general.license=mit,apache-2.0",
            "general.base_model.count=u32:3",
            "general.base_model.0.name=Mistral 7B v0.1",
            "general.base_model.0.version=v0.1",
            "general.base_model.0.organization=Mistralai",
            "general.base_model.0.repo_url=https://huggingface.co/mistralai/Mistral-7B-v0.1",
            "general.base_model.1.name=Custom Base",
            "general.base_model.1.organization=Acme",
            "general.tags=[string]a,b c,text-generation",
            "general.languages=[string]en,no",
        ])
        #expect(ModelNaming.defaultFileName(naming: m, fileTypeName: "F32") == "mistral-7B-F32.gguf")

        let noFrontMatter = "# Title\n---\nlicense: mit\n---\n"
        let n = try ModelNaming.infer(directoryName: "Qwen2-0.5B", modelCardText: noFrontMatter, generationConfig: nil,
                                      hfConfig: nil, totalParams: 494_032_768)
        #expect(render(n.ggufKeys()) == ["general.name=Qwen2 0.5B", "general.basename=Qwen2", "general.size_label=0.5B"])
    }

    // yaml.safe_load gives a float for `version: 1.0`; set_gguf_meta_model then crashes in Python.
    @Test func unsupportedCardValuesThrow() {
        #expect(throws: ModelNamingError.self) {
            try ModelNaming.infer(directoryName: "x", modelCardText: "---\nversion: 1.0\n---\n", generationConfig: nil,
                                  hfConfig: nil, totalParams: 0)
        }
        // where libyaml (Yams) and PyYAML part: a repeated key (PyYAML keeps the last), explicit
        // tags; and more than one document, which yaml.safe_load refuses too
        for card in ["---\nlicense: mit\nlicense: apache-2.0\n---\n", "---\nlicense: !!int 3\n---\n",
                     "---\nlicense: mit\n--- \nlicense: x\n---\n", "---\nlicense: [mit\n---\n"] {
            #expect(throws: ModelNamingError.self, "\(card)") {
                try ModelNaming.infer(directoryName: "x", modelCardText: card, generationConfig: nil, hfConfig: nil, totalParams: 0)
            }
        }
    }

    // Anchors and aliases resolve as in yaml.safe_load: {'license': 'mit', 'tags': ['mit', 'x']}
    @Test func anchorsAndAliases() throws {
        let m = try ModelNaming.infer(directoryName: "x", modelCardText: "---\nlicense: &a mit\ntags:\n- *a\n- x\n---\n",
                                      generationConfig: nil, hfConfig: nil, totalParams: 0)
        #expect(m.license == "mit")
        #expect(m.tags == ["mit", "x"])
    }

    // set_gguf_meta_model order for generation_config sampling values (and repetition_penalty
    // standing in for penalty_repeat):
    //   {"temperature": 1, "top_k": 20, "repetition_penalty": 1.05, "min_p": 0.05, "sequence": "edkypmxt"}
    //   -> sequence, top_k (INT32 20), min_p, temp (FLOAT32 1.0), penalty_repeat, then general.name
    @Test func samplingOrder() throws {
        let gen = try JSONParser.parse(#"{"temperature": 1, "top_k": 20, "repetition_penalty": 1.05, "min_p": 0.05, "sequence": "edkypmxt"}"#)
        let m = try ModelNaming.infer(directoryName: "smol", modelCardText: nil, generationConfig: gen, hfConfig: nil,
                                      totalParams: 0)
        #expect(render(m.ggufKeys()) == [
            "general.sampling.sequence=edkypmxt",
            "general.sampling.top_k=i32:20",
            "general.sampling.min_p=f32:0x3d4ccccd",
            "general.sampling.temp=f32:0x3f800000",
            "general.sampling.penalty_repeat=f32:0x3f866666",
            "general.name=Smol",
        ])
    }

    /// The checked-in fixture checkpoints against the golden files convert_hf_to_gguf.py wrote.
    @Test func fixtureCheckpoints() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/checkpoints")
        // (name, total elements written, expected general.* keys between general.type and general.file_type)
        let expected: [(String, Int, [String])] = [
            ("llama-tied", 94528, ["general.name=Llama Tied", "general.size_label=95K"]),
            ("mistral", 108_864, ["general.name=Mistral", "general.size_label=109K"]),
            ("qwen2", 95168, ["general.name=Qwen2", "general.size_label=95K"]),
            ("llama-untied-sharded", 115_016, [
                "general.sampling.top_k=i32:50", "general.sampling.top_p=f32:0x3f666666",
                "general.sampling.temp=f32:0x3f19999a", "general.name=Llama Untied Sharded",
                "general.size_label=115K", "general.license=apache-2.0", "general.base_model.count=u32:1",
                "general.base_model.0.name=Llama 3.2 1B", "general.base_model.0.organization=Meta Llama",
                "general.base_model.0.repo_url=https://huggingface.co/meta-llama/Llama-3.2-1B",
                "general.dataset.count=u32:1", "general.dataset.0.name=Fineweb Edu",
                "general.dataset.0.organization=HuggingFaceFW",
                "general.dataset.0.repo_url=https://huggingface.co/HuggingFaceFW/fineweb-edu",
                "general.tags=[string]tiny,test-fixture,text-generation", "general.languages=[string]en",
            ]),
        ]
        for (name, total, keys) in expected {
            let dir = root.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("config.json").path) else {
                Issue.record("missing fixture \(dir.path)")
                continue
            }
            let config = try JSONParser.parse(data)
            let m = try ModelNaming.infer(modelDirectory: dir.path, hfConfig: config, totalParams: total, sharedParams: total)
            #expect(render(m.ggufKeys()) == keys, "\(name)")
        }
    }
}
