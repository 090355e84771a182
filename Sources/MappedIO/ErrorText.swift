/// A name or value taken from a file, made fit for a one-line error: control characters and
/// quotes escaped, and anything longer than `limit` characters cut in the middle with `…`, so a
/// 1 MB key or a multi-line YAML scalar cannot flood or break the line that reports it.
public func displayName(_ s: some StringProtocol, limit: Int = 80) -> String {
    var out = ""
    for ch in s.unicodeScalars {
        switch ch {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        default:
            if ch.value < 0x20 || ch.value == 0x7f || (0x80..<0xa0).contains(ch.value) || ch.value == 0x2028 || ch.value == 0x2029 {
                out += "\\u{\(String(ch.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(ch)
            }
        }
    }
    guard out.count > limit, limit >= 3 else { return out }
    let keep = limit - 1
    return String(out.prefix(keep - keep / 2)) + "…" + String(out.suffix(keep / 2))
}

/// A whole error message made one line: control characters escaped (quotes kept as they are, since
/// messages quote names themselves) and the total capped, so no file content can break it.
public func oneLine(_ s: String, limit: Int = 1000) -> String {
    var out = ""
    for ch in s.unicodeScalars {
        if ch.value < 0x20 || ch.value == 0x7f || ch.value == 0x85 || ch.value == 0x2028 || ch.value == 0x2029 {
            out += ch == "\n" ? "\\n" : ch == "\r" ? "\\r" : ch == "\t" ? "\\t" : "\\u{\(String(ch.value, radix: 16))}"
        } else {
            out.unicodeScalars.append(ch)
        }
    }
    return out.count > limit ? String(out.prefix(limit - 1)) + "…" : out
}
