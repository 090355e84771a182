import Reports
import StrictJSON
import Testing

@Suite struct QualityRowTests {
    @Test func jsonRoundTrip() throws {
        var r = QualityRow(type: "q4_k_m")
        r.sizeBytes = 105_000_000; r.bpw = 5.12; r.ppl = 14.1; r.kldMean = 0.0627; r.sameTopPct = 87.2
        r.quantizeSeconds = 3.5; r.error = nil
        let back = QualityRow(json: try JSONParser.parse(JSONValue.object(r.json).serialized()))
        #expect(back == r)
    }
}
