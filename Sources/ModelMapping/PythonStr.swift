import Foundation
import GGUFWriter
import StrictJSON

// MARK: - Python str semantics

/// The bits of CPython's str methods and `re` (Unicode, IGNORECASE) the heuristics rely on,
/// on Unicode scalars (Python indexes code points).
enum Py {
    static func string<S: Sequence<Unicode.Scalar>>(_ s: S) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s)
        return String(v)
    }

    /// str.isspace
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// str.isdecimal / re `\d`
    static func isDecimal(_ c: Unicode.Scalar) -> Bool { c.properties.numericType == .decimal }

    /// str.isalpha
    static func isAlpha(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// re `\w`: str.isalnum() or "_"
    static func isWord(_ c: Unicode.Scalar) -> Bool {
        c == "_" || isAlpha(c) || c.properties.numericType != nil
    }

    /// str.islower
    static func isLower(_ s: [Unicode.Scalar]) -> Bool {
        var cased = false
        for c in s {
            let p = c.properties
            if p.isUppercase || p.generalCategory == .titlecaseLetter { return false }
            if p.isLowercase { cased = true }
        }
        return cased
    }

    /// str.title
    static func title(_ s: [Unicode.Scalar]) -> String {
        var out = ""
        var previousIsCased = false
        for c in s {
            out += previousIsCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
            previousIsCased = c.properties.isCased
        }
        return out
    }

    static func upper(_ s: String) -> String { s.unicodeScalars.map { $0.properties.uppercaseMapping }.joined() }
    static func lower(_ s: String) -> String { s.unicodeScalars.map { $0.properties.lowercaseMapping }.joined() }

    /// str.strip()
    static func strip(_ s: String) -> String {
        let a = Array(s.unicodeScalars)
        guard let first = a.firstIndex(where: { !isSpace($0) }), let last = a.lastIndex(where: { !isSpace($0) }) else { return "" }
        return string(a[first...last])
    }

    /// str.split()
    static func split(_ s: String) -> [String] {
        Array(s.unicodeScalars).split(whereSeparator: isSpace).map { string($0) }
    }

    /// str.replace(old, new) for a single-scalar `old`.
    static func replace(_ s: String, _ old: Unicode.Scalar, _ new: Unicode.Scalar) -> String {
        string(s.unicodeScalars.map { $0 == old ? new : $0 })
    }

    /// float(s) for what the size heuristic can produce: `\d+(\.\d*)?` or `\.\d+` (any Unicode
    /// decimal digits, as Python accepts); nil where Python raises ValueError.
    static func float(_ s: ArraySlice<Unicode.Scalar>) -> Double? {
        var ascii = ""
        var digits = 0
        var dots = 0
        for c in s {
            if c == "." { dots += 1; ascii.append("."); continue }
            guard isDecimal(c), let v = c.properties.numericValue else { return nil }
            digits += 1
            ascii.append(Character(String(Int(v))))
        }
        guard digits > 0, dots <= 1 else { return nil }
        return Double(ascii)
    }

    /// One scalar against one ASCII letter under re.IGNORECASE (including the special folds
    /// Python applies: İ ı ~ i, K (Kelvin) ~ k, ſ ~ s).
    static func ci(_ c: Unicode.Scalar, _ letter: Character) -> Bool {
        guard let a = letter.asciiValue else { return false }
        let lower = a | 0x20
        if c.value == UInt32(lower) || c.value == UInt32(lower & ~0x20) { return true }
        switch lower {
        case UInt8(ascii: "i"): return c.value == 0x130 || c.value == 0x131
        case UInt8(ascii: "k"): return c.value == 0x212A
        case UInt8(ascii: "s"): return c.value == 0x17F
        default: return false
        }
    }

    static func ciEquals(_ s: [Unicode.Scalar], _ word: String) -> Bool {
        let w = Array(word)
        return s.count == w.count && zip(s, w).allSatisfy { ci($0, $1) }
    }

    static func ciPrefix(_ s: [Unicode.Scalar], _ word: String) -> Bool {
        let w = Array(word)
        return s.count >= w.count && zip(s, w).allSatisfy { ci($0, $1) }
    }
}
