/// A JSON value. Objects keep their key order (tokenizer files and safetensors headers are read
/// in the order written) and a parse refuses duplicate keys, which Foundation silently merges.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integer literal that fits in `Int`; other numbers are `.double`.
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var isNull: Bool { self == .null }

    /// Integer value; a double with an integral value (e.g. `2.0`) also counts.
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e15: return Int(d)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
}

public struct JSONObject: Sendable, Equatable {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSONValue] = []
    /// Keyed by the UTF-8 bytes: Swift's `String ==` treats canonically equivalent strings as
    /// equal, but "ায়" composed and decomposed are two tokens of Gemma's vocabulary.
    private var index: [ExactKey: Int] = [:]

    public init() {}

    public var count: Int { keys.count }

    public subscript(key: String) -> JSONValue? {
        guard let i = index[ExactKey(key)] else { return nil }
        return values[i]
    }

    /// Appends; returns false (and changes nothing) when the key is already present.
    @discardableResult
    public mutating func append(_ key: String, _ value: JSONValue) -> Bool {
        let k = ExactKey(key)
        if index[k] != nil { return false }
        index[k] = keys.count
        keys.append(key)
        values.append(value)
        return true
    }

    /// Replaces the value of `key` in place, or appends it.
    public mutating func set(_ key: String, _ value: JSONValue) {
        if let i = index[ExactKey(key)] { values[i] = value } else { append(key, value) }
    }

    public var entries: Zip2Sequence<[String], [JSONValue]> { zip(keys, values) }

    public static func == (a: JSONObject, b: JSONObject) -> Bool { a.keys == b.keys && a.values == b.values }
}

/// A string compared and hashed by its UTF-8 bytes, not by canonical equivalence.
public struct ExactKey: Hashable, Sendable {
    public let string: String
    public init(_ s: String) { string = s }
    public static func == (a: ExactKey, b: ExactKey) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }
    public func hash(into h: inout Hasher) {
        var s = string
        s.withUTF8 { h.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

public struct JSONError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public var description: String { "\(message) at byte \(offset)" }
}

public enum JSONParser {
    public static let maxDepth = 512

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        try parse(bytes, skipping: [])
    }

    /// Parses a document whose top-level object members named in `skipping` are checked for syntax,
    /// UTF-8, escapes and depth but not built (nor their keys compared for duplicates: nothing
    /// reads them): a reader that needs a few members of a 17 MB tokenizer.json does not pay for
    /// the 262k-entry vocabulary beside them.
    public static func parse(_ bytes: UnsafeRawBufferPointer, skipping: Set<String>) throws(JSONError) -> JSONValue {
        var p = Parser(buf: bytes.bindMemory(to: UInt8.self))
        p.skipTopLevel = skipping
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        guard p.pos == p.buf.count else { throw p.error("unexpected trailing characters") }
        return v
    }

    public static func parse<C: Collection<UInt8>>(_ bytes: C) throws(JSONError) -> JSONValue {
        let array = Array(bytes)
        let r: Result<JSONValue, JSONError> = array.withUnsafeBytes { raw in
            do throws(JSONError) { return .success(try parse(raw)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}

private struct Parser {
    let buf: UnsafeBufferPointer<UInt8>
    var pos = 0
    var skipTopLevel: Set<String> = []

    init(buf: UnsafeBufferPointer<UInt8>) { self.buf = buf }

    func error(_ m: String) -> JSONError { JSONError(message: m, offset: pos) }

    mutating func skipWhitespace() {
        while pos < buf.count {
            switch buf[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func expect(_ lit: StaticString) throws(JSONError) {
        let n = lit.utf8CodeUnitCount
        guard pos + n <= buf.count else { throw error("truncated literal") }
        let p = lit.utf8Start
        for i in 0..<n where buf[pos + i] != p[i] { throw error("invalid literal") }
        pos += n
    }

    mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        guard depth < JSONParser.maxDepth else { throw error("nesting deeper than \(JSONParser.maxDepth)") }
        guard pos < buf.count else { throw error("unexpected end of input") }
        switch buf[pos] {
        case UInt8(ascii: "{"): return .object(try parseObject(depth: depth))
        case UInt8(ascii: "["): return .array(try parseArray(depth: depth))
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character")
        }
    }

    mutating func parseObject(depth: Int) throws(JSONError) -> JSONObject {
        pos += 1
        var obj = JSONObject()
        skipWhitespace()
        if pos < buf.count, buf[pos] == UInt8(ascii: "}") { pos += 1; return obj }
        while true {
            skipWhitespace()
            guard pos < buf.count, buf[pos] == UInt8(ascii: "\"") else { throw error("expected object key") }
            let keyStart = pos
            let key = try parseString()
            skipWhitespace()
            guard pos < buf.count, buf[pos] == UInt8(ascii: ":") else { throw error("expected ':'") }
            pos += 1
            skipWhitespace()
            let v: JSONValue
            if depth == 0, skipTopLevel.contains(key) {
                try skipValue(depth: depth + 1)
                v = .null // kept, so that a duplicate of it is still one
            } else {
                v = try parseValue(depth: depth + 1)
            }
            guard obj.append(key, v) else {
                throw JSONError(message: "duplicate key \(quotedForMessage(key))", offset: keyStart)
            }
            skipWhitespace()
            guard pos < buf.count else { throw error("unterminated object") }
            if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if buf[pos] == UInt8(ascii: "}") { pos += 1; return obj }
            throw error("expected ',' or '}'")
        }
    }

    /// parseValue's checks without its values.
    mutating func skipValue(depth: Int) throws(JSONError) {
        guard depth < JSONParser.maxDepth else { throw error("nesting deeper than \(JSONParser.maxDepth)") }
        guard pos < buf.count else { throw error("unexpected end of input") }
        switch buf[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            skipWhitespace()
            if pos < buf.count, buf[pos] == UInt8(ascii: "}") { pos += 1; return }
            while true {
                skipWhitespace()
                guard pos < buf.count, buf[pos] == UInt8(ascii: "\"") else { throw error("expected object key") }
                _ = try parseString()
                skipWhitespace()
                guard pos < buf.count, buf[pos] == UInt8(ascii: ":") else { throw error("expected ':'") }
                pos += 1
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard pos < buf.count else { throw error("unterminated object") }
                if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if buf[pos] == UInt8(ascii: "}") { pos += 1; return }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            pos += 1
            skipWhitespace()
            if pos < buf.count, buf[pos] == UInt8(ascii: "]") { pos += 1; return }
            while true {
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard pos < buf.count else { throw error("unterminated array") }
                if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if buf[pos] == UInt8(ascii: "]") { pos += 1; return }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): _ = try parseString()
        default: _ = try parseValue(depth: depth)
        }
    }

    mutating func parseArray(depth: Int) throws(JSONError) -> [JSONValue] {
        pos += 1
        var arr: [JSONValue] = []
        skipWhitespace()
        if pos < buf.count, buf[pos] == UInt8(ascii: "]") { pos += 1; return arr }
        while true {
            skipWhitespace()
            arr.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard pos < buf.count else { throw error("unterminated array") }
            if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if buf[pos] == UInt8(ascii: "]") { pos += 1; return arr }
            throw error("expected ',' or ']'")
        }
    }

    mutating func hex4() throws(JSONError) -> UInt32 {
        guard pos + 4 <= buf.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[pos]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    mutating func parseString() throws(JSONError) -> String {
        pos += 1
        let start = pos
        // Fast path: no escapes.
        while pos < buf.count {
            let c = buf[pos]
            if c == UInt8(ascii: "\"") {
                let s = try makeString(UnsafeBufferPointer(rebasing: buf[start..<pos]))
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in string") }
            pos += 1
        }
        var bytes = Array(buf[start..<pos])
        while pos < buf.count {
            let c = buf[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return try bytes.withUnsafeBufferPointer { b throws(JSONError) in try makeString(b) }
            }
            if c < 0x20 { throw error("control character in string") }
            if c != UInt8(ascii: "\\") { bytes.append(c); pos += 1; continue }
            pos += 1
            guard pos < buf.count else { break }
            let e = buf[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "/"): bytes.append(0x2F)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    if pos + 6 <= buf.count, buf[pos] == UInt8(ascii: "\\"), buf[pos + 1] == UInt8(ascii: "u") {
                        pos += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        throw error("lone surrogate")
                    }
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("lone surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid code point") }
                bytes.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw error("invalid escape")
            }
        }
        throw error("unterminated string")
    }

    func makeString(_ b: UnsafeBufferPointer<UInt8>) throws(JSONError) -> String {
        guard let s = String(validating: b, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
        return s
    }

    mutating func parseNumber() throws(JSONError) -> JSONValue {
        let start = pos
        var isInt = true
        if buf[pos] == UInt8(ascii: "-") { pos += 1 }
        guard pos < buf.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buf[pos]) else {
            throw error("invalid number")
        }
        if buf[pos] == UInt8(ascii: "0") {
            pos += 1
        } else {
            while pos < buf.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buf[pos]) { pos += 1 }
        }
        if pos < buf.count, buf[pos] == UInt8(ascii: ".") {
            isInt = false
            pos += 1
            let d = pos
            while pos < buf.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buf[pos]) { pos += 1 }
            guard pos > d else { throw error("invalid number") }
        }
        if pos < buf.count, buf[pos] == UInt8(ascii: "e") || buf[pos] == UInt8(ascii: "E") {
            isInt = false
            pos += 1
            if pos < buf.count, buf[pos] == UInt8(ascii: "+") || buf[pos] == UInt8(ascii: "-") { pos += 1 }
            let d = pos
            while pos < buf.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buf[pos]) { pos += 1 }
            guard pos > d else { throw error("invalid number") }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
        if isInt, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw error("invalid number") }
        return .double(d)
    }
}

extension JSONValue {
    /// Compact or indented JSON text; keys in insertion order. Non-finite doubles become null.
    public func serialized(pretty: Bool = false) -> String {
        var out = ""
        write(to: &out, indent: pretty ? 0 : -1)
        return out
    }

    private func write(to out: inout String, indent: Int) {
        let nl = indent >= 0
        func pad(_ n: Int) -> String { nl ? "\n" + String(repeating: "  ", count: n) : "" }
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? String(format1: d) : "\(d)") : "null"
        case .string(let s): JSONValue.escape(s, into: &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                out += pad(indent + 1)
                v.write(to: &out, indent: nl ? indent + 1 : -1)
            }
            out += pad(indent) + "]"
        case .object(let o):
            if o.count == 0 { out += "{}"; return }
            out += "{"
            for (i, (k, v)) in o.entries.enumerated() {
                if i > 0 { out += "," }
                out += pad(indent + 1)
                JSONValue.escape(k, into: &out)
                out += nl ? ": " : ":"
                v.write(to: &out, indent: nl ? indent + 1 : -1)
            }
            out += pad(indent) + "}"
        }
    }

    static func escape(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

extension String {
    /// A double with an integral value, printed with one decimal (`3.0`), as Python's json does.
    init(format1 d: Double) { self = "\(Int64(d)).0" }
}

/// Builds objects inline: `JSONValue.obj(["a": .int(1)])` keeps the literal's order.
extension JSONValue {
    public static func obj(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        var o = JSONObject()
        for (k, v) in pairs { o.append(k, v) }
        return .object(o)
    }
}

/// A string from the document as an error quotes it: control characters escaped and the length
/// bounded, so the error stays one line whatever the document holds.
func quotedForMessage(_ s: String, limit: Int = 200) -> String {
    var out = "\""
    var n = 0
    for u in s.unicodeScalars {
        let piece = u.value < 0x20 || u.value == 0x7F || u == "\u{85}" || u == "\u{2028}" || u == "\u{2029}"
            ? "\\u{\(String(u.value, radix: 16))}" : String(u)
        n += 1
        if n > limit { return out + "…\"" }
        out += piece
    }
    return out + "\""
}
