import Foundation
import MappedIO
import Yams

// README.md front matter, read as gguf-py's `Metadata.load_model_card` reads it: the lines between a
// first line `---` and the next `---` (Python's universal newlines and str.splitlines), the
// "Norway problem" hack (`- no\n` → `- "no"\n`) and tab → two spaces as plain string replaces,
// then `yaml.safe_load`. The YAML itself is parsed by libyaml through Yams — PyYAML and libyaml
// implement the same YAML 1.1 grammar — and plain scalars are typed by PyYAML's implicit
// resolvers (`YAML.resolvePlain`), which are not YAML 1.2's.
//
// Where the two parsers part, the card is refused with one line rather than read differently: a
// mapping with a repeated key (PyYAML keeps the last, libyaml through Yams refuses), and explicit
// tags other than !!str / !!map / !!seq. An explicit !!str on a plain scalar is typed like an
// untagged one (Yams does not keep the difference).

/// A parsed YAML value, as far as the naming metadata needs it.
indirect enum YAMLNode {
    case null
    case string(String)
    /// A plain scalar PyYAML resolves to bool / int / float / timestamp / merge / value.
    case scalar(String)
    case sequence([YAMLNode])
    case mapping([(key: String, value: YAMLNode)])
    /// YAML whose Python value the naming code does not take (a tagged value, a non-string key).
    case unsupported(String)
}

/// The top-level mapping of README.md's YAML front matter (`Metadata.load_model_card`).
struct FrontMatter {
    private var entries: [String: YAMLNode] = [:]

    init(readme: String) throws(ModelNamingError) {
        // open(..., encoding="utf-8").read(): universal newlines; then str.splitlines()
        var lines: [[Unicode.Scalar]] = []
        var cur: [Unicode.Scalar] = []
        let s = Array(readme.unicodeScalars)
        var i = 0
        var pendingLine = false
        while i < s.count {
            let c = s[i]
            switch c.value {
            case 0x0D, 0x0A, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
                lines.append(cur); cur = []; pendingLine = false
                if c.value == 0x0D, i + 1 < s.count, s[i + 1].value == 0x0A { i += 1 }
            default:
                cur.append(c); pendingLine = true
            }
            i += 1
        }
        if pendingLine { lines.append(cur) }
        guard let first = lines.first, first == Array("---".unicodeScalars) else { return }
        var content = ""
        for line in lines.dropFirst() {
            if line == Array("---".unicodeScalars) { break }
            content.unicodeScalars.append(contentsOf: line)
            content.unicodeScalars.append("\n")
        }
        content = content.replacingOccurrences(of: "- no\n", with: "- \"no\"\n", options: .literal)
            .replacingOccurrences(of: "\t", with: "  ", options: .literal)
        var documents: [Node] = []
        do {
            // the sequence stops at a parse error and keeps it aside
            var docs = try Yams.compose_all(yaml: content, .basic)
            while let d = docs.next() { documents.append(d) }
            if let e = docs.error { throw e }
        } catch YamlError.duplicatedKeysInMapping(let keys, _) {
            throw ModelNamingError("README.md front matter: repeated key \(keys.map { "'\($0)'" }.joined(separator: ", ")) "
                                   + "(PyYAML would keep the last; refused rather than guessed)")
        } catch {
            // Yams: "L:C: error: what\nwhy:\n<the line>\n^" — the first two lines say it; lines
            // count from the one after the opening ---
            let text = "\(error)".split(separator: "\n").prefix(2).joined(separator: " ")
            throw ModelNamingError("README.md front matter: \(oneLine(text, limit: 300))")
        }
        guard documents.count <= 1 else { throw ModelNamingError("README.md front matter: more than one YAML document") }
        guard let root = documents.first, case .mapping(let top) = root else { return } // None, a scalar or a list
        for (k, v) in top {
            // PyYAML types keys too: `1: x` has the int key 1, which no lookup by name finds
            guard case .string(let key) = YAML.node(k) else { continue }
            entries[key] = YAML.node(v)
        }
    }

    subscript(key: String) -> YAMLNode? { entries[key] }
}

enum YAML {
    static let str = "tag:yaml.org,2002:str", map = "tag:yaml.org,2002:map", seq = "tag:yaml.org,2002:seq"

    /// A Yams node as PyYAML's safe_load would type it. Composed with Resolver.basic, an untagged
    /// node keeps the empty (implicit) tag; a quoted scalar gets !!str; PyYAML's implicit typing of
    /// the plain ones is done here.
    static func node(_ n: Node) -> YAMLNode {
        switch n {
        case .scalar(let s):
            // an untagged plain scalar shows the empty tag, or !!str once Yams has resolved it (for
            // hashing), so an explicit !!str on a plain scalar cannot be told apart and is typed too
            switch s.tag.description {
            case "", str: return s.style == .plain ? resolvePlain(s.string) : .string(s.string)
            case let t: return .unsupported("tagged value \(t)")
            }
        case .sequence(let q):
            guard q.tag.description == "" || q.tag.description == seq else { return .unsupported("tagged sequence \(q.tag.description)") }
            return .sequence(q.map(node))
        case .mapping(let m):
            guard m.tag.description == "" || m.tag.description == map else { return .unsupported("tagged mapping \(m.tag.description)") }
            var pairs: [(key: String, value: YAMLNode)] = []
            for (k, v) in m {
                guard case .string(let name) = node(k) else {
                    return .unsupported("a key that is not a string")
                }
                pairs.append((name, node(v)))
            }
            return .mapping(pairs)
        case .alias:
            return .unsupported("an unresolved alias")
        }
    }

    // MARK: scalar resolution (PyYAML's YAML 1.1 implicit resolvers)

    /// Python truthiness of a non-string value: False, 0, 0.0, [] and {} are falsy.
    static func isFalsy(_ node: YAMLNode) -> Bool {
        switch node {
        case .null: return true
        case .string(let s): return s.isEmpty
        case .sequence(let a): return a.isEmpty
        case .mapping(let m): return m.isEmpty
        case .unsupported: return false
        case .scalar(let t):
            if ["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"].contains(t) { return true }
            var u = Array(t.utf8)[...]
            if let f = u.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { u = u.dropFirst() }
            guard let f = u.first, digit(f) || f == UInt8(ascii: ".") else { return false } // bools, timestamps...
            let a = Array(t.utf8)
            if isTimestamp(a) { return false }
            if u.count >= 2, u[u.startIndex] == UInt8(ascii: "0"), u[u.startIndex + 1] == UInt8(ascii: "b") || u[u.startIndex + 1] == UInt8(ascii: "x") {
                u = u.dropFirst(2)
            }
            if isFloat(a), let e = u.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) { u = u[..<e] }
            if [".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"].contains(String(decoding: u, as: UTF8.self)) { return false }
            return u.allSatisfy { $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") }
        }
    }

    static func resolvePlain(_ s: String) -> YAMLNode {
        switch s {
        case "", "~", "null", "Null", "NULL": return .null
        case "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
             "on", "On", "ON", "off", "Off", "OFF", "<<", "=":
            return .scalar(s)
        default: break
        }
        let u = Array(s.utf8)
        guard u.count == s.unicodeScalars.count else { return .string(s) } // non-ASCII: a string
        if isInt(u) || isFloat(u) || isTimestamp(u) { return .scalar(s) }
        return .string(s)
    }

    private static func digit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// `[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ |
    ///  [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+`
    private static func isInt(_ u: [UInt8]) -> Bool {
        var s = u[...]
        if let f = s.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { s = s.dropFirst() }
        guard let f = s.first else { return false }
        func all(_ t: ArraySlice<UInt8>, _ ok: (UInt8) -> Bool) -> Bool { !t.isEmpty && t.allSatisfy(ok) }
        if f == UInt8(ascii: "0") {
            if s.count == 1 { return true }
            let t = s.dropFirst()
            if t.first == UInt8(ascii: "b") { return all(t.dropFirst()) { $0 == 0x30 || $0 == 0x31 || $0 == 0x5F } }
            if t.first == UInt8(ascii: "x") {
                return all(t.dropFirst()) { digit($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) || $0 == 0x5F }
            }
            return all(t) { (0x30...0x37).contains($0) || $0 == 0x5F }
        }
        guard digit(f), f != UInt8(ascii: "0") else { return false }
        var i = s.startIndex + 1
        while i < s.endIndex, digit(s[i]) || s[i] == 0x5F { i += 1 }
        if i == s.endIndex { return true }
        return sexagesimalTail(s[i...])
    }

    /// `(?::[0-5]?[0-9])+` to the end.
    private static func sexagesimalTail(_ t: ArraySlice<UInt8>) -> Bool {
        var i = t.startIndex
        var groups = 0
        while i < t.endIndex {
            guard t[i] == UInt8(ascii: ":") else { return false }
            i += 1
            var n = 0
            while i < t.endIndex, digit(t[i]), n < 2 { i += 1; n += 1 }
            guard n >= 1 else { return false }
            if n == 2 && t[i - 2] > UInt8(ascii: "5") { return false }
            groups += 1
        }
        return groups > 0
    }

    /// PyYAML's float regex.
    private static func isFloat(_ u: [UInt8]) -> Bool {
        let str = String(decoding: u, as: UTF8.self)
        if [".nan", ".NaN", ".NAN"].contains(str) { return true }
        var s = u[...]
        if let f = s.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { s = s.dropFirst() }
        if [".inf", ".Inf", ".INF"].contains(String(decoding: s, as: UTF8.self)) { return true }
        func exponentOK(_ t: ArraySlice<UInt8>) -> Bool {
            // (?:[eE][-+][0-9]+)?
            if t.isEmpty { return true }
            guard t.count >= 3, t.first == UInt8(ascii: "e") || t.first == UInt8(ascii: "E") else { return false }
            let sign = t[t.startIndex + 1]
            guard sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") else { return false }
            return t.dropFirst(2).allSatisfy(digit)
        }
        // \.[0-9][0-9_]*(exp)?  (no sign allowed)
        if u.first == UInt8(ascii: "."), u.count >= 2, digit(u[1]) {
            var i = 2
            while i < u.count, digit(u[i]) || u[i] == 0x5F { i += 1 }
            if exponentOK(u[i...]) { return true }
        }
        guard let f = s.first, digit(f) else { return false }
        var i = s.startIndex + 1
        while i < s.endIndex, digit(s[i]) || s[i] == 0x5F { i += 1 }
        if i < s.endIndex, s[i] == UInt8(ascii: ".") {
            // [0-9][0-9_]*\.[0-9_]*(exp)?
            var j = i + 1
            while j < s.endIndex, digit(s[j]) || s[j] == 0x5F { j += 1 }
            return exponentOK(s[j...])
        }
        // [0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        guard let dot = s[i...].firstIndex(of: UInt8(ascii: ".")) else { return false }
        guard sexagesimalTail(s[i..<dot]) else { return false }
        return s[(dot + 1)...].allSatisfy { digit($0) || $0 == 0x5F }
    }

    /// PyYAML's timestamp regex.
    private static func isTimestamp(_ u: [UInt8]) -> Bool {
        var i = 0
        func digits(_ min: Int, _ max: Int) -> Bool {
            var n = 0
            while i < u.count, digit(u[i]), n < max { i += 1; n += 1 }
            return n >= min
        }
        func lit(_ c: Character) -> Bool {
            guard i < u.count, u[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        guard digits(4, 4), lit("-") else { return false }
        let afterYear = i
        if digits(2, 2), lit("-"), digits(2, 2), i == u.count { return true }
        i = afterYear
        guard digits(1, 2), lit("-"), digits(1, 2) else { return false }
        if i < u.count, u[i] == UInt8(ascii: "T") || u[i] == UInt8(ascii: "t") {
            i += 1
        } else {
            let s0 = i
            while i < u.count, u[i] == 0x20 || u[i] == 0x09 { i += 1 }
            guard i > s0 else { return false }
        }
        guard digits(1, 2), lit(":"), digits(2, 2), lit(":"), digits(2, 2) else { return false }
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            while i < u.count, digit(u[i]) { i += 1 }
        }
        if i == u.count { return true }
        while i < u.count, u[i] == 0x20 || u[i] == 0x09 { i += 1 }
        if lit("Z") { return i == u.count }
        guard i < u.count, u[i] == UInt8(ascii: "-") || u[i] == UInt8(ascii: "+") else { return false }
        i += 1
        guard digits(1, 2) else { return false }
        if i < u.count, u[i] == UInt8(ascii: ":") {
            i += 1
            guard digits(2, 2) else { return false }
        }
        return i == u.count
    }
}
