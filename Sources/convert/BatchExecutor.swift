import Batch
import Comparison
import Foundation
import Reports

/// The batch executor: one `ComparisonSession` per model and evaluation setting, so a model's
/// reference log-probs are computed once (and cached under the job's cache directory, keyed by the
/// hash of the model files and evaluation settings, so that a resumed run does not recompute them).
func makeBatchExecutor(threads: Int?, quiet: Bool) -> any JobExecutor {
    SessionBatchExecutor(threads: threads ?? ProcessInfo.processInfo.activeProcessorCount, quiet: quiet)
}

private final class SessionBatchExecutor: JobExecutor {
    let threads: Int
    let quiet: Bool
    private var sessions: [String: ComparisonSession] = [:]

    init(threads: Int, quiet: Bool) {
        self.threads = threads
        self.quiet = quiet
    }

    func execute(_ job: Job, log: @escaping (String) -> Void) throws -> QualityRow {
        let fm = FileManager.default
        try fm.createDirectory(atPath: job.cacheDirectory, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: (job.outputPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // the reference depends on the model and the evaluation, not on the type or calibration
        var refJob = job
        refJob.type = "reference"
        refJob.calibration = .none
        let refHash = try settingsHash(job: refJob, toolVersion: BatchCommand.toolVersion)
        let key = "\(refHash) \(job.calibration)"
        let session: ComparisonSession
        if let s = sessions[key] {
            session = s
        } else {
            session = ComparisonSession(
                modelDir: job.modelPath, directoryName: job.modelDirectoryName, eval: job.eval, threads: threads, calibration: job.calibration,
                referenceLogits: (job.cacheDirectory as NSString).appendingPathComponent("reference-\(refHash.prefix(16)).logits"))
            sessions = sessions.filter { $0.value.modelDir == job.modelPath } // one model's state at a time
            sessions[key] = session
        }
        let quiet = self.quiet
        session.events = SessionEvents(phase: { step, type in
            guard !quiet else { return }
            switch step {
            case "reference": log("  \(job.modelName): reference (unquantized) evaluation")
            case "calibrate": log("  \(job.modelName): calibration")
            default: log("  \(job.id): \(step)")
            }
        })
        try session.prepareReference(reuse: true)
        return try session.measure(type: job.type, output: job.outputPath, keep: true)
    }
}
