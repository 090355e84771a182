import Batch
import Foundation
import Testing

@Suite struct ManifestTests {
    /// Values the manifest names in errors are shortened and escaped: a 100 kB key, a 1 MB path or
    /// a multi-line block scalar gives one short line, not the value back.
    @Test func errorsQuoteValuesShortAndOnOneLine() throws {
        let f = try Fixture()
        let huge = String(repeating: "k", count: 100_000)
        let cases = [
            "output: out\neval: {text: e.txt}\n\(huge): 1\nmodels: [{path: m}]\n",
            "output: out\neval: {text: e.txt}\nmodels: [{path: \(String(repeating: "p", count: 1_000_000))}]\n",
            "output: out\neval: {text: e.txt}\nmodels: [{path: m, name: |\n    line one\n    line two\n    line three\n}]\n",
            "output: out\neval: {text: e.txt}\nthreads: |\n  many\n  lines\nmodels: [{path: m}]\n",
        ]
        for yaml in cases {
            let e = try #require(try f.manifestError(yaml))
            #expect(!e.description.contains("\n"), "\(e.description.prefix(300))")
            #expect(e.description.count < 600, "\(e.description.count) characters: \(e.description.prefix(300))")
        }
    }

    @Test func gatesMergeAndPathsResolve() throws {
        let f = try Fixture()
        let m = try f.manifest("""
            output: ../out
            eval:
              text: ../data/eval.txt
              chunks: 20
            threads: 2
            calibration:
              imatrix: ../data/imatrix.gguf
            types: [Q8_0, {type: q4_k_m, gates: {max_ppl_increase_pct: 20}}]
            gates: {max_kld: 0.5, max_size_mb: 200}
            models:
              - name: first
                path: ../models/alpha
                gates: {max_kld: 0.1}
                types: [q8_0, {type: Q4_0, gates: {max_size_mb: 50, min_same_top_pct: 80}}]
              - path: ../models/beta/
                gates: {max_kld: 0.3, max_ppl_increase_pct: 30}
                calibration: {calibrate: ../data/calib.txt}
            """, name: "sub/manifest.yaml")
        #expect(m.path == f.path("sub/manifest.yaml"))
        #expect(m.output == f.path("out"))
        #expect(m.eval == EvalSettings(text: f.path("data/eval.txt"), ctx: 512, chunks: 20))
        #expect(m.threads == 2)
        #expect(m.models.map(\.name) == ["first", "beta"])
        #expect(m.models.map(\.path) == [f.path("models/alpha"), f.path("models/beta")])
        #expect(m.models[0].calibration == .imatrix(f.path("data/imatrix.gguf")))
        #expect(m.models[1].calibration == .calibrate(f.path("data/calib.txt")))

        let jobs = m.jobs
        #expect(jobs.map(\.id) == ["first/q8_0", "first/q4_0", "beta/q8_0", "beta/q4_k_m"])
        // Per key: top level < model < type entry.
        #expect(jobs[0].gates == Gates(maxKLD: 0.1, maxSizeMB: 200))
        #expect(jobs[1].gates == Gates(maxKLD: 0.1, maxSizeMB: 50, minSameTopPct: 80))
        #expect(jobs[2].gates == Gates(maxKLD: 0.3, maxPPLIncreasePct: 30, maxSizeMB: 200))
        #expect(jobs[3].gates == Gates(maxKLD: 0.3, maxPPLIncreasePct: 20, maxSizeMB: 200))
        #expect(jobs[1].outputPath == f.path("out/first/first-Q4_0.gguf"))
        #expect(jobs[3].outputPath == f.path("out/beta/beta-Q4_K_M.gguf"))
        #expect(jobs[3].recordPath == f.path("out/.edgequant/jobs/beta--q4_k_m.json"))
        #expect(jobs[3].calibration == .calibrate(f.path("data/calib.txt")))
    }

    @Test func emptyCalibrationOverridesTopLevel() throws {
        let f = try Fixture()
        let m = try f.manifest("""
            output: out
            eval: {text: data/eval.txt}
            calibration: {calibrate: data/calib.txt}
            types: [q4_0]
            models:
              - {path: models/alpha, calibration: {}}
              - path: models/beta
            """)
        #expect(m.models.map(\.calibration) == [.none, .calibrate(f.path("data/calib.txt"))])
    }

    /// Each fault, where it must be reported, and words its message must hold.
    static let faults: [(yaml: String, line: Int, column: Int, says: [String])] = [
        // unknown key, listing the allowed ones
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels:\n  - path: models/alpha\n    colour: red\n",
         6, 5, ["unknown key 'colour'", "allowed: name, path, types, gates, calibration"]),
        // wrong kinds
        ("output: out\neval:\n  text: data/eval.txt\n  ctx: big\ntypes: [q8_0]\nmodels: [{path: models/alpha}]\n",
         4, 8, ["eval.ctx", "expected a whole number"]),
        ("output: out\neval: data/eval.txt\ntypes: [q8_0]\nmodels: [{path: models/alpha}]\n",
         2, 7, ["eval", "expected a map"]),
        ("output: out\neval: {text: data/eval.txt}\ntypes: q8_0\nmodels: [{path: models/alpha}]\n",
         3, 8, ["types", "expected a list"]),
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\ngates: {max_kld: low}\nmodels: [{path: models/alpha}]\n",
         4, 18, ["gates.max_kld", "expected a number"]),
        // missing required keys point at the enclosing map
        ("eval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels: [{path: models/alpha}]\n",
         1, 1, ["missing required key 'output'"]),
        ("output: out\neval:\n  ctx: 256\ntypes: [q8_0]\nmodels: [{path: models/alpha}]\n",
         3, 3, ["eval: missing required key 'text'"]),
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels:\n  - name: a\n    types: [q4_0]\n",
         5, 5, ["needs 'path'"]),
        ("output: out\neval: {text: data/eval.txt}\nmodels:\n  - path: models/alpha\n",
         4, 5, ["no types"]),
        // duplicates
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels:\n  - path: models/alpha\n  - path: models/beta\n    name: alpha\n",
         7, 11, ["duplicate model name 'alpha'", "first at line 5"]),
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0, q4_0, Q8_0]\nmodels: [{path: models/alpha}]\n",
         3, 21, ["duplicate type 'q8_0'", "first at line 3"]),
        // unknown type, listing the known
        ("output: out\neval: {text: data/eval.txt}\nmodels:\n  - path: models/alpha\n    types: [q8_0, {type: q7_0}]\n",
         5, 26, ["unknown type 'q7_0'", "known: f32, f16, bf16, q8_0"]),
        // numbers out of range
        ("output: out\neval:\n  text: data/eval.txt\n  chunks: 0\ntypes: [q8_0]\nmodels: [{path: models/alpha}]\n",
         4, 11, ["eval.chunks must be at least 1"]),
        ("output: out\neval: {text: data/eval.txt}\nthreads: -2\ntypes: [q8_0]\nmodels: [{path: models/alpha}]\n",
         3, 10, ["threads must be at least 1"]),
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels:\n  - path: models/alpha\n    gates:\n      max_size_mb: 0\n",
         7, 20, ["max_size_mb must be positive"]),
        // calibration: one source only
        ("output: out\neval: {text: data/eval.txt}\ncalibration:\n  imatrix: data/imatrix.gguf\n  calibrate: data/calib.txt\ntypes: [q8_0]\nmodels: [{path: models/alpha}]\n",
         5, 3, ["either 'imatrix' or 'calibrate'"]),
        // files that must exist, at the line that names them
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels:\n  - path: models/alpha\n  - path: models/gamma\n",
         6, 11, ["models/gamma does not exist"]),
        ("output: out\neval:\n  text: data/missing.txt\ntypes: [q8_0]\nmodels: [{path: models/alpha}]\n",
         3, 9, ["eval.text", "missing.txt does not exist"]),
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels:\n  - path: models/alpha\n    calibration: {imatrix: data/none.dat}\n",
         6, 28, ["calibration.imatrix", "does not exist"]),
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels:\n  - path: models/alpha/config.json\n",
         5, 11, ["is not a directory"]),
        // a name the output directory cannot carry
        ("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels:\n  - {path: models/alpha, name: a/b}\n",
         5, 32, ["model name 'a/b'"]),
    ]

    @Test(arguments: 0..<faults.count) func badManifestNamesTheSpot(_ i: Int) throws {
        let fault = Self.faults[i]
        let f = try Fixture()
        let e = try #require(try f.manifestError(fault.yaml), "case \(i) loaded")
        #expect(e.line == fault.line && e.column == fault.column, "case \(i): \(e)")
        for words in fault.says { #expect(e.message.contains(words), "case \(i): \(e)") }
        #expect(e.description.hasPrefix(f.path("manifest.yaml") + ":\(e.line):\(e.column): "))
    }

    @Test func yamlSyntaxErrorsHaveLines() throws {
        let f = try Fixture()
        let unclosed = try #require(try f.manifestError("output: out\neval: {text: data/eval.txt}\ntypes: [q8_0, q4_0\nmodels: []\n"))
        #expect(unclosed.line == 4, "\(unclosed)")
        #expect(unclosed.message.hasPrefix("YAML: "))
        let indent = try #require(try f.manifestError("output: out\neval:\n  text: a\n ctx: 3\n"))
        #expect(indent.line == 4, "\(indent)")
        let duplicate = try #require(try f.manifestError("output: out\neval: {text: data/eval.txt}\noutput: other\n"))
        #expect(duplicate.message.contains("duplicate key output"), "\(duplicate)")
        #expect(duplicate.line == 1 || duplicate.line == 3, "\(duplicate)")
        let empty = try #require(try f.manifestError(""))
        #expect(empty.message.contains("empty"))
    }

    @Test func typesValidateAgainstAGivenList() throws {
        let f = try Fixture()
        try f.write("m.yaml", "output: out\neval: {text: data/eval.txt}\ntypes: [q8_0, q4_0]\nmodels: [{path: models/alpha}]\n")
        #expect(throws: ManifestError.self) { try Manifest.load(path: f.path("m.yaml"), knownTypes: ["q8_0"]) }
        #expect(try Manifest.load(path: f.path("m.yaml"), knownTypes: ["Q8_0", "Q4_0"]).jobs.count == 2)
    }

    /// A model's `path` may name a model in the Hugging Face cache: it runs from the snapshot, named
    /// by the repository (not the commit hash); a miss names the cache folder and the fetch command.
    @Test func modelPathsFromTheHubCache() throws {
        let f = try Fixture()
        let snapshot = "hub/models--acme--gamma/snapshots/0123456789abcdef0123456789abcdef01234567"
        try f.write(snapshot + "/config.json", #"{"architectures": ["LlamaForCausalLM"]}"#)
        try f.write("hub/models--acme--gamma/refs/main", "0123456789abcdef0123456789abcdef01234567")
        let yaml = "output: out\neval: {text: data/eval.txt}\ntypes: [q8_0]\nmodels: [{path: acme/gamma}, {path: models/alpha}]\n"
        let env = ["HF_HUB_CACHE": f.path("hub")]
        let m = try Manifest.parse(yaml: yaml, path: f.path("m.yaml"), environment: env)
        #expect(m.models.map(\.name) == ["gamma", "alpha"])
        #expect(m.models[0].path == f.path(snapshot) && m.models[0].directoryName == "gamma")
        #expect(m.jobs[0].modelDirectoryName == "gamma" && m.jobs[1].modelDirectoryName == nil)
        do {
            _ = try Manifest.parse(yaml: yaml.replacingOccurrences(of: "acme/gamma", with: "acme/delta"), path: f.path("m.yaml"), environment: env)
            Issue.record("acme/delta is not in the cache")
        } catch let e as ManifestError {
            #expect(e.line == 4 && e.message.contains("models--acme--delta") && e.message.contains("huggingface-cli download acme/delta"), "\(e)")
        }
    }
}
