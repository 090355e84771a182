import Foundation
import GGMLCore
@testable import Quantizers
import Testing

/// q4_0, q4_1, q5_0, q5_1 and iq4_nl against llama.cpp's own quantizer (golden bytes made by
/// Fixtures/quant/make_golden_legacy.py through ggml_quantize_chunk), and fast paths against the
/// literal ports of ggml's C.
@Suite struct LegacyQuantTests {
    static let quantDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/quant")

    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case q4_0, q4_1, q5_0, q5_1, iq4_nl
        var testDescription: String { rawValue }
        var quantizer: any BlockQuantizer.Type {
            switch self {
            case .q4_0: Q4_0.self
            case .q4_1: Q4_1.self
            case .q5_0: Q5_0.self
            case .q5_1: Q5_1.self
            case .iq4_nl: IQ4_NL.self
            }
        }
        func reference(_ src: UnsafeBufferPointer<Float>, _ dst: UnsafeMutableRawBufferPointer) {
            switch self {
            case .q4_0: Q4_0.quantizeRowReference(src, into: dst)
            case .q4_1: Q4_1.quantizeRowReference(src, into: dst)
            case .q5_0: Q5_0.quantizeRowReference(src, into: dst)
            case .q5_1: Q5_1.quantizeRowReference(src, into: dst)
            case .iq4_nl: IQ4_NL.quantizeRowReference(src, into: dst)
            }
        }
        func rowBytes(_ n: Int) -> Int { quantizer.type.rowSize(n)! }

        func quantize(_ row: [Float], reference: Bool = false) -> [UInt8] {
            var out = [UInt8](repeating: 0xA5, count: rowBytes(row.count))
            row.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBytes { d in
                    if reference { self.reference(s, d) } else { quantizer.quantizeRow(s, into: d) }
                }
            }
            return out
        }

        func dequantize(_ q: [UInt8], count: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: count)
            q.withUnsafeBytes { s in out.withUnsafeMutableBufferPointer { quantizer.dequantizeRow(s, into: $0) } }
            return out
        }
    }

    struct Golden {
        var names: [String] = []
        var inputs: [[Float]] = []
        var quantized: [Kind: [[UInt8]]] = [:]
        var dequantized: [Kind: [[Float]]] = [:]
    }

    static let golden: Golden = {
        func read(_ name: String) -> [UInt8] {
            [UInt8](FileManager.default.contents(atPath: quantDir.appendingPathComponent(name).path)!)
        }
        func floats(_ b: ArraySlice<UInt8>) -> [Float] {
            stride(from: b.startIndex, to: b.endIndex, by: 4).map { i in
                Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
            }
        }
        let manifest = try! JSONSerialization.jsonObject(with: Data(read("legacy_rows.json"))) as! [String: Any]
        let rows = manifest["rows"] as! [[String: Any]]
        var g = Golden()
        let inputBytes = read("legacy_inputs.bin")
        var off = 0
        for r in rows {
            let n = r["count"] as! Int
            g.names.append(r["name"] as! String)
            g.inputs.append(floats(inputBytes[off..<(off + 4 * n)]))
            off += 4 * n
        }
        precondition(off == inputBytes.count)
        for t in manifest["types"] as! [[String: Any]] {
            let kind = Kind(rawValue: t["name"] as! String)!
            precondition(kind.quantizer.type.rawValue == t["id"] as! Int)
            let q = read(t["quantized"] as! String), dq = read(t["dequantized"] as! String)
            var qo = 0, fo = 0
            for row in g.inputs {
                let rb = kind.rowBytes(row.count)
                g.quantized[kind, default: []].append(Array(q[qo..<(qo + rb)]))
                g.dequantized[kind, default: []].append(floats(dq[fo..<(fo + 4 * row.count)]))
                qo += rb
                fo += 4 * row.count
            }
            precondition(qo == q.count && fo == dq.count)
        }
        return g
    }()

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    @Test(arguments: Kind.allCases)
    func matchesLlamaCpp(_ kind: Kind) {
        let g = Self.golden
        #expect(g.quantized[kind]?.count == g.inputs.count)
        for (i, row) in g.inputs.enumerated() {
            let want = g.quantized[kind]![i]
            let fast = kind.quantize(row)
            let ref = kind.quantize(row, reference: true)
            #expect(Self.hex(fast) == Self.hex(want), "\(kind) fast path, row \(g.names[i])")
            #expect(Self.hex(ref) == Self.hex(want), "\(kind) reference, row \(g.names[i])")
            let back = kind.dequantize(want, count: row.count)
            #expect(back.map(\.bitPattern) == g.dequantized[kind]![i].map(\.bitPattern), "\(kind) dequantize, row \(g.names[i])")
        }
    }

    /// A deterministic generator, so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
        mutating func normal() -> Float {
            let u1 = max(uniform(), 1e-7), u2 = uniform()
            return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
    }

    /// Rows like weights (normal, several scales per row, a few outliers, some exact zeros and
    /// repeated values), so the fast paths meet ties and sign-of-zero cases as well, plus blocks at
    /// the ends of the float range.
    static func randomRow(_ rng: inout SplitMix, blocks: Int) -> [Float] {
        var row: [Float] = []
        for _ in 0..<blocks {
            let style = rng.next() % 10
            let scale: Float = switch style {
            case 6: Float.leastNonzeroMagnitude * Float(1 + rng.next() % 100_000)  // subnormal: d, 1/d misbehave
            case 7: Float(pow(10, 30 + Double(rng.uniform()) * 8))  // d and m overflow fp16
            default: Float(pow(10, Double(rng.uniform()) * 8 - 6))
            }
            for j in 0..<32 {
                var v = rng.normal() * scale
                switch style {
                case 0: v = Float(Int(v / scale * 4)) * 0.25       // coarse grid: many ties
                case 1: if rng.next() % 4 == 0 { v = rng.next() & 1 == 0 ? 0 : -0.0 }
                case 2: if j == 5 { v *= 1000 }
                case 3: v = abs(v)
                case 4: v = -abs(v)
                case 5: v = Float(Int(rng.next() % 33) - 16) * scale  // integers × scale
                default: break
                }
                row.append(v)
            }
        }
        return row
    }

    /// Any float bit pattern: NaNs, infinities, subnormals, huge values.
    static func bitsRow(_ rng: inout SplitMix, blocks: Int) -> [Float] {
        (0..<(32 * blocks)).map { _ in
            let b = UInt32(truncatingIfNeeded: rng.next())
            switch rng.next() % 4 {
            case 0: return Float(bitPattern: b)
            case 1: return Float(bitPattern: b & 0x8000_00FF)                      // subnormal
            case 2: return Float(bitPattern: (b & 0x807F_FFFF) | 0x7F00_0000)     // ~1e38
            default: return rng.normal()
            }
        }
    }

    @Test(arguments: Kind.allCases)
    func emptyRow(_ kind: Kind) {
        #expect(kind.quantize([]).isEmpty)
        #expect(kind.quantize([], reference: true).isEmpty)
        #expect(kind.dequantize([], count: 0).isEmpty)
    }

    @Test(arguments: Kind.allCases)
    func fastPathEqualsReference(_ kind: Kind) {
        var rng = SplitMix(state: 7 &+ UInt64(kind.quantizer.type.rawValue))
        let rows = kind == .iq4_nl ? 300 : 1500
        for r in 0..<rows {
            let row = r % 5 == 4 ? Self.bitsRow(&rng, blocks: 8) : Self.randomRow(&rng, blocks: 8)
            let fast = kind.quantize(row), ref = kind.quantize(row, reference: true)
            if fast != ref {
                Issue.record("\(kind) row \(r): fast \(Self.hex(fast)) reference \(Self.hex(ref))")
                return
            }
        }
    }

    /// Every element ends within half a step of the grid (one step for q4_0/q5_0 elements on the
    /// side opposite the extreme, whose last level is clamped), plus the fp16 rounding of d and m
    /// (relative 2⁻¹¹, or half of 2⁻²⁴ once they are fp16 subnormals).
    @Test(arguments: [Kind.q4_0, .q4_1, .q5_0, .q5_1])
    func roundTripErrorBound(_ kind: Kind) {
        var rng = SplitMix(state: 99)
        for _ in 0..<300 {
            let row = Self.randomRow(&rng, blocks: 4)
            let back = kind.dequantize(kind.quantize(row), count: row.count)
            for b in 0..<4 {
                let x = Array(row[(b * 32)..<(b * 32 + 32)])
                // d or m would overflow fp16, or d·q underflow it
                if x.contains(where: { abs($0) > 30000 }) || x.allSatisfy({ abs($0) < 1e-30 }) { continue }
                let mn = x.min()!, mx = x.max()!
                let amaxAt = x.indices.max { abs(x[$0]) < abs(x[$1]) }!
                func f16err(_ v: Float) -> Float { Swift.max(abs(v) / 2048, 2.9802322e-8) }
                for j in 0..<32 {
                    let err = abs(back[b * 32 + j] - x[j])
                    let bound: Float
                    switch kind {
                    case .q4_0, .q5_0:
                        let qmax: Float = kind == .q4_0 ? 8 : 16
                        let d = abs(x[amaxAt]) / qmax
                        let clamped = x[j] * x[amaxAt] < 0 && abs(x[j]) > (qmax - 0.5) * d
                        bound = (clamped ? 1 : 0.5) * d + qmax * f16err(d) * 1.01
                    default:
                        let d = (mx - mn) / (kind == .q4_1 ? 15 : 31)
                        bound = 0.5 * d * 1.001 + (kind == .q4_1 ? 15 : 31) * f16err(d) + f16err(mn)
                    }
                    #expect(err <= bound, "\(kind) x=\(x[j]) back=\(back[b * 32 + j])")
                }
            }
        }
    }

    /// iq4_nl picks its scale by search, so the bound is: each element sits on (nearly) the nearest
    /// point of the grid it was given, and the whole row is a decent 4-bit approximation.
    @Test func iq4nlRoundTrip() {
        var rng = SplitMix(state: 5)
        var num: Double = 0, den: Double = 0
        for _ in 0..<200 {
            let row = (0..<256).map { _ in rng.normal() * 0.02 }
            let q = Kind.iq4_nl.quantize(row)
            let back = Kind.iq4_nl.dequantize(q, count: row.count)
            for b in 0..<8 {
                let d = Float(Float16(bitPattern: UInt16(q[b * 18]) | UInt16(q[b * 18 + 1]) << 8))
                for j in 0..<32 {
                    let x = row[b * 32 + j]
                    let nearest = IQ4_NL.kvaluesIQ4NL.map { abs(x - d * Float($0)) }.min()!
                    #expect(abs(back[b * 32 + j] - x) <= nearest + abs(d) * 0.1)
                    num += Double((back[b * 32 + j] - x) * (back[b * 32 + j] - x))
                    den += Double(x * x)
                }
            }
        }
        #expect((num / den).squareRoot() < 0.12)
    }

    /// The midpoint count equals ggml's binary search (exhaustively true over all 2³² floats; here
    /// every float within 64 ulps of each midpoint and grid value, and a stride through the rest).
    @Test func bestIndexMatchesBinarySearch() {
        let kv = IQ4_NL.kvaluesIQ4NL
        var points: [Float] = kv.map { Float($0) }
        for i in 0..<15 { points.append((Float(kv[i]) + Float(kv[i + 1])) / 2) }
        var checked = 0
        func check(_ x: Float) {
            let want = IQ4_NL.bestIndexInt8(16, kv, x)
            let v = SIMD4<Float>(x, -x, x.nextUp, x.nextDown)
            let wants = [want, IQ4_NL.bestIndexInt8(16, kv, -x), IQ4_NL.bestIndexInt8(16, kv, x.nextUp),
                         IQ4_NL.bestIndexInt8(16, kv, x.nextDown)]
            let idx = IQ4_NL.bestIndex(v), val = IQ4_NL.bestValue(v)
            for k in 0..<4 {
                #expect(Int(idx[k]) == wants[k], "x=\(v[k])")
                #expect(val[k] == Float(kv[wants[k]]), "x=\(v[k])")
            }
            checked += 1
        }
        for p in points {
            var up = p, down = p
            for _ in 0..<64 {
                check(up); check(down)
                up = up.nextUp; down = down.nextDown
            }
        }
        var b: UInt32 = 0
        while true {
            check(Float(bitPattern: b))
            let (n, o) = b.addingReportingOverflow(999_983)
            if o { break }
            b = n
        }
        #expect(checked > 4000)
    }

    @Test func fp16ConversionMatchesFloat16() {
        var b: UInt32 = 0
        while true {
            let f = Float(bitPattern: b)
            let want: UInt16 = f.isNaN ? UInt16(truncatingIfNeeded: (b >> 16) & 0x8000) | 0x7E00 : Float16(f).bitPattern
            #expect(LegacyQuant.fp32ToFP16(f) == want, "\(b)")
            let (n, o) = b.addingReportingOverflow(65_521)
            if o { break }
            b = n
        }
        // round-to-nearest-even at the halfway points, subnormal results, overflow to inf
        #expect(LegacyQuant.fp32ToFP16(1 + Float.ulpOfOne * 4096) == 0x3C00)   // halfway, down to even
        #expect(LegacyQuant.fp32ToFP16(1 + Float.ulpOfOne * 4097) == 0x3C01)
        #expect(LegacyQuant.fp32ToFP16(1 + Float.ulpOfOne * 12288) == 0x3C02)  // halfway, up to even
        #expect(LegacyQuant.fp32ToFP16(5.9604645e-08) == 0x0001)
        #expect(LegacyQuant.fp32ToFP16(-65520) == 0xFC00)
        #expect(LegacyQuant.fp32ToFP16(-0.0) == 0x8000)
    }
}
