import Foundation
import MappedIO
import Reports

/// Quantizes one job's checkpoint into `job.outputPath` (temp file + rename, so a kill leaves no
/// half GGUF under the final name) and measures it. A job that cannot be done may throw or return a
/// row with `error` set: either way the batch records the error and goes on with the next job.
public protocol JobExecutor: AnyObject {
    func execute(_ job: Job, log: @escaping (String) -> Void) throws -> QualityRow
}

/// Thrown by an executor to stop the whole batch rather than fail one job (an interrupt, a full
/// disk): the runner writes the partial report and rethrows, and a rerun redoes the unfinished jobs.
/// The runner itself turns a `FileFault` that is a write fault (disk full, read-only, I/O error)
/// into one: that is the machine failing, reported as exit 1, not the job failing its gates.
public struct BatchInterrupted: Error, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "batch interrupted: \(reason)" }
}

/// A job as `--dry-run` shows it.
public struct PlannedJob: Sendable, Equatable {
    public var job: Job
    public var willRun: Bool
    /// "up to date", or why the job must run ("not run yet", "inputs or settings changed", …).
    public var reason: String
    public var settingsHash: String
    /// The recorded row a run would reuse (when `willRun` is false).
    public var recorded: QualityRow?
}

public struct BatchRunner {
    /// Off in tests that only look at the returned report.
    public var writeReports = true

    public init(writeReports: Bool = true) { self.writeReports = writeReports }

    /// The jobs of `shard` (all without one), each with whether a run would execute or skip it.
    public func plan(manifest: Manifest, shard: Shard?, toolVersion: String) throws -> [PlannedJob] {
        let cache = FileHashCache()
        return try (shard?.select(manifest.jobs) ?? manifest.jobs).map { job in
            let hash = try settingsHash(job: job, toolVersion: toolVersion, cache: cache)
            switch checkRecord(job, hash: hash) {
            case .upToDate(let row): return PlannedJob(job: job, willRun: false, reason: "up to date", settingsHash: hash, recorded: row)
            case .mustRun(let reason): return PlannedJob(job: job, willRun: true, reason: reason, settingsHash: hash)
            }
        }
    }

    /// Runs the jobs of `shard` that are not up to date, records each as it finishes, and writes the
    /// report (after every executed job too, so a killed run leaves a readable partial one).
    public func run(manifest: Manifest, shard: Shard?, executor: any JobExecutor, toolVersion: String,
                    log: @escaping (String) -> Void = { _ in }) throws -> BatchReport {
        // temporary files of a killed earlier run (its GGUFs, records, reports, reference log-probs)
        TempFiles.sweep(tree: manifest.output, depth: 3)
        let planned = try plan(manifest: manifest, shard: shard, toolVersion: toolVersion)
        let total = planned.count
        var toRun = planned.filter(\.willRun).count
        log("\(total) job\(total == 1 ? "" : "s")\(shard.map { " in shard \($0)" } ?? ""): "
            + "\(total - toRun) up to date, \(toRun) to run")
        var entries = [BatchReport.Entry?](repeating: nil, count: total)
        func report() -> BatchReport {
            BatchReport(manifestPath: manifest.path, shard: shard?.description, toolVersion: toolVersion,
                        entries: entries.compactMap { $0 },
                        pending: zip(planned, entries).filter { $0.1 == nil }.map { $0.0.job.id })
        }
        var secondsPerJob: [Double] = []
        for (k, p) in planned.enumerated() {
            let job = p.job
            let tag = "[\(k + 1)/\(total)]"
            if !p.willRun, let row = p.recorded {
                log("\(tag) skip \(job.id) (up to date)")
                entries[k] = BatchReport.Entry(job: job, row: row, resumed: true)
                continue
            }
            let eta = secondsPerJob.isEmpty ? "" : ", ETA \(formatDuration(secondsPerJob.reduce(0, +) / Double(secondsPerJob.count) * Double(toRun)))"
            log("\(tag) \(job.id) … (\(p.reason)\(eta))")
            let start = Date()
            let row: QualityRow
            do {
                row = try execute(job, hash: p.settingsHash, executor: executor, log: log)
            } catch let e as BatchInterrupted {
                // best effort: on a full disk the report cannot be written either, and the fault
                // that stopped the batch is the one to report
                if writeReports { try? report().write(toDirectory: manifest.output) }
                throw e
            }
            let seconds = Date().timeIntervalSince(start)
            secondsPerJob.append(seconds)
            toRun -= 1
            let entry = BatchReport.Entry(job: job, row: row, resumed: false)
            entries[k] = entry
            log("\(tag) \(job.id) \(entry.status.rawValue) in \(formatDuration(seconds))"
                + (entry.status == .passed ? "" : ": " + entry.gates.filter { !$0.passed }.map(\.description).joined(separator: ", ")))
            if writeReports { try report().write(toDirectory: manifest.output) }
        }
        let final = report()
        if writeReports { try final.write(toDirectory: manifest.output) }
        return final
    }

    /// Runs one job and leaves it recorded: GGUF, `.sha256` beside it, then the record (last, so a
    /// record always means a finished job).
    func execute(_ job: Job, hash: String, executor: any JobExecutor, log: @escaping (String) -> Void) throws -> QualityRow {
        // A stale record or sidecar must not survive a kill during the new run.
        for stale in [job.recordPath, job.checksumPath] where FileManager.default.fileExists(atPath: stale) {
            try FileManager.default.removeItem(atPath: stale)
        }
        try FileManager.default.createDirectory(atPath: (job.outputPath as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        var row: QualityRow
        do {
            row = try executor.execute(job, log: log)
        } catch let e as BatchInterrupted {
            throw e
        } catch let e as any FileFault where e.isWriteFault {
            throw BatchInterrupted("\(job.id): \(e)")
        } catch {
            row = QualityRow(type: job.type)
            row.error = "\(error)"
        }
        row.type = job.type
        guard row.error == nil else { return row }
        guard let st = FileStat(path: job.outputPath) else {
            // Simulated types keep no file; anything else should have written one.
            if !row.simulated { row.error = "no GGUF written at \(job.outputPath)" } else {
                try JobRecord(settingsHash: hash, row: row, completedAt: timestamp(), ggufSize: nil, ggufMtimeNS: nil)
                    .write(to: job.recordPath)
            }
            return row
        }
        let sha: String
        do { sha = try FileHash.sha256(path: job.outputPath) } catch {
            // the file was just written: failing to read it back is the machine's fault, not the job's
            throw BatchInterrupted("\(job.id): cannot hash the GGUF: \(error)")
        }
        row.sha256 = sha
        row.sizeBytes = st.size
        // Relative to the output directory, so reports from runners with different checkouts agree.
        row.path = job.modelName + "/" + (job.outputPath as NSString).lastPathComponent
        try AtomicFile.write(checksumLine(sha256: sha, path: job.outputPath), to: job.checksumPath)
        try JobRecord(settingsHash: hash, row: row, completedAt: timestamp(), ggufSize: st.size, ggufMtimeNS: st.mtimeNS)
            .write(to: job.recordPath)
        return row
    }
}

private func timestamp() -> String {
    ISO8601DateFormatter().string(from: Date())
}

/// `42s`, `3m 20s`, `2h 05m`.
func formatDuration(_ s: Double) -> String {
    let t = Int(s.rounded())
    if t < 60 { return "\(t)s" }
    if t < 3600 { return "\(t / 60)m \(String(format: "%02d", t % 60))s" }
    return "\(t / 3600)h \(String(format: "%02d", t / 60 % 60))m"
}
