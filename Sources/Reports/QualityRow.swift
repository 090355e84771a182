import Foundation
import StrictJSON

/// One quantization type measured against the unquantized reference: what `compare` prints per
/// row and `batch` records per job. Optional fields are absent when the step that gives them did
/// not run or failed (`error` says which).
public struct QualityRow: Sendable, Equatable {
    /// The requested type as the user spelled it in lower case (`q4_k_m`, `nf4`).
    public var type: String
    /// Measured in memory, not from a file llama.cpp loads (nf4: bitsandbytes NF4 has no GGUF type).
    public var simulated = false
    /// The unquantized model the others are measured against (its KLD is 0 by definition).
    public var reference = false
    public var sizeBytes: Int?
    /// Bits per weight over all tensor data of the file (header and metadata excluded), as llama.cpp reports it.
    public var bpw: Double?
    public var ppl: Double?
    public var pplStderr: Double?
    /// Perplexity increase over the reference, in percent.
    public var pplDeltaPct: Double?
    public var kldMean: Double?
    public var kldP99: Double?
    public var sameTopPct: Double?
    /// Seconds to quantize from the checkpoint (timing: differs between runs).
    public var quantizeSeconds: Double?
    /// Evaluation throughput (timing: differs between runs).
    public var evalTokensPerSecond: Double?
    /// The GGUF written, when kept.
    public var path: String?
    public var sha256: String?
    public var error: String?

    public init(type: String) { self.type = type }

    /// JSON keys of the fields that vary between identical runs.
    public static let timingKeys: Set<String> = ["quantize_seconds", "eval_tokens_per_second"]

    public var json: JSONObject {
        var o = JSONObject()
        o.append("type", .string(type))
        if simulated { o.append("simulated", .bool(true)) }
        if reference { o.append("reference", .bool(true)) }
        func put(_ k: String, _ v: Double?) { if let v, v.isFinite { o.append(k, .double(v)) } }
        if let s = sizeBytes { o.append("size_bytes", .int(s)) }
        put("bpw", bpw)
        put("ppl", ppl); put("ppl_stderr", pplStderr); put("ppl_delta_pct", pplDeltaPct)
        put("kld_mean", kldMean); put("kld_p99", kldP99); put("same_top_pct", sameTopPct)
        put("quantize_seconds", quantizeSeconds); put("eval_tokens_per_second", evalTokensPerSecond)
        if let p = path { o.append("path", .string(p)) }
        if let s = sha256 { o.append("sha256", .string(s)) }
        if let e = error { o.append("error", .string(e)) }
        return o
    }

    /// The inverse of `json` (for reports read back by `batch --merge` and resumed runs).
    public init?(json v: JSONValue) {
        guard let t = v["type"]?.stringValue else { return nil }
        type = t
        simulated = v["simulated"]?.boolValue ?? false
        reference = v["reference"]?.boolValue ?? false
        sizeBytes = v["size_bytes"]?.intValue
        bpw = v["bpw"]?.doubleValue
        ppl = v["ppl"]?.doubleValue; pplStderr = v["ppl_stderr"]?.doubleValue; pplDeltaPct = v["ppl_delta_pct"]?.doubleValue
        kldMean = v["kld_mean"]?.doubleValue; kldP99 = v["kld_p99"]?.doubleValue; sameTopPct = v["same_top_pct"]?.doubleValue
        quantizeSeconds = v["quantize_seconds"]?.doubleValue; evalTokensPerSecond = v["eval_tokens_per_second"]?.doubleValue
        path = v["path"]?.stringValue; sha256 = v["sha256"]?.stringValue; error = v["error"]?.stringValue
    }
}
