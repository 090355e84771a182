import Calibration
import Conversion
import Foundation
import GGMLCore
import Inference
import MappedIO
import Reports
import StrictJSON

/// One size budget of `compare --budgets`: our planned mix at that budget, and the llama-quantize
/// file type a user would otherwise pick — the best of the largest that fit (those within 2% of
/// the largest's size) — written with the same importance matrix (byte-identically to
/// llama-quantize) and measured on the same chunks.
public struct BudgetRow: Sendable {
    /// Bits per weight over all weights (the `--target-bpw` value).
    public var bpw: Double
    /// The whole file's byte budget the bits come to.
    public var targetBytes: Int
    public var ours: QualityRow
    /// nil when no llama-quantize file type fits the budget.
    public var llama: QualityRow?
    /// No mix of the candidate types fits (the rows' lengths rule out the smallest types): not a
    /// failure of the run, a fact about the model.
    public var tooSmall = false

    /// How much lower our mean KLD is than the llama-quantize type's, in percent.
    public var kldGainPct: Double? {
        guard let a = ours.kldMean, let b = llama?.kldMean, b > 0 else { return nil }
        return 100 * (1 - a / b)
    }

    public var json: JSONObject {
        var o = JSONObject()
        o.append("budget_bpw", .double(bpw))
        o.append("target_bytes", .int(targetBytes))
        o.append("ours", .object(ours.json))
        if let l = llama { o.append("llama_quantize", .object(l.json)) }
        if let g = kldGainPct { o.append("kld_lower_pct", .double(g)) }
        if tooSmall { o.append("too_small", .bool(true)) }
        return o
    }

    public static func render(_ rows: [BudgetRow], format: QualityTable.Format) -> String {
        func f(_ v: Double?, _ spec: String) -> String { v.map { String(format: spec, $0) } ?? "-" }
        func mb(_ v: Int?) -> String { v.map { String(format: "%.2f", Double($0) / 1e6) } ?? "-" }
        switch format {
        case .json:
            return JSONValue.array(rows.map { .object($0.json) }).serialized(pretty: true) + "\n"
        case .csv:
            var out = "budget_bpw,target_bytes,ours_types,ours_bytes,ours_bpw,ours_kld,ours_ppl,llama_type,llama_bytes,llama_bpw,llama_kld,llama_ppl,kld_lower_pct\n"
            for r in rows {
                let l = r.llama
                out += [String(r.bpw), String(r.targetBytes), r.ours.type, r.ours.sizeBytes.map(String.init) ?? "",
                        f(r.ours.bpw, "%.4f"), f(r.ours.kldMean, "%.6f"), f(r.ours.ppl, "%.4f"), l?.type ?? "",
                        l?.sizeBytes.map(String.init) ?? "", f(l?.bpw, "%.4f"), f(l?.kldMean, "%.6f"), f(l?.ppl, "%.4f"),
                        f(r.kldGainPct, "%.1f")].map { $0 == "-" ? "" : $0 }.joined(separator: ",") + "\n"
            }
            return out
        case .md:
            var out = "| budget | ours: MB | bpw | mean KLD | PPL | llama-quantize type that fits | MB | bpw | mean KLD | PPL | KLD lower |\n"
            out += "|---|---|---|---|---|---|---|---|---|---|---|\n"
            for r in rows {
                let l = r.llama
                let ours = r.tooSmall ? "nothing fits" : r.ours.error.map { "failed: \($0)" } ?? f(r.ours.kldMean, "%.5f")
                out += "| \(String(format: "%.2f", r.bpw)) bpw | \(mb(r.ours.sizeBytes)) | \(f(r.ours.bpw, "%.2f")) | \(ours) | \(f(r.ours.ppl, "%.3f")) "
                out += "| \(l?.type ?? "none fits") | \(mb(l?.sizeBytes)) | \(f(l?.bpw, "%.2f")) | "
                out += (l?.error.map { "failed: \($0)" } ?? f(l?.kldMean, "%.5f"))
                out += " | \(f(l?.ppl, "%.3f")) | \(f(r.kldGainPct, "%.0f%%")) |\n"
            }
            return out
        }
    }
}

extension ComparisonSession {
    /// The llama-quantize file types `compare --budgets` measures ours against: every one we write
    /// byte-identically (the floats excepted).
    public static var budgetFileTypes: [LlamaFileType] {
        LlamaFileType.allCases.filter { ![.allF32, .mostlyF16, .mostlyBF16].contains($0) }
    }

    /// For each budget (bits per weight): our planned mix and the largest llama-quantize file type
    /// that fits, both measured. Calibration (importance matrix, GPTQ's second moments, the
    /// sensitivities) runs once on `text`; each budget only plans, checks its mix, and writes.
    public func measureBudgets(_ budgets: [Double], text: String, settings: CalibrationSettings? = nil, keepDir: String? = nil,
                               log: @escaping (String) -> Void = { _ in }, progress: @escaping (String) -> Void = { _ in }) throws -> [BudgetRow] {
        var opts = settings ?? CalibrationSettings(text: text)
        opts.text = text
        opts.budget = nil
        opts.measureSensitivity = true
        let base = QuantizationPolicy.Options()
        let sizing = ConvertTarget.llamaQuantize(.mostlyQ4_K_M)
        func fileSize(_ types: [String: GGMLType], _ im: ImatrixData?) throws -> Int {
            Calibrate.fileSize(try sizing.plan(directory: modelDir, directoryName: directoryName, preTokenizer: nil,
                                               options: Calibrate.withTypes(types, base), imatrix: im).plan)
        }
        events.phase("calibrate", "")
        let result = try Calibrate.run(model: modelDir, opts: opts, threads: threads, log: log, progress: progress, fileSize: fileSize)
        let q = result.quantization(text: text, base: base, threads: threads)
        useCalibration(imatrix: q.imatrix, encoder: q.encoder)
        guard let sens = result.sensitivity else { return [] }
        let importance = result.imatrix.allQuantWeights()

        // every llama-quantize file type's size with this importance matrix, smallest first
        var sizes: [(LlamaFileType, Int)] = []
        for f in Self.budgetFileTypes {
            if let p = try? ConvertTarget.llamaQuantize(f).plan(directory: modelDir, directoryName: directoryName, preTokenizer: nil,
                                                                 imatrix: q.imatrix).plan {
                sizes.append((f, Calibrate.fileSize(p)))
            }
        }
        sizes.sort { $0.1 < $1.1 }
        var llamaRows: [LlamaFileType: QualityRow] = [:]
        var rows: [BudgetRow] = []
        for bpw in budgets {
            let label = String(format: "plan %.2f bpw", bpw)
            var ours = QualityRow(type: label)
            var target = 0
            var tooSmall = false
            do {
                let p = try Calibrate.checkedPlan(sens, result.sensitivities, budget: .bitsPerWeight(bpw), importance: importance,
                                                  model: modelDir, fileSize: { try fileSize($0, q.imatrix) },
                                                  fileTypeMix: { f in
                                                      Calibrate.tensorTypes(try ConvertTarget.llamaQuantize(f).plan(
                                                          directory: self.modelDir, directoryName: self.directoryName, preTokenizer: nil,
                                                          options: Calibrate.withImatrix(base), imatrix: nil).plan)
                                                  }, say: log, progress: progress)
                target = p.target
                let f = p.dominantType.flatMap { QuantizationPolicy.fileType(mostly: $0) } ?? .mostlyQ4_K_M
                let out = keepDir.map { ($0 as NSString).appendingPathComponent(String(format: "plan-%.2fbpw.gguf", bpw)) }
                ours = try measure(target: .llamaQuantize(f), label: label, options: Calibrate.withTypes(p.types, base), output: out, keep: keepDir != nil)
                ours.type = label
            } catch let e as any FileFault where e.isWriteFault {
                throw e
            } catch let e as CalibrationError {
                if case .budgetTooSmall = e { tooSmall = true }
                ours.error = "\(e)"
            } catch {
                ours.error = "\(error)"
            }
            var row = BudgetRow(bpw: bpw, targetBytes: target, ours: ours)
            row.tooSmall = tooSmall
            // the largest type that fits, and any within 2% of its size (several file types come to
            // the same bytes where rows rule out 256-blocks): the best of them is the row
            if target > 0, let largest = sizes.last(where: { $0.1 <= target })?.1 {
                var best: QualityRow?
                for (f, size) in sizes where size <= target && Double(size) >= 0.98 * Double(largest) {
                    if llamaRows[f] == nil {
                        llamaRows[f] = try measure(type: f.name.lowercased(), output: keepDir, keep: keepDir != nil, gptq: false)
                    }
                    let r = llamaRows[f]!
                    if best == nil || (r.kldMean ?? .infinity) < (best!.kldMean ?? .infinity) { best = r }
                }
                row.llama = best
            }
            rows.append(row)
        }
        return rows
    }
}
