import Batch
import Testing

@Suite struct BatchSmokeTests {
    @Test func builds() { #expect(Bool(true)) }
}
