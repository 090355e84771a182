import ArgumentParser
import Batch
import Foundation
import ModelMapping
import StrictJSON

struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Quantize models to many types from a manifest, measure each and check quality gates.",
        usage: "edgequant batch MANIFEST [REPORT ...] [--shard i/n | --merge] [<options>]",
        discussion: """
        MANIFEST (YAML) names the checkpoint directories, the types, the evaluation text, optional \
        calibration and the output directory, and quality gates (max_kld, max_ppl_increase_pct, \
        max_size_mb, min_same_top_pct) at the top level, per model or per type:

          output: out
          eval: {text: data/wiki-eval.txt, ctx: 512, chunks: 20}
          types: [q8_0, q4_k_m, q4_0]
          gates: {max_kld: 0.5, max_size_mb: 200}
          models:
            - path: models/SmolLM2-135M-Instruct
              types: [q8_0, {type: q4_0, gates: {max_kld: 0.4}}]

        Writes <output>/<model>/<model>-<TYPE>.gguf, a .sha256 beside each, and report.json + \
        report.md. Rerunning skips jobs whose inputs and settings are unchanged (records in \
        <output>/.edgequant) and redoes unfinished ones, so a killed run just continues.

        --shard i/n runs every n-th job (CI matrices); --merge joins the shard reports \
        (<output>/report.shard-*-of-*.json unless REPORT files are given) into report.json.

        Exit status: 0 all gates passed, 3 a gate failed (the failing jobs are named on stderr), \
        1 any other error (a bad manifest is reported as file:line:column; a full or read-only disk \
        stops the batch with exit 1, the jobs not done left for the rerun).

        Examples:
          edgequant batch models.yaml --dry-run
          edgequant batch models.yaml --shard 2/4 --threads 8
          edgequant batch models.yaml --merge
          edgequant batch models.yaml --merge \\
              shard1/report.shard-1-of-2.json shard2/report.shard-2-of-2.json
        """
    )

    /// Part of every job's settings hash: bump it when quantized files or measurements change, so
    /// reruns redo outputs an older edgequant made.
    static let toolVersion = "edgequant batch 1"

    @Argument(help: "The batch manifest (YAML).") var manifest: String
    @Argument(help: ArgumentHelp("Shard reports to merge (with --merge; default: <output>/report.shard-*-of-*.json).", valueName: "REPORT"))
    var reports: [String] = []
    @Option(help: ArgumentHelp("Run only this shard's share of the jobs (1 ≤ i ≤ n).", valueName: "i/n")) var shard: String?
    @Flag(name: .customLong("dry-run"), help: "Print the jobs and whether each would run or is up to date; change nothing.")
    var dryRun = false
    @Flag(help: "Join shard reports into <output>/report.json and .md instead of running.") var merge = false
    @Option(help: "Worker threads (default: the manifest's, else all cores).") var threads: Int?
    @Flag(help: "No progress on stderr.") var quiet = false
    @Flag(help: "Print the report (or the plan) as JSON on stdout.") var json = false

    func validate() throws {
        if let s = shard, Shard(parsing: s) == nil { throw ValidationError("--shard \(s): expected i/n with 1 ≤ i ≤ n, e.g. 2/4") }
        if merge && (shard != nil || dryRun) { throw ValidationError("--merge joins finished shards: it takes no --shard or --dry-run") }
        if !merge && !reports.isEmpty { throw ValidationError("REPORT files are for --merge; got \(reports.joined(separator: " "))") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let report: BatchReport
        do {
            let m = try Manifest.load(path: manifest, checkFiles: !merge)  // a merge runner need not hold the inputs
            if dryRun { return try printPlan(m) }
            report = merge ? try mergeReports(m) : try runJobs(m)
        } catch {
            fail(error)
        }
        if json {
            print(report.json.serialized(pretty: true))
        } else {
            print(report.summary)
        }
        let failures = report.failures
        if !failures.isEmpty {
            for f in failures { writeStderr("gate failed: \(f)\n") }
            throw ExitCode(3)
        }
    }

    func runJobs(_ m: Manifest) throws -> BatchReport {
        installSignalCleanup()
        // a FIFO among a model's files is refused now, not waited on in the middle of the batch
        for path in Set(m.jobs.map(\.modelPath)).sorted() { try ModelFiles.preflight(path) }
        let executor = makeBatchExecutor(threads: threads ?? m.threads, quiet: quiet)
        let quiet = self.quiet
        let report = try BatchRunner().run(manifest: m, shard: shard.flatMap(Shard.init(parsing:)), executor: executor,
                                           toolVersion: Self.toolVersion) { line in
            if !quiet { writeStderr(line + "\n") }
        }
        if !quiet {
            writeStderr("wrote \((m.output as NSString).appendingPathComponent(BatchReport.baseName(shard: report.shard))).json and .md\n")
        }
        return report
    }

    func mergeReports(_ m: Manifest) throws -> BatchReport {
        var paths = reports
        if paths.isEmpty {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: m.output)) ?? []
            paths = names.filter { $0.hasPrefix("report.shard-") && $0.hasSuffix(".json") && $0.contains("-of-") }
                .sorted { $0.localizedStandardCompare($1) == .orderedAscending }
                .map { (m.output as NSString).appendingPathComponent($0) }
            guard !paths.isEmpty else {
                throw ValidationError("no shard reports (report.shard-*-of-*.json) in \(m.output); run with --shard i/n first or name them")
            }
        }
        let merged = try BatchReport.merge(try paths.map(BatchReport.read(path:)), jobs: m.jobs)
        try merged.write(toDirectory: m.output)
        if !quiet {
            writeStderr("merged \(paths.count) report\(paths.count == 1 ? "" : "s") into "
                        + "\((m.output as NSString).appendingPathComponent("report")).json and .md\n")
        }
        return merged
    }

    func printPlan(_ m: Manifest) throws {
        let plan = try BatchRunner().plan(manifest: m, shard: shard.flatMap(Shard.init(parsing:)), toolVersion: Self.toolVersion)
        if json {
            print(JSONValue.array(plan.map { p in
                .obj([
                    "id": .string(p.job.id), "output": .string(p.job.outputPath), "will_run": .bool(p.willRun),
                    "reason": .string(p.reason), "gates": .object(p.job.gates.json),
                ])
            }).serialized(pretty: true))
            return
        }
        for p in plan {
            print("\(p.willRun ? "run " : "skip") \(p.job.id) → \(p.job.outputPath) (\(p.reason); gates: \(p.job.gates))")
        }
        let n = plan.filter(\.willRun).count
        print("\(plan.count) job\(plan.count == 1 ? "" : "s"): \(n) to run, \(plan.count - n) up to date")
    }
}
