import StrictJSON
import Testing

@Suite struct JSONTests {
    @Test func parsesScalarsAndKeepsKeyOrder() throws {
        let v = try JSONParser.parse(#"{"b": 1, "a": [true, false, null, -2.5e3, "x\u00e9\ud83d\ude00"], "c": 18446744073709551616}"#)
        let o = try #require(v.objectValue)
        #expect(o.keys == ["b", "a", "c"])
        #expect(v["b"] == .int(1))
        #expect(v["a"]?.arrayValue == [.bool(true), .bool(false), .null, .double(-2500), .string("xé😀")])
        // Integers beyond Int are kept as doubles, never silently truncated.
        #expect(v["c"] == .double(18446744073709551616))
    }

    @Test func refusesDuplicateKeys() {
        #expect(throws: JSONError.self) { try JSONParser.parse(#"{"a": 1, "a": 2}"#) }
        do { _ = try JSONParser.parse(#"{"t": {"x": 1}, "t": {}}"#) } catch {
            #expect(error.message == "duplicate key \"t\"")
        }
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\\ud800\"", "tru", "[1] x", "\"a\nb\"", "{\"a\":1,}",
    ])
    func refusesMalformed(_ text: String) {
        #expect(throws: JSONError.self) { try JSONParser.parse(text) }
    }

    @Test func boundsNesting() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONError.self) { try JSONParser.parse(deep) }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func serializesRoundTrip() throws {
        let v = try JSONParser.parse(#"{"s":"a\"b\n\u0001","n":[1,2.5,true,null],"o":{}}"#)
        #expect(try JSONParser.parse(v.serialized()) == v)
        #expect(try JSONParser.parse(v.serialized(pretty: true)) == v)
    }

    static func parse(_ text: String, skipping: Set<String>) throws(JSONError) -> JSONValue {
        try parse(bytes: Array(text.utf8), skipping: skipping)
    }

    static func parse(bytes: [UInt8], skipping: Set<String>) throws(JSONError) -> JSONValue {
        let r: Result<JSONValue, JSONError> = bytes.withUnsafeBytes { raw in
            do throws(JSONError) { return .success(try JSONParser.parse(raw, skipping: skipping)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    /// A skipped top-level member is validated, not built: it reads as null, the rest as usual.
    @Test func skipsTopLevelMembersButStillChecksThem() throws {
        let doc = #"{"added": [1, {"a": "é"}], "model": {"vocab": {"x": 1, "x": 2, "\u00e9": [1.5e3, null, true]}}, "z": 3}"#
        let v = try Self.parse(doc, skipping: ["model"])
        #expect(v["model"] == .null)
        #expect(v["z"] == .int(3))
        #expect(v["added"] == (try JSONParser.parse(#"[1, {"a": "é"}]"#)))
        for bad in [#"{"model": {"v": "\x"}}"#, #"{"model": {"v": "\ud800"}}"#, #"{"model": [1, 2,]}"#, #"{"model": {"v" 1}}"#,
                    #"{"model": "unterminated}"#, #"{"model": 01}"#, #"{"model": {}, "model": 1}"#,
                    "{\"model\": \"\u{1}\"}"] {
            #expect(throws: JSONError.self, "\(bad)") { try Self.parse(bad, skipping: ["model"]) }
        }
        let deep = "{\"model\": " + String(repeating: "[", count: JSONParser.maxDepth + 1)
            + String(repeating: "]", count: JSONParser.maxDepth + 1) + "}"
        #expect(throws: JSONError.self) { try Self.parse(deep, skipping: ["model"]) }
        // invalid UTF-8 inside a skipped string
        var bytes = Array(#"{"model": {"v": "ab"}}"#.utf8)
        bytes[bytes.firstIndex(of: UInt8(ascii: "b"))!] = 0xC3
        #expect(throws: JSONError.self) { try Self.parse(bytes: bytes, skipping: ["model"]) }
    }
}
