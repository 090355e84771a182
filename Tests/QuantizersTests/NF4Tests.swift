import Quantizers
import Testing

@Suite struct NF4Tests {
    /// The decision tree picks the nearest codebook value for every input (ties aside).
    @Test func decisionTreeIsNearestCode() {
        var x: Float = -1.05
        while x <= 1.05 {
            let c = Int(NF4.code(x))
            let best = NF4.codebook.enumerated().min { abs($0.element - x) < abs($1.element - x) }!.offset
            #expect(abs(NF4.codebook[c] - x) <= abs(NF4.codebook[best] - x) + 1e-6, "x = \(x)")
            x += 0.0007
        }
    }

    @Test func roundTripKeepsExtremesAndBoundsError() {
        var v: [Float] = (0..<256).map { Float(($0 * 37) % 101 - 50) / 25 }
        let original = v
        v.withUnsafeMutableBufferPointer { NF4.roundTrip($0) }
        for b in 0..<4 {
            let block = original[(b * 64)..<(b * 64 + 64)]
            let amax = block.map(abs).max()!
            // The absmax element is exact; elsewhere the error is at most half the widest code gap.
            for i in (b * 64)..<(b * 64 + 64) {
                #expect(abs(v[i] - original[i]) <= amax * 0.161)
                if abs(original[i]) == amax { #expect(v[i] == original[i]) }
            }
        }
        var d = original
        d.withUnsafeMutableBufferPointer { NF4.roundTrip($0, doubleQuant: true) }
        let err = zip(d, original).map { abs($0 - $1) }.max()!
        #expect(err < 0.4)
    }
}
