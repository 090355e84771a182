import Reports
import StrictJSON
import Testing

@Suite struct QualityTableTests {
    static func rows() -> [QualityRow] {
        var ref = QualityRow(type: "bf16"); ref.reference = true; ref.sizeBytes = 270_000_000; ref.ppl = 13.07; ref.kldMean = 0
        var a = QualityRow(type: "q4_0"); a.sizeBytes = 92_000_000; a.bpw = 5.35; a.ppl = 16.67; a.kldMean = 0.34; a.sameTopPct = 71.1
        var b = QualityRow(type: "q8_0"); b.sizeBytes = 145_000_000; b.bpw = 8.5; b.ppl = 13.15; b.kldMean = 0.0043; b.sameTopPct = 96.4
        var c = QualityRow(type: "q6_k"); c.error = "model: boom, \"quoted\""
        var d = QualityRow(type: "nf4"); d.simulated = true; d.sizeBytes = 92_060_000; d.kldMean = 0.24
        return [a, c, b, ref, d]
    }

    @Test func sortsReferenceFirstThenBySizeFailuresLast() {
        #expect(QualityTable.sortedBySize(Self.rows()).map(\.type) == ["bf16", "q8_0", "nf4", "q4_0", "q6_k"])
    }

    @Test func markdownMarksReferenceSimulatedAndFailedRows() {
        let md = QualityTable.markdown(QualityTable.sortedBySize(Self.rows()))
        let lines = md.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("| type | size (MB) | bpw | PPL |"))
        #expect(lines[2].hasPrefix("| bf16 (reference) | 270.00 |"))
        #expect(lines.contains { $0.hasPrefix("| nf4 (simulated) | 92.06 |") })
        #expect(lines.contains { $0.hasPrefix("| q6_k (failed) | – |") })
        #expect(lines.last == "- q6_k failed: model: boom, \"quoted\"")
    }

    @Test func csvQuotesAndKeepsNumbersPlain() {
        let csv = QualityTable.csv(QualityTable.sortedBySize(Self.rows()))
        let lines = csv.components(separatedBy: "\r\n")
        #expect(lines[0].hasPrefix("type,reference,simulated,size_bytes,bpw,ppl,"))
        #expect(lines[2].hasPrefix("q8_0,false,false,145000000,8.5,13.15,"))
        #expect(lines[5].hasSuffix(",\"model: boom, \"\"quoted\"\"\""))
        #expect(lines.count == 7 && lines[6].isEmpty)
    }

    @Test func jsonIsAnArrayOfRowsWithTheRequiredKeys() throws {
        let v = try JSONParser.parse(QualityTable.json(Self.rows()))
        let rows = try #require(v.arrayValue)
        #expect(rows.count == 5)
        #expect(rows[0]["type"]?.stringValue == "q4_0")
        #expect(rows[0]["size_bytes"]?.intValue == 92_000_000)
        #expect(rows[0]["bpw"]?.doubleValue == 5.35)
        #expect(rows[0]["same_top_pct"]?.doubleValue == 71.1)
        #expect(rows[1]["error"]?.stringValue?.hasPrefix("model: boom") == true)
        #expect(rows.map { QualityRow(json: $0) } == Self.rows())
    }
}
