import Batch
import Foundation
import MappedIO
import Reports
import Testing

/// Writes each job's GGUF through `OutputFile`, as the real executor does.
final class WritingExecutor: JobExecutor {
    func execute(_ job: Job, log: @escaping (String) -> Void) throws -> QualityRow {
        let out = try OutputFile(path: job.outputPath)
        let bytes = Array("GGUF fake \(job.id)".utf8) + [UInt8](repeating: 0, count: 4096)
        try out.setSize(bytes.count)
        try out.write(bytes, at: 0)
        try out.commit()
        var row = QualityRow(type: job.type)
        row.kldMean = 0.01
        return row
    }
}

@Suite struct IOFaultTests {
    static let oneModel = """
        output: out
        eval: {text: data/eval.txt, ctx: 128}
        types: [q8_0, q4_0]
        gates: {max_kld: 0.5}
        models:
          - path: models/alpha
        """

    @Test func fullDiskStopsTheBatchInsteadOfFailingAGate() throws {
        let f = try Fixture()
        let m = try f.manifest(Self.oneModel)
        let modelDir = f.path("out/alpha")
        try FileManager.default.createDirectory(atPath: modelDir, withIntermediateDirectories: true)
        OutputFaults.shared.install(.init(directory: modelDir, errno: ENOSPC, capacity: 100))
        defer { OutputFaults.shared.remove(directory: modelDir) }
        do {
            _ = try BatchRunner().run(manifest: m, shard: nil, executor: WritingExecutor(), toolVersion: "t")
            Issue.record("a full disk did not stop the batch")
        } catch let e as BatchInterrupted {
            // the CLI prints it as one `edgequant: error:` line and exits 1
            #expect(e.description.contains("alpha/q8_0"))
            #expect(e.description.contains(String(cString: strerror(ENOSPC))))
            #expect(!e.description.contains("\n"))
        }
        #expect(entries(modelDir).isEmpty, "left behind: \(entries(modelDir))")
        // the partial report lists both jobs as pending, none as failed
        let report = try BatchReport.read(path: f.path("out/report.json"))
        #expect(report.entries.isEmpty)
        #expect(report.pending == ["alpha/q8_0", "alpha/q4_0"])
        #expect(report.failures.isEmpty)
    }

    @Test func readOnlyOutputStopsTheBatch() throws {
        let f = try Fixture()
        let m = try f.manifest(Self.oneModel)
        let modelDir = f.path("out/alpha")
        try FileManager.default.createDirectory(atPath: modelDir, withIntermediateDirectories: true)
        OutputFaults.shared.install(.init(directory: modelDir, errno: EROFS))
        defer { OutputFaults.shared.remove(directory: modelDir) }
        #expect(throws: BatchInterrupted.self) {
            _ = try BatchRunner().run(manifest: m, shard: nil, executor: WritingExecutor(), toolVersion: "t")
        }
    }

    @Test func aJobThatCannotBeDoneIsStillAFailedRow() throws {
        let f = try Fixture()
        let m = try f.manifest(Self.oneModel)
        let ex = FakeExecutor()
        ex.failing = ["alpha/q4_0"]
        let report = try BatchRunner().run(manifest: m, shard: nil, executor: ex, toolVersion: "t")
        #expect(report.entries.map(\.status) == [.passed, .error])
    }

    @Test func runRemovesTheTempFilesOfAKilledRun() throws {
        let f = try Fixture()
        let m = try f.manifest(Self.oneModel)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let dead = p.processIdentifier
        _ = try BatchRunner().run(manifest: m, shard: nil, executor: WritingExecutor(), toolVersion: "t")
        let left = [OutputFile.tempName(for: f.path("out/alpha/alpha-Q8_0.gguf"), pid: dead),
                    OutputFile.tempName(for: f.path("out/.edgequant/jobs/alpha-q4_0.json"), pid: dead),
                    OutputFile.tempName(for: f.path("out/report.json"), pid: dead)]
        for l in left { _ = FileManager.default.createFile(atPath: l, contents: Data(count: 10)) }
        // every job up to date: nothing is written into out/alpha or the records, and still they are swept
        let ex = FakeExecutor()
        _ = try BatchRunner().run(manifest: m, shard: nil, executor: ex, toolVersion: "t")
        #expect(ex.executed.isEmpty)
        for l in left { #expect(!FileManager.default.fileExists(atPath: l), "\(l) left") }
    }

    @Test func fifoEvalTextIsAManifestError() throws {
        let f = try Fixture()
        try FileManager.default.removeItem(atPath: f.path("data/eval.txt"))
        #expect(mkfifo(f.path("data/eval.txt"), 0o644) == 0)
        let e = try f.manifestError(Self.oneModel)
        #expect(e?.description.contains("is a FIFO") == true, "\(String(describing: e))")
    }
}

func entries(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}
