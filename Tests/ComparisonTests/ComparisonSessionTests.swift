import Batch
import Calibration
import Comparison
import Foundation
import Reports
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// The session `compare` and `batch` run, on a tiny seeded checkpoint: the reference once, then
/// each type quantized from the checkpoint and measured against it.
@Suite struct ComparisonSessionTests {
    func session(_ calibration: CalibrationSource = .none) -> (ComparisonSession, String) {
        let dir = NSTemporaryDirectory() + "eq-cmp-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let s = ComparisonSession(modelDir: fixtures + "/eval/eval-llama",
                                  eval: EvalSettings(text: fixtures + "/tokenizer/wiki-eval-20k.txt", ctx: 64, chunks: 4),
                                  threads: 2, calibration: calibration, referenceLogits: dir + "/reference.logits")
        return (s, dir)
    }

    @Test func referenceThenTypesOrderedByError() throws {
        let (s, dir) = session()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try s.chunkCount() == 4)
        try s.prepareReference(reuse: false)
        let ref = try #require(s.referenceRow)
        #expect(ref.reference && ref.type == "bf16" && (ref.ppl ?? 0) > 1 && ref.kldMean == 0)
        let q8 = try s.measure(type: "q8_0", output: nil, keep: false)
        let q4 = try s.measure(type: "q4_0", output: nil, keep: false)
        let nf4 = try s.measure(type: "nf4", output: nil, keep: false)
        for r in [q8, q4, nf4] { #expect(r.error == nil, "\(r.type): \(r.error ?? "")") }
        let k8 = try #require(q8.kldMean), k4 = try #require(q4.kldMean)
        #expect(k8 >= 0 && k8 < k4)
        #expect((q8.sizeBytes ?? 0) > (q4.sizeBytes ?? .max))
        #expect(nf4.simulated && nf4.kldMean != nil)
        // the reference log-probs are reused when they match
        try s.prepareReference(reuse: true)
        let bad = try s.measure(type: "q9_9", output: nil, keep: false)
        #expect(bad.error != nil)
    }

    /// --calibrate through the session: the importance matrix (and GPTQ) from a calibration text.
    @Test func calibratedTypeIsMeasured() throws {
        let (s, dir) = session(.calibrate(fixtures + "/calibration/calib.txt"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try s.prepareReference(reuse: false)
        let r = try s.measure(type: "q4_k_m", output: dir, keep: true)
        #expect(r.error == nil, "\(r.error ?? "")")
        #expect(r.path.map { FileManager.default.fileExists(atPath: $0) } == true)
        #expect((r.kldMean ?? -1) >= 0)
    }

    /// --budgets: one calibration, then per budget a planned mix within it beside the largest
    /// llama-quantize type that fits the same bytes.
    @Test func budgetsPlanWithinTheBytesBesideTheTypeThatFits() throws {
        let (s, dir) = session(.calibrate(fixtures + "/calibration/calib.txt"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try s.prepareReference(reuse: false)
        var settings = CalibrationSettings(text: fixtures + "/calibration/calib.txt", chunks: 4, ctx: 64, sensitivityChunks: 1, gptqChunks: 2)
        settings.sensitivityFile = dir + "/sens.json"
        var lines: [String] = []
        let rows = try s.measureBudgets([5.5, 7], text: settings.text, settings: settings, keepDir: dir, log: { lines.append($0) })
        #expect(rows.count == 2)
        for r in rows {
            #expect(r.ours.error == nil, "\(r.ours.error ?? "")")
            #expect(r.targetBytes > 0 && (r.ours.sizeBytes ?? .max) <= r.targetBytes)
            let l = try #require(r.llama)
            #expect(l.error == nil && (l.sizeBytes ?? .max) <= r.targetBytes)
            #expect(r.ours.kldMean != nil && r.kldGainPct != nil)
        }
        // a larger budget buys a larger file and a lower KLD
        #expect((rows[0].ours.sizeBytes ?? 0) < (rows[1].ours.sizeBytes ?? 0))
        #expect((rows[0].ours.kldMean ?? 0) > (rows[1].ours.kldMean ?? 1))
        #expect(lines.filter { $0.contains("mix measured") }.count == 2)
        // the plan measured beside the llama-quantize mixes that fit, and the written one named
        #expect(lines.filter { $0.hasPrefix("calibrate: measured the plan") && $0.contains("mix") && $0.contains("; writing ") }.count == 2)
        // the first plan competes with what the check measured for it (not measured again)
        let checked = lines.filter { $0.contains("first plan's mix measured") }
        let chosen = lines.filter { $0.hasPrefix("calibrate: measured the plan") }
        for (c, m) in zip(checked, chosen) {
            let value = c.components(separatedBy: "measured ")[1].prefix { $0 != " " }
            #expect(m.hasPrefix("calibrate: measured the plan \(value),") || m.contains(", the first plan \(value),"), "\(c) / \(m)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/plan-5.50bpw.gguf"))
        let md = BudgetRow.render(rows, format: .md)
        #expect(md.contains("5.50 bpw") && md.contains(rows[0].llama!.type))
        let csv = BudgetRow.render(rows, format: .csv).split(separator: "\n")
        #expect(csv.count == 3 && csv[0].hasPrefix("budget_bpw,"))
    }
}
