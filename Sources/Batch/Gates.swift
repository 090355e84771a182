import Foundation
import Reports
import StrictJSON

/// Quality limits a measured row must meet. nil: no limit on that measure.
public struct Gates: Sendable, Equatable, CustomStringConvertible {
    public var maxKLD: Double?
    public var maxPPLIncreasePct: Double?
    /// Megabytes of 10^6 bytes, as file sizes are quoted on model hubs.
    public var maxSizeMB: Double?
    public var minSameTopPct: Double?

    public init(maxKLD: Double? = nil, maxPPLIncreasePct: Double? = nil, maxSizeMB: Double? = nil, minSameTopPct: Double? = nil) {
        self.maxKLD = maxKLD; self.maxPPLIncreasePct = maxPPLIncreasePct; self.maxSizeMB = maxSizeMB; self.minSameTopPct = minSameTopPct
    }

    /// The manifest keys, in the order results are listed.
    public static let keys = ["max_kld", "max_ppl_increase_pct", "max_size_mb", "min_same_top_pct"]

    public var isEmpty: Bool { self == Gates() }

    /// These gates with `base` filling the keys this one leaves unset.
    public func merged(over base: Gates) -> Gates {
        Gates(maxKLD: maxKLD ?? base.maxKLD, maxPPLIncreasePct: maxPPLIncreasePct ?? base.maxPPLIncreasePct,
              maxSizeMB: maxSizeMB ?? base.maxSizeMB, minSameTopPct: minSameTopPct ?? base.minSameTopPct)
    }

    /// Every set gate checked against the row. A row that failed to measure fails as a whole (gate
    /// "error"): its missing values say nothing about the quantization.
    public func evaluate(_ row: QualityRow) -> [GateResult] {
        if let e = row.error {
            return [GateResult(name: "error", limit: nil, value: nil, passed: false, detail: e)]
        }
        var out: [GateResult] = []
        func check(_ name: String, _ limit: Double?, _ value: Double?, atMost: Bool) {
            guard let limit else { return }
            let passed = value.map { atMost ? $0 <= limit : $0 >= limit } ?? false
            out.append(GateResult(name: name, limit: limit, value: value, passed: passed))
        }
        check("max_kld", maxKLD, row.kldMean, atMost: true)
        check("max_ppl_increase_pct", maxPPLIncreasePct, row.pplDeltaPct, atMost: true)
        check("max_size_mb", maxSizeMB, row.sizeBytes.map { Double($0) / 1e6 }, atMost: true)
        check("min_same_top_pct", minSameTopPct, row.sameTopPct, atMost: false)
        return out
    }

    /// `max_kld ≤ 0.4, min_same_top_pct ≥ 60`, or `none`.
    public var description: String {
        let parts = zip(Gates.keys, [maxKLD, maxPPLIncreasePct, maxSizeMB, minSameTopPct]).compactMap { k, v in
            v.map { "\(k) \(k.hasPrefix("max_") ? "≤" : "≥") \(formatGateNumber($0))" }
        }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    public var json: JSONObject {
        var o = JSONObject()
        for (k, v) in zip(Gates.keys, [maxKLD, maxPPLIncreasePct, maxSizeMB, minSameTopPct]) {
            if let v { o.append(k, .double(v)) }
        }
        return o
    }
}

/// One gate checked against one row.
public struct GateResult: Sendable, Equatable, CustomStringConvertible {
    /// The manifest key (`max_kld`), or `error` when the row could not be measured.
    public var name: String
    public var limit: Double?
    /// nil: the row lacks the measure (which fails the gate).
    public var value: Double?
    public var passed: Bool
    /// For the `error` gate: the row's error message.
    public var detail: String?

    public init(name: String, limit: Double?, value: Double?, passed: Bool, detail: String? = nil) {
        self.name = name; self.limit = limit; self.value = value; self.passed = passed; self.detail = detail
    }

    /// `max_kld 0.62 > 0.5`, `min_same_top_pct 55.1 < 60`, `max_kld: not measured (limit 0.5)`, `error: …`.
    public var description: String {
        if name == "error" { return "error: \(detail ?? "failed")" }
        let limitText = limit.map(formatGateNumber) ?? "?"
        guard let value else { return "\(name): not measured (limit \(limitText))" }
        let isMax = name.hasPrefix("max_")
        let op = passed ? (isMax ? "≤" : "≥") : (isMax ? ">" : "<")
        return "\(name) \(formatGateNumber(value)) \(op) \(limitText)"
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.append("name", .string(name))
        o.append("limit", limit.map { .double($0) } ?? .null)
        o.append("value", value.flatMap { $0.isFinite ? .double($0) : nil } ?? .null)
        o.append("passed", .bool(passed))
        if let detail { o.append("detail", .string(detail)) }
        return .object(o)
    }

    public init?(json v: JSONValue) {
        guard let name = v["name"]?.stringValue, let passed = v["passed"]?.boolValue else { return nil }
        self.init(name: name, limit: v["limit"]?.doubleValue, value: v["value"]?.doubleValue, passed: passed,
                  detail: v["detail"]?.stringValue)
    }
}

/// Four significant digits: enough to see why a gate failed without drowning the line.
func formatGateNumber(_ d: Double) -> String {
    String(format: "%.4g", d)
}
