import Foundation
import MappedIO
import Reports
import StrictJSON

/// What a batch run (or one shard of it) found: one entry per job, in the manifest's job order.
public struct BatchReport: Sendable, Equatable {
    public enum Status: String, Sendable {
        case passed, failed, error
    }

    public struct Entry: Sendable, Equatable {
        public var jobID: String
        public var model: String
        public var type: String
        public var row: QualityRow
        public var gates: [GateResult]
        public var status: Status
        /// Taken from the job's record instead of being run again.
        public var resumed: Bool

        public init(job: Job, row: QualityRow, resumed: Bool) {
            jobID = job.id; model = job.modelName; type = job.type
            self.row = row
            gates = job.gates.evaluate(row)
            status = row.error != nil ? .error : (gates.allSatisfy(\.passed) ? .passed : .failed)
            self.resumed = resumed
        }

        init(jobID: String, model: String, type: String, row: QualityRow, gates: [GateResult], status: Status, resumed: Bool) {
            self.jobID = jobID; self.model = model; self.type = type; self.row = row; self.gates = gates
            self.status = status; self.resumed = resumed
        }

        /// `smollm2/q4_0: max_kld 0.341 > 0.2, …`, or nil when the entry passed.
        public var failure: String? {
            guard status != .passed else { return nil }
            return "\(jobID): " + gates.filter { !$0.passed }.map(\.description).joined(separator: ", ")
        }
    }

    public var manifestPath: String
    /// `i/n`, nil for a full run or a merge.
    public var shard: String?
    public var toolVersion: String
    public var entries: [Entry]
    /// Selected jobs not finished yet: only a report written during a run (or left by a killed one) has any.
    public var pending: [String]

    public init(manifestPath: String, shard: String?, toolVersion: String, entries: [Entry], pending: [String] = []) {
        self.manifestPath = manifestPath; self.shard = shard; self.toolVersion = toolVersion
        self.entries = entries; self.pending = pending
    }

    public var passed: Bool { pending.isEmpty && entries.allSatisfy { $0.status == .passed } }

    /// One line per failing job, naming the gates it failed.
    public var failures: [String] { entries.compactMap(\.failure) }

    // MARK: Files

    /// `report.json`, or `report.shard-I-of-N.json` for a shard.
    public static func baseName(shard: String?) -> String {
        guard let shard else { return "report" }
        return "report.shard-" + shard.replacingOccurrences(of: "/", with: "-of-")
    }

    /// Writes `<base>.json` and `<base>.md` into `directory`, each atomically.
    public func write(toDirectory directory: String) throws {
        let base = (directory as NSString).appendingPathComponent(BatchReport.baseName(shard: shard))
        try AtomicFile.write(json.serialized(pretty: true) + "\n", to: base + ".json")
        try AtomicFile.write(markdown, to: base + ".md")
    }

    public static func read(path: String) throws -> BatchReport {
        guard let data = FileManager.default.contents(atPath: path) else { throw BatchError.unreadable(path: path) }
        do {
            return try BatchReport(json: try JSONParser.parse(data), path: path)
        } catch let e as JSONError {
            throw BatchError.invalidReport(path: path, detail: "not JSON: \(e)")
        }
    }

    // MARK: JSON

    public var json: JSONValue {
        var o = JSONObject()
        o.append("tool_version", .string(toolVersion))
        o.append("manifest", .string(manifestPath))
        o.append("shard", shard.map { .string($0) } ?? .null)
        let failed = entries.filter { $0.status == .failed }.count
        let errors = entries.filter { $0.status == .error }.count
        o.append("summary", .obj([
            "jobs": .int(entries.count), "passed": .int(entries.count - failed - errors), "failed": .int(failed),
            "errors": .int(errors), "pending": .int(pending.count),
        ]))
        o.append("entries", .array(entries.map { e in
            var eo = JSONObject()
            eo.append("id", .string(e.jobID))
            eo.append("model", .string(e.model))
            eo.append("type", .string(e.type))
            eo.append("status", .string(e.status.rawValue))
            eo.append("resumed", .bool(e.resumed))
            eo.append("gates", .array(e.gates.map(\.json)))
            eo.append("row", .object(e.row.json))
            return .object(eo)
        }))
        if !pending.isEmpty { o.append("pending", .array(pending.map { .string($0) })) }
        return .object(o)
    }

    /// - Parameter path: the file the JSON came from, named in errors.
    public init(json v: JSONValue, path: String = "report") throws(BatchError) {
        func bad(_ m: String) -> BatchError { .invalidReport(path: path, detail: m) }
        guard let tool = v["tool_version"]?.stringValue, let manifest = v["manifest"]?.stringValue,
              let list = v["entries"]?.arrayValue else {
            throw bad("not a batch report (needs tool_version, manifest, entries)")
        }
        var entries: [Entry] = []
        for (i, e) in list.enumerated() {
            guard let id = e["id"]?.stringValue, let model = e["model"]?.stringValue, let type = e["type"]?.stringValue,
                  let status = e["status"]?.stringValue.flatMap(Status.init(rawValue:)),
                  let row = e["row"].flatMap(QualityRow.init(json:)),
                  let gates = e["gates"]?.arrayValue else {
                throw bad("entry \(i + 1) lacks id, model, type, status, row or gates")
            }
            let results = try gates.map { (g) throws(BatchError) -> GateResult in
                guard let r = GateResult(json: g) else { throw bad("entry \(id): a gate lacks name or passed") }
                return r
            }
            entries.append(Entry(jobID: id, model: model, type: type, row: row, gates: results, status: status,
                                 resumed: e["resumed"]?.boolValue ?? false))
        }
        self.init(manifestPath: manifest, shard: v["shard"]?.stringValue, toolVersion: tool, entries: entries,
                  pending: v["pending"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// This report with what differs between identical runs removed: timing fields and `resumed`.
    public func withoutTiming() -> BatchReport {
        var r = self
        for i in r.entries.indices {
            r.entries[i].row.quantizeSeconds = nil
            r.entries[i].row.evalTokensPerSecond = nil
            r.entries[i].resumed = false
        }
        return r
    }

    /// The JSON without `QualityRow.timingKeys` and `resumed`: equal for a merged and a single run.
    public var jsonWithoutTiming: JSONValue { withoutTiming().json }

    // MARK: Merge

    /// Joins shard reports into the report one full run of `jobs` gives: each job exactly once, in job order.
    public static func merge(_ reports: [BatchReport], jobs: [Job]) throws -> BatchReport {
        guard let first = reports.first else { throw BatchError.cannotMerge(detail: "no shard reports to merge") }
        let label = { (r: BatchReport) in r.shard.map { "shard \($0)" } ?? "a full report" }
        let versions = Set(reports.map(\.toolVersion))
        guard versions.count == 1 else {
            throw BatchError.cannotMerge(detail: "shards ran different tool versions: "
                                 + reports.map { "\($0.toolVersion) (\(label($0)))" }.joined(separator: ", "))
        }
        let unfinished = reports.filter { !$0.pending.isEmpty }
        guard unfinished.isEmpty else {
            throw BatchError.cannotMerge(detail: unfinished.map { "\(label($0)) did not finish: \($0.pending.joined(separator: ", "))" }
                                    .joined(separator: "; "))
        }
        var byID: [String: (Entry, String)] = [:]
        var duplicates: [String] = []
        for r in reports {
            for e in r.entries {
                if let earlier = byID[e.jobID] {
                    duplicates.append("\(e.jobID) (\(earlier.1) and \(label(r)))")
                } else {
                    byID[e.jobID] = (e, label(r))
                }
            }
        }
        guard duplicates.isEmpty else {
            throw BatchError.cannotMerge(detail: "jobs reported twice: \(duplicates.joined(separator: ", "))")
        }
        let known = Set(jobs.map(\.id))
        let unknown = byID.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw BatchError.cannotMerge(detail: "jobs not in the manifest: \(unknown.joined(separator: ", "))")
        }
        let missing = jobs.map(\.id).filter { byID[$0] == nil }
        guard missing.isEmpty else {
            throw BatchError.cannotMerge(detail: "jobs missing from the shard reports: \(missing.joined(separator: ", "))")
        }
        // Gates re-checked against the manifest as it is now, as a rerun would.
        let entries = jobs.compactMap { job in
            byID[job.id].map { Entry(job: job, row: $0.0.row, resumed: $0.0.resumed) }
        }
        return BatchReport(manifestPath: first.manifestPath, shard: nil, toolVersion: first.toolVersion, entries: entries)
    }

    // MARK: Markdown

    public var markdown: String {
        var md = "# edgequant batch report\n\n"
        md += "Manifest `\(manifestPath)`, tool \(toolVersion)" + (shard.map { ", shard \($0)" } ?? "") + ".\n"
        var models: [String] = []
        for e in entries where !models.contains(e.model) { models.append(e.model) }
        for model in models {
            md += "\n## \(model)\n\n"
            md += "| type | size MB | bpw | PPL | ΔPPL % | mean KLD | p99 KLD | same top % | gates | sha256 |\n"
            md += "|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n"
            for e in entries where e.model == model {
                let r = e.row
                func f(_ v: Double?, _ format: String) -> String { v.map { String(format: format, $0) } ?? "–" }
                let gates: String
                switch e.status {
                case .passed: gates = "✓"
                case .failed, .error:
                    gates = "✗ " + e.gates.filter { !$0.passed }.map { markdownCell($0.description) }.joined(separator: "; ")
                }
                let cells = [
                    e.type + (r.simulated ? " (simulated)" : ""), f(r.sizeBytes.map { Double($0) / 1e6 }, "%.1f"), f(r.bpw, "%.2f"),
                    f(r.ppl, "%.4f"), f(r.pplDeltaPct, "%+.2f"), f(r.kldMean, "%.5f"), f(r.kldP99, "%.4f"), f(r.sameTopPct, "%.2f"),
                    gates, r.sha256.map { "`\($0.prefix(12))`" } ?? "–",
                ]
                md += "| " + cells.joined(separator: " | ") + " |\n"
            }
        }
        md += "\n" + summary + "\n"
        return md
    }

    /// `6 jobs, 4 passed, 2 failed: smollm2/q4_0 (max_kld 0.62 > 0.5), …`.
    public var summary: String {
        let bad = entries.filter { $0.status != .passed }
        var s = "\(entries.count) job\(entries.count == 1 ? "" : "s"), \(entries.count - bad.count) passed, \(bad.count) failed"
        if !bad.isEmpty {
            s += ": " + bad.map { e in
                "\(e.jobID) (\(e.gates.filter { !$0.passed }.map(\.description).joined(separator: ", ")))"
            }.joined(separator: ", ")
        }
        if !pending.isEmpty { s += "; \(pending.count) not finished: \(pending.joined(separator: ", "))" }
        return s
    }
}

/// Error messages may hold `|` or newlines, which would break the table row.
private func markdownCell(_ s: String) -> String {
    s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
}
