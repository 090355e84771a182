import Foundation
import GGUFWriter
import StrictJSON

// MARK: - Heuristics

extension ModelNaming {
    /// The result of `Metadata.get_model_id_components`.
    public struct IDComponents: Sendable, Equatable {
        public var fullName: String?
        public var organization: String?
        public var basename: String?
        public var finetune: String?
        public var version: String?
        public var sizeLabel: String?

        public init(fullName: String? = nil, organization: String? = nil, basename: String? = nil,
                    finetune: String? = nil, version: String? = nil, sizeLabel: String? = nil) {
            self.fullName = fullName; self.organization = organization; self.basename = basename
            self.finetune = finetune; self.version = version; self.sizeLabel = sizeLabel
        }
    }

    mutating func fillFromID(_ id: String, totalParams: Int) {
        let c = ModelNaming.modelIDComponents(id, totalParams: totalParams)
        if name == nil, let n = c.fullName { name = ModelNaming.idToTitle(n) }
        if organization == nil, let o = c.organization { organization = ModelNaming.idToTitle(o) }
        if basename == nil, let b = c.basename { basename = b }
        if finetune == nil, let f = c.finetune { finetune = f }
        if version == nil, let v = c.version { version = v }
        if sizeLabel == nil, let s = c.sizeLabel { sizeLabel = s }
    }

    /// gguf-py `Metadata.id_to_title`.
    public static func idToTitle(_ string: String) -> String {
        let words = Py.split(Py.replace(Py.strip(string), "-", " "))
        return words.map { w -> String in
            let s = Array(w.unicodeScalars)
            if Py.isLower(s) && !titleExempt(s) { return Py.title(s) }
            return w
        }.joined(separator: " ")
    }

    /// `re.match(r'^(v\d+(?:\.\d+)*|\d.*)$', w)` for a word without whitespace.
    private static func titleExempt(_ w: [Unicode.Scalar]) -> Bool {
        guard let first = w.first else { return false }
        if Py.isDecimal(first) { return true }
        if first == "v" { return dottedDigits(w[1...]) }
        return false
    }

    /// `\d+([.]\d+)*` over the whole slice.
    private static func dottedDigits(_ s: ArraySlice<Unicode.Scalar>) -> Bool {
        guard !s.isEmpty else { return false }
        var sawDigit = false
        for c in s {
            if c == "." {
                if !sawDigit { return false }
                sawDigit = false
            } else if Py.isDecimal(c) {
                sawDigit = true
            } else {
                return false
            }
        }
        return sawDigit
    }

    private enum Kind: Hashable { case basename, sizeLabel, finetune, version, type }

    /// gguf-py `Metadata.get_model_id_components`.
    public static func modelIDComponents(_ modelID: String?, totalParams: Int) -> IDComponents {
        guard let modelID else { return IDComponents() }
        let id = Array(modelID.unicodeScalars)
        if id.contains(" ") { return IDComponents(fullName: modelID) }

        var org: [Unicode.Scalar]?
        let full: [Unicode.Scalar]
        if let slash = id.firstIndex(of: "/") {
            org = Array(id[..<slash])
            full = Array(id[(slash + 1)...])
        } else {
            full = id
        }
        if let o = org, let f = o.first, f == "." { org = nil }

        var parts: [[Unicode.Scalar]] = full.split(separator: "-", omittingEmptySubsequences: true).map(Array.init)
        var types: [Set<Kind>] = Array(repeating: [], count: parts.count)

        for i in parts.indices {
            var part = parts[i]
            if isVersionPart(part) {
                types[i].insert(.version)
            } else if isQuantTypePart(part) {
                types[i].insert(.type)
                parts[i] = Array(Py.upper(Py.string(part)).unicodeScalars)
            } else if i > 0 && isSizePart(part) {
                part = part.map { $0 == "_" ? "." : $0 }
                if let last = part.last, Py.isDecimal(last) {
                    // weird bloom-7b1 notation: part[:-2] + "." + part[-1] + part[-2]
                    let n = part.count
                    var p = Array(part[..<max(n - 2, 0)])
                    p.append(".")
                    p.append(part[n - 1])
                    if n >= 2 { p.append(part[n - 2]) }
                    part = p
                }
                if part.count > 1, Py.isDecimal(part[part.count - 2]), let last = part.last,
                   "kmbt".unicodeScalars.contains(last) {
                    part[part.count - 1] = Unicode.Scalar(UInt8(last.value) - 0x20)
                }
                if totalParams != 0, let value = Py.float(part.dropLast()) {
                    let unit = part[part.count - 1]
                    let idx = Array(" KMBT".unicodeScalars).firstIndex(of: unit) ?? -1
                    let labelParams = value * (idx >= 0 ? pow(1000.0, Double(idx)) : pow(1000.0, -1.0))
                    let tooSmallForLoRA = totalParams < 0
                        && labelParams < Double(abs(totalParams) / 8)
                    let farFromModel = totalParams > 0
                        && abs(labelParams - Double(totalParams)) > Double(7 * totalParams / 8)
                    if tooSmallForLoRA || farFromModel {
                        // likely a context length
                        types[i].insert(.finetune)
                        part = Array(part.dropLast()) + Array(Py.lower(Py.string([unit])).unicodeScalars)
                    }
                }
                if types[i].isEmpty { types[i].insert(.sizeLabel) }
                parts[i] = part
            } else if i > 0 && isFinetuneWord(part) {
                if totalParams < 0 && Array(Py.lower(Py.string(part)).unicodeScalars) == Array("lora".unicodeScalars) {
                    types[i].insert(.type)
                } else {
                    types[i].insert(.finetune)
                }
            }
        }

        // Ignore word-based size labels when there is at least a number-based one present
        let numericSize = zip(parts, types).contains { p, t in t.contains(.sizeLabel) && p.contains(where: Py.isDecimal) }
        if numericSize {
            for i in parts.indices where types[i].contains(.sizeLabel) && parts[i].allSatisfy(Py.isAlpha) {
                types[i].remove(.sizeLabel)
            }
        }

        var atStart = true
        for i in parts.indices {
            if atStart && ((types[i].isEmpty && Py.isAlpha(parts[i][0])) || types[i].contains(.version)) {
                types[i].insert(.basename)
            } else {
                if atStart { atStart = false }
                if types[i].isEmpty { types[i].insert(.finetune) }
            }
        }

        // Remove the basename annotation from trailing version
        for i in parts.indices.reversed() {
            if types[i].contains(.basename) && types[i].count > 1 {
                types[i].remove(.basename)
            } else {
                break
            }
        }

        func joined(_ pick: (Set<Kind>) -> Bool, dedupe: Bool = false) -> String? {
            var seen: [[Unicode.Scalar]] = []
            for (p, t) in zip(parts, types) where pick(t) {
                if dedupe && seen.contains(p) { continue }
                seen.append(p)
            }
            if seen.isEmpty { return nil }
            let s = seen.map { Py.string($0) }.joined(separator: "-")
            return s.isEmpty ? nil : s
        }

        var basename = joined { $0.contains(.basename) }
        let sizeLabel = joined({ $0.contains(.sizeLabel) }, dedupe: true)
        let finetune = joined { $0.contains(.finetune) }
        let version = joined { $0.contains(.version) && !$0.contains(.basename) }
        if sizeLabel == nil && finetune == nil && version == nil { basename = nil }

        return IDComponents(fullName: Py.string(full), organization: org.map(Py.string),
                            basename: basename, finetune: finetune, version: version,
                            sizeLabel: sizeLabel)
    }

    /// `re.fullmatch(r'(v|iter)?\d+([.]\d+)*', part, re.IGNORECASE)`
    private static func isVersionPart(_ s: [Unicode.Scalar]) -> Bool {
        if dottedDigits(s[...]) { return true }
        if let f = s.first, Py.ci(f, "v"), dottedDigits(s[1...]) { return true }
        if s.count > 4, Py.ciPrefix(s, "iter"), dottedDigits(s[4...]) { return true }
        return false
    }

    /// `re.fullmatch(r'i?q\d(_\w)*|b?fp?(16|32)', part, re.IGNORECASE)`
    private static func isQuantTypePart(_ s: [Unicode.Scalar]) -> Bool {
        func quant(_ from: Int) -> Bool {
            var i = from
            guard i < s.count, Py.ci(s[i], "q") else { return false }
            i += 1
            guard i < s.count, Py.isDecimal(s[i]) else { return false }
            i += 1
            while i < s.count {
                guard i + 1 < s.count, s[i] == "_", Py.isWord(s[i + 1]) else { return false }
                i += 2
            }
            return true
        }
        if quant(0) { return true }
        if let f = s.first, Py.ci(f, "i"), quant(1) { return true }
        // b?fp?(16|32)
        var i = 0
        if i < s.count, Py.ci(s[i], "b") { i += 1 }
        guard i < s.count, Py.ci(s[i], "f") else { return false }
        i += 1
        if i < s.count, Py.ci(s[i], "p") { i += 1 }
        let rest = String(String.UnicodeScalarView(s[i...]))
        return rest == "16" || rest == "32"
    }

    /// `re.fullmatch(r'(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)', part, re.I)`
    private static func isSizePart(_ s: [Unicode.Scalar]) -> Bool {
        for w in ["small", "mini", "medium", "large", "xl", "xxl"] where Py.ciEquals(s, w) { return true }
        // \d+([._]\d+)?[KMBT][\d]? from index i to the end
        func core(_ from: Int) -> Bool {
            var i = from
            let start = i
            while i < s.count, Py.isDecimal(s[i]) { i += 1 }
            guard i > start else { return false }
            if i < s.count, s[i] == "." || s[i] == "_" {
                let j = i + 1
                var k = j
                while k < s.count, Py.isDecimal(s[k]) { k += 1 }
                if k > j { i = k }
            }
            guard i < s.count, ["K", "M", "B", "T"].contains(where: { Py.ci(s[i], $0) }) else { return false }
            i += 1
            if i < s.count, Py.isDecimal(s[i]) { i += 1 }
            return i == s.count
        }
        if core(0) { return true }
        if let f = s.first, Py.ci(f, "a"), core(1) { return true }
        var i = 0
        while i < s.count, Py.isDecimal(s[i]) { i += 1 }
        if i > 0, i < s.count, Py.ci(s[i], "x"), core(i + 1) { return true }
        return false
    }

    /// `re.fullmatch(r'chat|instruct|vision|lora', part, re.IGNORECASE)`
    private static func isFinetuneWord(_ s: [Unicode.Scalar]) -> Bool {
        ["chat", "instruct", "vision", "lora"].contains { Py.ciEquals(s, $0) }
    }
}
