import Foundation

/// One model quantized to one type and measured: the unit that is run, skipped, sharded and reported.
public struct Job: Sendable, Equatable {
    /// `model/type`, unique within a manifest.
    public var id: String { "\(modelName)/\(type)" }
    public var modelName: String
    /// The checkpoint directory.
    public var modelPath: String
    /// The model's name when `modelPath` is a hub cache snapshot (named by its commit hash).
    public var modelDirectoryName: String? = nil
    /// Lower case (`q4_k_m`).
    public var type: String
    public var gates: Gates
    public var calibration: Calibration
    public var eval: EvalSettings
    /// `<output>/<model>/<model>-<TYPE>.gguf`.
    public var outputPath: String
    /// `<output>/.edgequant/jobs/<model>--<type>.json`: written only once the job has finished.
    public var recordPath: String
    /// `<output>/.edgequant/cache/<model>`: where an executor may keep what every type of the model
    /// shares (the reference logits), so the reference is computed once per model, not per type.
    public var cacheDirectory: String

    public init(modelName: String, modelPath: String, type: String, gates: Gates, calibration: Calibration, eval: EvalSettings,
                output: String) {
        self.modelName = modelName; self.modelPath = modelPath; self.type = type
        self.gates = gates; self.calibration = calibration; self.eval = eval
        let out = URL(fileURLWithPath: output, isDirectory: true)
        outputPath = out.appendingPathComponent(modelName).appendingPathComponent("\(modelName)-\(type.uppercased()).gguf").path
        recordPath = out.appendingPathComponent(".edgequant/jobs/\(modelName)--\(type).json").path
        cacheDirectory = out.appendingPathComponent(".edgequant/cache/\(modelName)").path
    }

    /// The `.sha256` file beside the GGUF, in `sha256sum` format so `sha256sum -c` checks it.
    public var checksumPath: String { outputPath + ".sha256" }
}

extension Manifest {
    /// Models in manifest order, each model's types in listed order: the order shards and reports use.
    public var jobs: [Job] {
        models.flatMap { m in
            m.types.map { t in
                var job = Job(modelName: m.name, modelPath: m.path, type: t.type, gates: t.gates, calibration: m.calibration,
                              eval: eval, output: output)
                job.modelDirectoryName = m.directoryName
                return job
            }
        }
    }
}

/// Shard `index` of `count` (1-based, as CI matrices number runners).
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init?(index: Int, count: Int) {
        guard count >= 1, (1...count).contains(index) else { return nil }
        self.index = index; self.count = count
    }

    /// `"i/n"` with 1 ≤ i ≤ n.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2,
              let i = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let n = Int(parts[1].trimmingCharacters(in: .whitespaces)) else { return nil }
        self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// Round-robin by position, so shards get near-equal shares of each model's types (big and
    /// small models alike) and every job lands in exactly one shard.
    public func select(_ jobs: [Job]) -> [Job] {
        jobs.enumerated().filter { $0.offset % count + 1 == index }.map(\.element)
    }
}
