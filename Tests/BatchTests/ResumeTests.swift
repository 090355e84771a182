import Batch
import Foundation
import Reports
import Testing

@Suite struct ResumeTests {
    let version = "test 1"

    func run(_ m: Manifest, _ executor: FakeExecutor, shard: Shard? = nil, version: String? = nil) throws -> BatchReport {
        try BatchRunner().run(manifest: m, shard: shard, executor: executor, toolVersion: version ?? self.version)
    }

    @Test func firstRunExecutesAllAndRecordsThem() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        let ex = FakeExecutor()
        let report = try run(m, ex)
        #expect(ex.executed == m.jobs.map(\.id))
        #expect(report.entries.map(\.jobID) == m.jobs.map(\.id))
        #expect(report.entries.allSatisfy { !$0.resumed && $0.status == .passed })
        #expect(report.pending.isEmpty)
        for (job, entry) in zip(m.jobs, report.entries) {
            let sha = try FileHash.sha256(path: job.outputPath)
            #expect(entry.row.sha256 == sha)
            #expect(entry.row.sizeBytes == "GGUF fake \(job.id)".utf8.count)
            #expect(entry.row.path == "\(job.modelName)/\(job.modelName)-\(job.type.uppercased()).gguf")
            // sha256sum format, so `sha256sum -c` checks it from the model's directory
            let sidecar = try String(contentsOfFile: job.outputPath + ".sha256", encoding: .utf8)
            #expect(sidecar == "\(sha)  \((job.outputPath as NSString).lastPathComponent)\n")
            #expect(JobRecord.read(path: job.recordPath)?.row == entry.row)
        }
        let written = try BatchReport.read(path: f.path("out/report.json"))
        #expect(written == report)
        #expect(FileManager.default.fileExists(atPath: f.path("out/report.md")))
    }

    @Test func secondRunSkipsEverything() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        let first = try run(m, FakeExecutor())
        var lines: [String] = []
        let ex = FakeExecutor()
        let second = try BatchRunner().run(manifest: m, shard: nil, executor: ex, toolVersion: version) { lines.append($0) }
        #expect(ex.executed.isEmpty)
        #expect(second.entries.allSatisfy { $0.resumed })
        #expect(second.entries.map(\.row) == first.entries.map(\.row))
        #expect(lines.contains("[1/6] skip alpha/q8_0 (up to date)"))
    }

    @Test func changedEvalTextRerunsAll() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        _ = try run(m, FakeExecutor())
        try f.write("data/eval.txt", "A different evaluation text.\n")
        let ex = FakeExecutor()
        _ = try run(m, ex)
        #expect(ex.executed == m.jobs.map(\.id))
    }

    @Test func changedCheckpointRerunsOnlyThatModel() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        _ = try run(m, FakeExecutor())
        // A small file changed in content only: caught by its full hash, whatever its mtime.
        try f.write("models/beta/config.json", #"{"architectures": ["LlamaForCausalLM"], "name": "BETA"}"#)
        let ex = FakeExecutor()
        _ = try run(m, ex)
        #expect(ex.executed == ["beta/q8_0", "beta/q4_k_m", "beta/q4_0"])
    }

    @Test func toolVersionChangeRerunsAll() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        _ = try run(m, FakeExecutor())
        let ex = FakeExecutor()
        _ = try run(m, ex, version: "test 2")
        #expect(ex.executed.count == 6)
    }

    @Test func deletedRecordRerunsOnlyThatJob() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        _ = try run(m, FakeExecutor())
        try FileManager.default.removeItem(atPath: m.jobs[4].recordPath)
        let ex = FakeExecutor()
        let report = try run(m, ex)
        #expect(ex.executed == [m.jobs[4].id])
        #expect(report.entries.map(\.resumed) == [true, true, true, true, false, true])
    }

    @Test func damagedOutputsRerun() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        _ = try run(m, FakeExecutor())
        let jobs = m.jobs
        // Same size, other bytes, new mtime: found by re-hashing because the mtime moved.
        let original = try Data(contentsOf: URL(fileURLWithPath: jobs[0].outputPath))
        var bytes = [UInt8](original)
        bytes[bytes.count - 1] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: jobs[0].outputPath))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: jobs[0].outputPath)
        try FileManager.default.removeItem(atPath: jobs[1].outputPath)
        try "0000  \((jobs[2].outputPath as NSString).lastPathComponent)\n".write(toFile: jobs[2].checksumPath, atomically: true, encoding: .utf8)
        // Touched but unchanged: re-hashed, found equal, kept.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: jobs[3].outputPath)
        let ex = FakeExecutor()
        _ = try run(m, ex)
        #expect(ex.executed == [jobs[0].id, jobs[1].id, jobs[2].id])
    }

    @Test func killedRunResumesWithTheUnfinished() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        let killed = FakeExecutor(interruptAfter: 2)
        #expect(throws: BatchInterrupted.self) { _ = try run(m, killed) }
        #expect(killed.executed == ["alpha/q8_0", "alpha/q4_k_m"])
        // The report left behind is readable and says what is unfinished.
        let partial = try BatchReport.read(path: f.path("out/report.json"))
        #expect(partial.entries.map(\.jobID) == ["alpha/q8_0", "alpha/q4_k_m"])
        #expect(partial.pending == ["alpha/q4_0", "beta/q8_0", "beta/q4_k_m", "beta/q4_0"])
        #expect(!partial.passed)

        let rerun = FakeExecutor()
        let report = try run(m, rerun)
        #expect(rerun.executed == ["alpha/q4_0", "beta/q8_0", "beta/q4_k_m", "beta/q4_0"])
        #expect(report.entries.map(\.resumed) == [true, true, false, false, false, false])
        #expect(report.pending.isEmpty && report.passed)
    }

    @Test func failedJobIsRecordedAsErrorAndRetried() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        let ex = FakeExecutor()
        ex.failing = ["alpha/q4_k_m"]
        let report = try run(m, ex)
        // The batch goes on past a failing job.
        #expect(ex.executed == m.jobs.map(\.id))
        #expect(report.entries[1].status == .error)
        #expect(report.failures == ["alpha/q4_k_m: error: unsupported architecture for alpha/q4_k_m"])
        #expect(!FileManager.default.fileExists(atPath: m.jobs[1].recordPath))
        let retry = FakeExecutor()
        _ = try run(m, retry)
        #expect(retry.executed == ["alpha/q4_k_m"])
    }

    @Test func gatesAndThreadsAreNotPartOfTheHash() throws {
        let f = try Fixture()
        _ = try run(try f.manifest(Fixture.twoByThree), FakeExecutor())
        let stricter = Fixture.twoByThree.replacingOccurrences(of: "max_kld: 0.5", with: "max_kld: 0.001") + "\nthreads: 3\n"
        let m = try f.manifest(stricter)
        let ex = FakeExecutor()
        let report = try run(m, ex)
        #expect(ex.executed.isEmpty)
        // Re-checked against the new gates without measuring again.
        #expect(report.entries.filter { $0.status == .failed }.map(\.jobID) == ["alpha/q8_0", "alpha/q4_k_m", "alpha/q4_0"])
    }

    @Test func planSaysWhatWouldRun() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        #expect(try BatchRunner().plan(manifest: m, shard: nil, toolVersion: version).allSatisfy { $0.willRun && $0.reason == "not run yet" })
        _ = try run(m, FakeExecutor(), shard: Shard(parsing: "1/2"))
        let plan = try BatchRunner().plan(manifest: m, shard: nil, toolVersion: version)
        #expect(plan.map(\.willRun) == [false, true, false, true, false, true])
        // A dry run writes nothing.
        #expect(!FileManager.default.fileExists(atPath: f.path("out/report.json")))
    }

    @Test func settingsHashIgnoresWeightContentButNotWeightSize() throws {
        let f = try Fixture()
        let m = try f.manifest(Fixture.twoByThree)
        let job = m.jobs[0]
        let h0 = try settingsHash(job: job, toolVersion: version)
        #expect(try settingsHash(job: job, manifest: m, toolVersion: version) == h0)
        #expect(try settingsHash(job: m.jobs[1], toolVersion: version) != h0)
        try f.write("models/alpha/model-00002.safetensors", "more weights")
        #expect(try settingsHash(job: job, toolVersion: version) != h0)
    }

    @Test func fileHashStreamsLargeFiles() throws {
        let f = try Fixture()
        try Data().write(to: URL(fileURLWithPath: f.path("empty.bin")))
        #expect(try FileHash.sha256(path: f.path("empty.bin")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // Larger than one read and not a multiple of it; checked against sha256sum where there is one.
        let data = Data((0..<((1 << 20) * 2 + 123)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try data.write(to: URL(fileURLWithPath: f.path("big.bin")))
        let streamed = try FileHash.sha256(path: f.path("big.bin"))
        #expect(streamed.count == 64)
        let tool = Process()
        tool.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tool.arguments = ["sha256sum", f.path("big.bin")]
        let pipe = Pipe()
        tool.standardOutput = pipe
        tool.standardError = FileHandle.nullDevice
        try tool.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        tool.waitUntilExit()
        if tool.terminationStatus == 0 { #expect(out.hasPrefix(streamed + " ")) }
    }
}
