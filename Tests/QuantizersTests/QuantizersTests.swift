import Foundation
import GGMLCore
import Quantizers
import Testing

@Suite struct QuantizersTests {
    /// A deterministic generator, so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E3779B97F4A7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
    }

    static func edgeRows() -> [[Float]] {
        var rng = SplitMix(state: 42)
        var rows: [[Float]] = [
            [Float](repeating: 0, count: 64),
            [Float](repeating: 0.375, count: 64),
            [Float](repeating: -3, count: 32),
            (0..<64).map { $0 == 17 ? 1e30 : Float($0) * 1e-3 },
            (0..<32).map { _ in Float.leastNonzeroMagnitude * Float(Int(rng.next() % 201) - 100) },
            (0..<32).map { Float($0) - 15.5 },               // exact halves after scaling
            (0..<32).map { $0 == 0 ? 127 : Float($0) + 0.5 }, // amax 127 → id 1, .5 fractions
            (0..<32).map { $0 == 0 ? 65504 * 127 * 4 : 1 },   // d overflows f16 → inf scale
        ]
        for _ in 0..<50 {
            var row: [Float] = []
            for _ in 0..<256 {
                let u = Float(rng.next() >> 40) / Float(1 << 24) * 4 - 2
                row.append(rng.next() & 1 == 0 ? u : u * 1e-4)
            }
            rows.append(row)
        }
        return rows
    }

    @Test func q8FastPathEqualsReference() {
        for row in Self.edgeRows() {
            let nb = row.count / 32
            var a = [UInt8](repeating: 0, count: nb * 34)
            var b = [UInt8](repeating: 0, count: nb * 34)
            row.withUnsafeBufferPointer { src in
                a.withUnsafeMutableBytes { Q8_0.quantizeRow(src, into: $0) }
                b.withUnsafeMutableBytes { Q8_0.quantizeRowReference(src, into: $0) }
            }
            #expect(a == b)
        }
    }

    /// Golden bytes from gguf-py's numpy port of ggml's quantize_row_q8_0_ref, which convert_hf_to_gguf
    /// runs (`quantize(x, GGMLQuantizationType.Q8_0).tobytes().hex()`, inputs as written below).
    static func goldenInput1() -> [Float] { (0..<32).map { Float($0) - 15.5 } }
    static func goldenInput2() -> [Float] {
        (0..<64).map { (i: Int) -> Float in i == 5 ? Float(3.1e-3) : Float((i * 7919) % 201 - 100) / 37 }
    }
    static let golden: [([Float], String)] = [
        // Subnormal blocks: d underflows to 0, or 1/d overflows to inf (then every quant is 0).
        ((-16..<16).map { Float.leastNonzeroMagnitude * Float($0) }, "0000" + String(repeating: "00", count: 32)),
        ((-16..<16).map { Float.leastNonzeroMagnitude * Float($0 * 10) }, "0000" + String(repeating: "00", count: 32)),
        (goldenInput1(), "d02f8189919aa2aab2bac3cbd3dbe3ecf4fc040c141d252d353d464e565e666f777f"),
        (goldenInput2(), "732581e74cb31800e44ab0167be247ad1379df45ab1176dc42a80e74da40a60b71d7bd2446950a7fce4393077ccb40900479c93d8d0176c63a8aff73c33787fc70c03584"),
    ]

    @Test(arguments: golden)
    func q8MatchesGolden(_ c: ([Float], String)) {
        var out = [UInt8](repeating: 0, count: c.0.count / 32 * 34)
        c.0.withUnsafeBufferPointer { s in out.withUnsafeMutableBytes { Q8_0.quantizeRow(s, into: $0) } }
        #expect(out.map { String(format: "%02x", $0) }.joined() == c.1)
    }

    @Test func q8ErrorWithinHalfStep() {
        for row in Self.edgeRows() where row.allSatisfy({ abs($0) < 1e6 }) {
            var q = [UInt8](repeating: 0, count: row.count / 32 * 34)
            var back = [Float](repeating: 0, count: row.count)
            row.withUnsafeBufferPointer { s in q.withUnsafeMutableBytes { Q8_0.quantizeRow(s, into: $0) } }
            q.withUnsafeBytes { s in back.withUnsafeMutableBufferPointer { Q8_0.dequantizeRow(s, into: $0) } }
            for b in 0..<(row.count / 32) {
                let amax = row[(b * 32)..<(b * 32 + 32)].map(abs).max()!
                let d = amax / 127
                for j in 0..<32 {
                    // half a step of the fp16-rounded scale, plus the scale's own rounding over 127 steps
                    #expect(abs(back[b * 32 + j] - row[b * 32 + j]) <= d * 0.5 + amax * 1e-3 + 1e-30)
                }
            }
        }
    }

    @Test func halfAndBFloatRounding() {
        // Round to nearest even at the exact halfway points.
        #expect(FloatConversion.f32ToBF16(Float(bitPattern: 0x3F80_8000)) == 0x3F80)
        #expect(FloatConversion.f32ToBF16(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(FloatConversion.f32ToBF16(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        // NaN keeps its sign and top payload with the quiet bit set; inf stays inf.
        #expect(FloatConversion.f32ToBF16(Float(bitPattern: 0x7F80_0001)) == 0x7FC0)
        #expect(FloatConversion.f32ToBF16(.infinity) == 0x7F80)
        #expect(FloatConversion.f32ToF16(1 + Float.ulpOfOne * 1024) == 0x3C00) // halfway → even
        #expect(FloatConversion.f32ToF16(65520) == 0x7C00)                     // overflow → inf
        #expect(FloatConversion.f32ToF16(5.9604645e-08) == 0x0001)            // smallest subnormal
        for b in stride(from: 0, to: 0xFFFF, by: 7) where (b & 0x7F80) != 0x7F80 {
            #expect(FloatConversion.f32ToBF16(FloatConversion.bf16ToF32(UInt16(b))) == UInt16(b))
        }
    }
}
