import Foundation
import StrictJSON

/// Quality rows as the tables `compare` prints and `batch` reports: Markdown for people, CSV for
/// spreadsheets, JSON for programs. Rows keep the order they are given in.
public enum QualityTable {
    public enum Format: String, CaseIterable, Sendable {
        case md, csv, json
    }

    /// Largest file first (the reference, then the mildest quantization), failed rows last.
    public static func sortedBySize(_ rows: [QualityRow]) -> [QualityRow] {
        rows.enumerated().sorted { a, b in
            if a.element.reference != b.element.reference { return a.element.reference }
            switch (a.element.sizeBytes, b.element.sizeBytes) {
            case let (x?, y?) where x != y: return x > y
            case (nil, _?): return false
            case (_?, nil): return true
            default: return a.offset < b.offset
            }
        }.map(\.element)
    }

    public static func render(_ rows: [QualityRow], format: Format) -> String {
        switch format {
        case .md: markdown(rows)
        case .csv: csv(rows)
        case .json: json(rows)
        }
    }

    static let headers = ["type", "size (MB)", "bpw", "PPL", "ΔPPL %", "mean KLD", "p99 KLD", "same top %",
                          "quantize s", "eval tok/s"]

    static func cells(_ r: QualityRow) -> [String] {
        func f(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "–" }
        var name = r.type
        if r.reference { name += " (reference)" }
        if r.simulated { name += " (simulated)" }
        if r.error != nil { name += " (failed)" }
        let ppl = r.ppl.map { p in r.pplStderr.map { String(format: "%.4f ± %.4f", p, $0) } ?? String(format: "%.4f", p) } ?? "–"
        return [name, r.sizeBytes.map { String(format: "%.2f", Double($0) / 1e6) } ?? "–", f(r.bpw, "%.2f"), ppl,
                f(r.pplDeltaPct, "%+.3f"), f(r.kldMean, "%.6f"), f(r.kldP99, "%.5f"), f(r.sameTopPct, "%.2f"),
                f(r.quantizeSeconds, "%.1f"), f(r.evalTokensPerSecond, "%.0f")]
    }

    public static func markdown(_ rows: [QualityRow]) -> String {
        var lines = ["| " + headers.joined(separator: " | ") + " |",
                     "|" + headers.enumerated().map { $0.offset == 0 ? "---|" : "---:|" }.joined()]
        for r in rows { lines.append("| " + cells(r).map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |") }
        let failed = rows.filter { $0.error != nil }
        if !failed.isEmpty {
            lines.append("")
            for r in failed { lines.append("- \(r.type) failed: \(r.error!)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// RFC 4180: plain numbers (no units, no ±) so that spreadsheets read them as numbers.
    public static func csv(_ rows: [QualityRow]) -> String {
        let keys = ["type", "reference", "simulated", "size_bytes", "bpw", "ppl", "ppl_stderr", "ppl_delta_pct", "kld_mean",
                    "kld_p99", "same_top_pct", "quantize_seconds", "eval_tokens_per_second", "path", "error"]
        func quote(_ s: String) -> String {
            s.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var out = keys.joined(separator: ",") + "\r\n"
        for r in rows {
            let o = r.json
            let fields = keys.map { k -> String in
                switch o[k] {
                case .string(let s)?: return quote(s)
                case .bool(let b)?: return b ? "true" : "false"
                case let v?: return v.serialized()
                case nil: return k == "reference" || k == "simulated" ? "false" : ""
                }
            }
            out += fields.joined(separator: ",") + "\r\n"
        }
        return out
    }

    public static func json(_ rows: [QualityRow]) -> String {
        JSONValue.array(rows.map { .object($0.json) }).serialized(pretty: true) + "\n"
    }
}
