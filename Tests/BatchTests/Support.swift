import Batch
import Foundation
import Reports

/// A scratch directory with two fake checkpoints and the texts a manifest names; removed on deinit.
final class Fixture {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("edgequant-batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for model in ["alpha", "beta"] {
            try write("models/\(model)/config.json", #"{"architectures": ["LlamaForCausalLM"], "name": "\#(model)"}"#)
            try write("models/\(model)/model.safetensors", String(repeating: model, count: 1000))
        }
        try write("data/eval.txt", "The quick brown fox jumps over the lazy dog.\n")
        try write("data/calib.txt", "Calibration text.\n")
        try write("data/imatrix.gguf", "GGUF fake imatrix")
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).standardizedFileURL.path }

    func write(_ relative: String, _ text: String) throws {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    /// Writes `manifest.yaml` (or `name`) and loads it.
    func manifest(_ yaml: String, name: String = "manifest.yaml") throws -> Manifest {
        try write(name, yaml)
        return try Manifest.load(path: path(name))
    }

    /// The manifest load error for `yaml`, or nil if it loaded.
    func manifestError(_ yaml: String) throws -> ManifestError? {
        do {
            _ = try manifest(yaml)
            return nil
        } catch let e as ManifestError {
            return e
        }
    }

    /// Two models × three types, gates at the top level and on one model.
    static let twoByThree = """
        output: out
        eval:
          text: data/eval.txt
          ctx: 128
        types: [q8_0, q4_k_m, q4_0]
        gates: {max_kld: 0.5, max_size_mb: 10}
        models:
          - path: models/alpha
          - path: models/beta
            gates: {max_kld: 0.2}
        """
}

/// Writes a small deterministic "GGUF" per job and returns a row; remembers what it ran.
final class FakeExecutor: JobExecutor {
    var executed: [String] = []
    /// Stops the batch (as a kill would) once this many jobs have run.
    var interruptAfter: Int?
    var kld: [String: Double] = [:]
    var failing: Set<String> = []

    init(interruptAfter: Int? = nil) { self.interruptAfter = interruptAfter }

    func execute(_ job: Job, log: @escaping (String) -> Void) throws -> QualityRow {
        if let n = interruptAfter, executed.count >= n { throw BatchInterrupted("killed by the test") }
        executed.append(job.id)
        if failing.contains(job.id) { throw FakeFailure(job: job.id) }
        try Data("GGUF fake \(job.id)".utf8).write(to: URL(fileURLWithPath: job.outputPath))
        var row = QualityRow(type: job.type)
        row.bpw = 4.5
        row.ppl = 10.5
        row.pplDeltaPct = 1.25
        row.kldMean = kld[job.id] ?? 0.01
        row.kldP99 = 0.1
        row.sameTopPct = 95
        // Timing differs between runs, as real timing does.
        row.quantizeSeconds = Double.random(in: 0.1...9)
        row.evalTokensPerSecond = Double.random(in: 100...900)
        return row
    }
}

struct FakeFailure: Error, CustomStringConvertible {
    var job: String
    var description: String { "unsupported architecture for \(job)" }
}
