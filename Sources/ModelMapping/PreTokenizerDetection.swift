import StrictJSON

/// Chooses `tokenizer.ggml.pre` from what the tokenizer *does* — its pre-tokenizer pipeline and
/// normalizer in `tokenizer.json` — rather than from a hash of its output on a probe string, which
/// changes with every vocabulary. Where several known tokenizers share one pipeline, marker
/// tokens of their vocabularies break the tie.
public enum PreTokenizerDetection {
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    public static let knownNames = ["gpt-2", "smollm", "starcoder", "refact", "llama-bpe", "qwen2"]

    /// A canonical one-line description of the pipeline, e.g. `Digits(individual)+ByteLevel(regex)`.
    public static func describe(_ tj: JSONObject) -> String {
        var parts: [String] = []
        func visit(_ p: JSONValue) {
            switch p["type"]?.stringValue {
            case "Sequence": for q in p["pretokenizers"]?.arrayValue ?? [] { visit(q) }
            case "ByteLevel":
                let regex = p["use_regex"]?.boolValue ?? true
                let prefix = p["add_prefix_space"]?.boolValue ?? false
                parts.append("ByteLevel(\(regex ? "regex" : "noregex")\(prefix ? ",prefix" : ""))")
            case "Digits":
                parts.append("Digits(\(p["individual_digits"]?.boolValue == true ? "individual" : "grouped"))")
            case "Split":
                let pat = p["pattern"]?["Regex"]?.stringValue ?? p["pattern"]?["String"]?.stringValue ?? "?"
                let name = pat == llama3Regex ? "llama3" : pat == qwen2Regex ? "qwen2" : "custom"
                parts.append("Split(\(name),\(p["behavior"]?.stringValue ?? "?"))")
            case let t?: parts.append(t)
            case nil: parts.append("none")
            }
        }
        if let p = tj["pre_tokenizer"], !p.isNull { visit(p) } else { parts.append("none") }
        var d = parts.joined(separator: "+")
        if let n = tj["normalizer"], !n.isNull { d += " normalizer=\(n["type"]?.stringValue ?? "?")" }
        return d
    }

    public static func detect(_ tj: JSONObject, tokens: [String]) -> String? {
        let d = describe(tj)
        switch d {
        case "ByteLevel(regex)":
            return "gpt-2"
        case "Digits(individual)+ByteLevel(regex)":
            // SmolLM2, StarCoder and Refact share this pipeline; their special tokens differ.
            // SmolLM's vocabulary starts with chat tokens; StarCoder's and Refact's with FIM tokens,
            // Refact's also holding <empty_output> (which SmolLM inherited too, hence the order).
            let set = Set(tokens.prefix(64))
            if set.contains("<|im_start|>") { return "smollm" }
            if set.contains("<fim_prefix>") { return set.contains("<empty_output>") ? "refact" : "starcoder" }
            return nil
        case "Split(llama3,Isolated)+ByteLevel(noregex)":
            return "llama-bpe"
        case "Split(qwen2,Isolated)+ByteLevel(noregex) normalizer=NFC":
            return "qwen2"
        default:
            return nil
        }
    }
}
