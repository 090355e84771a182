import Batch
import MappedIO
import Foundation
import Reports
import StrictJSON
import Testing

@Suite struct ShardTests {
    @Test func parsing() {
        #expect(Shard(parsing: "1/2") == Shard(index: 1, count: 2))
        #expect(Shard(parsing: "3/3")?.description == "3/3")
        for bad in ["0/2", "3/2", "1/0", "-1/2", "a/b", "1/2/3", "12", "", "/2"] {
            #expect(Shard(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func shardsCoverEveryJobExactlyOnce() throws {
        let f = try Fixture()
        let m = try f.manifest("""
            output: out
            eval: {text: data/eval.txt}
            types: [f16, q8_0, q6_k, q5_k_m, q4_k_m, q4_0, q3_k_m]
            models:
              - path: models/alpha
              - path: models/beta
              - {path: models/alpha, name: alpha-again, types: [q2_k, nf4]}
            """)
        let jobs = m.jobs
        #expect(jobs.count == 16)
        for n in 1...20 {
            let shards = (1...n).map { Shard(index: $0, count: n)!.select(jobs) }
            let all = shards.flatMap { $0 }.map(\.id)
            #expect(all.sorted() == jobs.map(\.id).sorted(), "n=\(n)")
            #expect(Set(all).count == all.count, "n=\(n)")
            // Balanced: shard sizes differ by at most one.
            let sizes = shards.map(\.count)
            #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1, "n=\(n)")
            // Each shard keeps the manifest's order.
            for s in shards {
                let positions = s.map { j in jobs.firstIndex(of: j) ?? -1 }
                #expect(positions == positions.sorted())
            }
        }
        #expect(Shard(index: 1, count: 2)!.select(jobs).map(\.id).prefix(3) == ["alpha/f16", "alpha/q6_k", "alpha/q4_k_m"])
    }
}

@Suite struct GateTests {
    func row(kld: Double? = 0.1, delta: Double? = 5, size: Int? = 50_000_000, sameTop: Double? = 90) -> QualityRow {
        var r = QualityRow(type: "q4_0")
        r.kldMean = kld; r.pplDeltaPct = delta; r.sizeBytes = size; r.sameTopPct = sameTop
        return r
    }

    @Test func eachGateChecksItsMeasure() {
        let g = Gates(maxKLD: 0.5, maxPPLIncreasePct: 10, maxSizeMB: 60, minSameTopPct: 80)
        #expect(g.evaluate(row()).allSatisfy { $0.passed })
        #expect(g.evaluate(row()).map(\.name) == Gates.keys)
        let bad = g.evaluate(row(kld: 0.62, delta: 12.5, size: 61_000_000, sameTop: 55.1))
        #expect(bad.map(\.description) == ["max_kld 0.62 > 0.5", "max_ppl_increase_pct 12.5 > 10", "max_size_mb 61 > 60",
                                           "min_same_top_pct 55.1 < 80"])
        // At the limit passes.
        #expect(Gates(maxKLD: 0.1).evaluate(row(kld: 0.1)).first?.passed == true)
        // Unset gates are not checked.
        #expect(Gates().evaluate(row(kld: 99)).isEmpty)
    }

    @Test func missingValueFails() {
        let r = Gates(maxKLD: 0.5).evaluate(row(kld: nil))
        #expect(r == [GateResult(name: "max_kld", limit: 0.5, value: nil, passed: false)])
        #expect(r[0].description == "max_kld: not measured (limit 0.5)")
    }

    @Test func errorRowFailsAsAWhole() {
        var r = row()
        r.error = "out of memory"
        let results = Gates(maxKLD: 0.5).evaluate(r)
        #expect(results.map(\.name) == ["error"])
        #expect(results.map(\.passed) == [false])
        #expect(results[0].description == "error: out of memory")
    }

    @Test func failingGateIsNamedInTheReport() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        let ex = FakeExecutor()
        ex.kld = ["alpha/q4_0": 0.62, "beta/q4_k_m": 0.341]
        let report = try BatchRunner().run(manifest: m, shard: nil, executor: ex, toolVersion: "t")
        #expect(report.entries.map(\.status) == [.passed, .passed, .failed, .passed, .failed, .passed])
        #expect(!report.passed)
        #expect(report.failures == ["alpha/q4_0: max_kld 0.62 > 0.5", "beta/q4_k_m: max_kld 0.341 > 0.2"])
        #expect(report.summary == "6 jobs, 4 passed, 2 failed: alpha/q4_0 (max_kld 0.62 > 0.5), beta/q4_k_m (max_kld 0.341 > 0.2)")
        let md = try String(contentsOfFile: f.path("out/report.md"), encoding: .utf8)
        #expect(md.contains("## alpha"))
        #expect(md.contains("## beta"))
        #expect(md.contains("| q4_0 |"))
        #expect(md.contains("✗ max_kld 0.62 > 0.5"))
        #expect(md.contains("`\(report.entries[0].row.sha256?.prefix(12) ?? "-")`"))
        #expect(md.hasSuffix(report.summary + "\n"))
        let json = try JSONParser.parse(String(contentsOfFile: f.path("out/report.json"), encoding: .utf8))
        #expect(json["summary"]?["failed"]?.intValue == 2)
        #expect(json["entries"]?.arrayValue?[2]["gates"]?.arrayValue?.first?["value"]?.doubleValue == 0.62)
    }
}

@Suite struct MergeTests {
    /// A full run, then the same jobs as two shards (records wiped so they really run again).
    func fullAndShards() throws -> (full: BatchReport, shards: [BatchReport], manifest: Manifest, fixture: Fixture) {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        let ex = FakeExecutor()
        ex.kld = ["beta/q4_0": 0.3]
        let full = try BatchRunner().run(manifest: m, shard: nil, executor: ex, toolVersion: "t")
        try FileManager.default.removeItem(atPath: f.path("out/.edgequant"))
        var shards: [BatchReport] = []
        for i in 1...2 {
            let sx = FakeExecutor()
            sx.kld = ex.kld
            _ = try BatchRunner().run(manifest: m, shard: Shard(index: i, count: 2), executor: sx, toolVersion: "t")
            #expect(sx.executed.count == 3)
            // Read back from disk: what --merge sees.
            shards.append(try BatchReport.read(path: f.path("out/report.shard-\(i)-of-2.json")))
        }
        #expect(FileManager.default.fileExists(atPath: f.path("out/report.shard-2-of-2.md")))
        return (full, shards, m, f)
    }

    @Test func mergedEqualsSingleRunButTiming() throws {
        let (full, shards, m, _) = try fullAndShards()
        #expect(shards.map(\.shard) == ["1/2", "2/2"])
        let merged = try BatchReport.merge(shards.reversed(), jobs: m.jobs)
        #expect(merged.shard == nil)
        #expect(merged.entries.map(\.jobID) == m.jobs.map(\.id))
        #expect(merged.jsonWithoutTiming == full.jsonWithoutTiming)
        #expect(merged.withoutTiming() == full.withoutTiming())
        #expect(merged.jsonWithoutTiming.serialized(pretty: true) == full.jsonWithoutTiming.serialized(pretty: true))
        // Timing really differs, so the comparison above is not vacuous.
        #expect(merged.json != full.json)
        #expect(merged.failures == full.failures)
        #expect(merged.failures == ["beta/q4_0: max_kld 0.3 > 0.2"])
    }

    @Test func reportJSONRoundTrips() throws {
        let (full, _, _, f) = try fullAndShards()
        #expect(try BatchReport(json: full.json) == full)
        #expect(try BatchReport(json: JSONParser.parse(full.json.serialized(pretty: true))) == full)
        _ = f
    }

    @Test func mergeRefusesDuplicatesAndGaps() throws {
        let (_, shards, m, _) = try fullAndShards()
        do {
            _ = try BatchReport.merge([shards[0], shards[1], shards[0]], jobs: m.jobs)
            Issue.record("duplicate shards merged")
        } catch {
            #expect("\(error)".contains("jobs reported twice: alpha/q8_0 (shard 1/2 and shard 1/2)"), "\(error)")
        }
        do {
            _ = try BatchReport.merge([shards[1]], jobs: m.jobs)
            Issue.record("a missing shard merged")
        } catch {
            #expect("\(error)".contains("jobs missing from the shard reports: alpha/q8_0, alpha/q4_0, beta/q4_k_m"), "\(error)")
        }
        var unfinished = shards[0]
        unfinished.pending = ["beta/q4_k_m"]
        #expect(throws: BatchError.self) { _ = try BatchReport.merge([unfinished, shards[1]], jobs: m.jobs) }
        var other = shards[1]
        other.toolVersion = "t2"
        #expect(throws: BatchError.self) { _ = try BatchReport.merge([shards[0], other], jobs: m.jobs) }
        #expect(throws: BatchError.self) { _ = try BatchReport.merge(shards, jobs: Array(m.jobs.dropLast())) }
    }

    @Test func shardFileNames() {
        #expect(BatchReport.baseName(shard: nil) == "report")
        #expect(BatchReport.baseName(shard: "3/8") == "report.shard-3-of-8")
    }
}
