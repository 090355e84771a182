import Foundation
import GGMLCore
@testable import Quantizers
import Testing

/// Importance-weighted quantization (llama-quantize --imatrix) against llama.cpp's own quantizer:
/// golden bytes from `ggml_quantize_chunk` with a non-NULL imatrix
/// (Fixtures/quant/make_golden_imatrix.py).
@Suite struct ImportanceQuantTests {
    static let quantDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/quant")

    /// The types whose imatrix path ggml implements and we port.
    static let weighted: [String: any BlockQuantizer.Type] = [
        "q4_0": Q4_0.self, "q4_1": Q4_1.self, "q5_0": Q5_0.self, "q5_1": Q5_1.self, "iq4_nl": IQ4_NL.self,
        "q2_K": Q2_K.self, "q3_K": Q3_K.self, "q4_K": Q4_K.self, "q5_K": Q5_K.self, "q6_K": Q6_K.self,
    ]
    static let weightedNames = weighted.keys.sorted()
    /// Types ggml quantizes the same with or without an imatrix.
    static let ignoring: [any BlockQuantizer.Type] = [Q8_0.self, F16Type.self, BF16Type.self, F32Type.self]

    struct Entry {
        var name: String
        var rows: Int
        var cols: Int
        var x: [Float]           // rows × cols
        var importance: [Float]  // cols
    }

    struct Golden {
        var entries: [Entry] = []
        /// Per type: (entry index, expected bytes of all its rows).
        var expected: [String: [(Int, [UInt8])]] = [:]
        /// The i-quants: ggml's bytes without an imatrix (where ggml has that path), its
        /// dequantization of `expected`, and the entries on which ggml aborts.
        var expectedNull: [String: [(Int, [UInt8])]] = [:]
        var dequantized: [String: [(Int, [Float])]] = [:]
        var aborts: [String: [Int]] = [:]
    }

    static let golden: Golden = {
        func read(_ name: String) -> [UInt8] {
            [UInt8](FileManager.default.contents(atPath: quantDir.appendingPathComponent(name).path)!)
        }
        func floats(_ b: [UInt8]) -> [Float] {
            stride(from: 0, to: b.count, by: 4).map { i in
                Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
            }
        }
        let manifest = try! JSONSerialization.jsonObject(with: Data(read("imatrix_entries.json"))) as! [String: Any]
        let inputs = floats(read("imatrix_inputs.bin"))
        let weights = floats(read("imatrix_weights.bin"))
        var g = Golden()
        var xo = 0, wo = 0
        for e in manifest["entries"] as! [[String: Any]] {
            let rows = e["rows"] as! Int, cols = e["cols"] as! Int
            g.entries.append(Entry(name: e["name"] as! String, rows: rows, cols: cols,
                                   x: Array(inputs[xo..<(xo + rows * cols)]), importance: Array(weights[wo..<(wo + cols)])))
            xo += rows * cols
            wo += cols
        }
        precondition(xo == inputs.count && wo == weights.count)
        for t in manifest["types"] as! [[String: Any]] {
            let name = t["name"] as! String
            let type = GGMLType(rawValue: UInt32(t["id"] as! Int))!
            func split(_ file: String, _ size: (Entry) -> Int) -> [(Int, [UInt8])] {
                let bytes = read(file)
                var off = 0
                var out: [(Int, [UInt8])] = []
                for i in t["entries"] as! [Int] {
                    let n = size(g.entries[i])
                    out.append((i, Array(bytes[off..<(off + n)])))
                    off += n
                }
                precondition(off == bytes.count)
                return out
            }
            let rowBytes = { (e: Entry) in e.rows * type.rowSize(e.cols)! }
            g.expected[name] = split(t["quantized"] as! String, rowBytes)
            if let f = t["quantized_null"] as? String { g.expectedNull[name] = split(f, rowBytes) }
            if let f = t["dequantized"] as? String {
                g.dequantized[name] = split(f, { $0.rows * $0.cols * 4 }).map { ($0.0, floats($0.1)) }
            }
            if let a = t["aborts"] as? [Int] { g.aborts[name] = a }
        }
        return g
    }()

    /// One row through `quantizeRow(_:importance:into:)`, or a row set through `quantizeRows`.
    static func quantize(_ q: any BlockQuantizer.Type, _ x: [Float], cols: Int, importance: [Float]?) -> [UInt8] {
        var out = [UInt8](repeating: 0xA5, count: x.count / cols * q.type.rowSize(cols)!)
        x.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBytes { d in
                if let importance {
                    importance.withUnsafeBufferPointer { w in
                        if x.count == cols {
                            q.quantizeRow(s, importance: w, into: d)
                        } else {
                            q.quantizeRows(s, rowLength: cols, importance: w, into: d)
                        }
                    }
                } else {
                    q.quantizeRows(s, rowLength: cols, importance: nil, into: d)
                }
            }
        }
        return out
    }

    static func dequantize(_ q: any BlockQuantizer.Type, _ bytes: [UInt8], count: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        bytes.withUnsafeBytes { s in out.withUnsafeMutableBufferPointer { q.dequantizeRow(s, into: $0) } }
        return out
    }

    static func hex(_ b: some Collection<UInt8>) -> String { b.map { String(format: "%02x", $0) }.joined() }

    @Test func fixtureCoversEveryWeightedType() {
        let g = Self.golden
        #expect(Set(g.expected.keys) == Set(Self.weightedNames + ["q8_0"] + IQuantTests.names))
        for name in Self.weightedNames {
            let block = Self.weighted[name]!.type.blockSize
            // Every entry whose rows split into the type's blocks is covered, multi-row ones included.
            let want = g.entries.indices.filter { g.entries[$0].cols % block == 0 }
            #expect(g.expected[name]!.map(\.0) == want, "\(name)")
            #expect(g.expected[name]!.contains { g.entries[$0.0].rows > 1 }, "\(name)")
        }
    }

    @Test(arguments: weightedNames)
    func matchesLlamaCpp(_ name: String) {
        let q = Self.weighted[name]!
        let usesImportance = q.usesImportance
        #expect(usesImportance)
        var mismatches: [String] = []
        var differFromNull = 0
        for (i, want) in Self.golden.expected[name]! {
            let e = Self.golden.entries[i]
            let got = Self.quantize(q, e.x, cols: e.cols, importance: e.importance)
            if got != want {
                let first = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }!.offset
                mismatches.append("\(e.name) (byte \(first) of \(want.count): \(Self.hex(got[first..<min(first + 8, got.count)])) vs \(Self.hex(want[first..<min(first + 8, want.count)])))")
            }
            if Self.quantize(q, e.x, cols: e.cols, importance: nil) != want { differFromNull += 1 }
        }
        #expect(mismatches.isEmpty, "\(name): \(mismatches.count) entries differ: \(mismatches.prefix(10))")
        // The fixture has to exercise the imatrix path, not rows where it gives ggml's NULL bytes.
        #expect(differFromNull * 4 >= Self.golden.expected[name]!.count * 3, "\(name): only \(differFromNull) entries differ from the NULL path")
    }

    /// The rows of a multi-row entry one at a time give the bytes of the whole chunk: the
    /// imatrix is per column, shared by the rows, and nothing carries from row to row.
    @Test(arguments: weightedNames)
    func rowsAreIndependent(_ name: String) {
        let q = Self.weighted[name]!
        for (i, want) in Self.golden.expected[name]! where Self.golden.entries[i].rows > 1 {
            let e = Self.golden.entries[i]
            let rowBytes = q.type.rowSize(e.cols)!
            for r in 0..<e.rows {
                let got = Self.quantize(q, Array(e.x[(r * e.cols)..<((r + 1) * e.cols)]), cols: e.cols, importance: e.importance)
                #expect(got[...] == want[(r * rowBytes)..<((r + 1) * rowBytes)], "\(name) \(e.name) row \(r)")
            }
        }
    }

    /// ggml's q8_0 bytes are the same with an imatrix, and so are ours. Rows holding inf or NaN are
    /// left out of the comparison with ggml: our q8_0 follows convert_hf_to_gguf's numpy rounding,
    /// which treats a NaN block differently from ggml's C (the converter rejects such rows).
    @Test func q8_0GoldenIgnoresImportance() {
        var compared = 0
        for (i, want) in Self.golden.expected["q8_0"]! {
            let e = Self.golden.entries[i]
            let weighted = Self.quantize(Q8_0.self, e.x, cols: e.cols, importance: e.importance)
            #expect(weighted == Self.quantize(Q8_0.self, e.x, cols: e.cols, importance: nil), "\(e.name)")
            guard e.x.allSatisfy(\.isFinite) else { continue }
            #expect(weighted == want, "\(e.name)")
            compared += 1
        }
        #expect(compared >= 50)
    }

    @Test func typesWithoutImatrixPathIgnoreIt() {
        var rng = QuantizersTests.SplitMix(state: 11)
        let x = (0..<512).map { _ in Float(Int64(bitPattern: rng.next()) >> 40) / Float(1 << 20) }
        let w = (0..<512).map { _ in Float(rng.next() >> 40) / Float(1 << 24) }
        for q in Self.ignoring {
            let usesImportance = q.usesImportance
            #expect(!usesImportance, "\(q.type)")
            #expect(Self.quantize(q, x, cols: 512, importance: w) == Self.quantize(q, x, cols: 512, importance: nil), "\(q.type)")
        }
        #expect(Set(Quantizers.writableTypes.filter { Quantizers.quantizer(for: $0)!.usesImportance }.map(\.name))
                    == Set(Self.weightedNames + IQuantTests.names))
    }

    /// nil importance is exactly the old entry point, so existing callers see no change.
    @Test(arguments: weightedNames)
    func nilImportanceIsTheNullPath(_ name: String) {
        let q = Self.weighted[name]!
        for (i, _) in Self.golden.expected[name]! {
            let e = Self.golden.entries[i]
            var old = [UInt8](repeating: 0, count: e.x.count / e.cols * q.type.rowSize(e.cols)!)
            var new = old
            let rowBytes = q.type.rowSize(e.cols)!
            e.x.withUnsafeBufferPointer { s in
                for r in 0..<e.rows {
                    let row = UnsafeBufferPointer(rebasing: s[(r * e.cols)..<((r + 1) * e.cols)])
                    old.withUnsafeMutableBytes { q.quantizeRow(row, into: UnsafeMutableRawBufferPointer(rebasing: $0[(r * rowBytes)..<((r + 1) * rowBytes)])) }
                    new.withUnsafeMutableBytes { q.quantizeRow(row, importance: nil, into: UnsafeMutableRawBufferPointer(rebasing: $0[(r * rowBytes)..<((r + 1) * rowBytes)])) }
                }
            }
            #expect(old == new, "\(name) \(e.name)")
        }
    }

    /// The iq4_nl fast imatrix path against the statement-by-statement port, on rows well beyond
    /// the fixture: scales from subnormal to near overflow, zero and huge importance.
    @Test func iq4nlFastPathEqualsReference() {
        var rng = LegacyQuantTests.SplitMix(state: 2024)
        for r in 0..<300 {
            let row = r % 5 == 4 ? LegacyQuantTests.bitsRow(&rng, blocks: 4) : LegacyQuantTests.randomRow(&rng, blocks: 4)
            let w: [Float] = (0..<row.count).map { j in
                switch (r + j / 32) % 4 {
                case 0: return 1
                case 1: return rng.next() % 3 == 0 ? 0 : rng.uniform()
                case 2: return Float(pow(10, Double(rng.uniform()) * 16 - 8))
                default: return rng.normal() * rng.normal()
                }
            }
            var fast = [UInt8](repeating: 0, count: IQ4_NL.type.rowSize(row.count)!)
            var ref = fast
            row.withUnsafeBufferPointer { s in
                w.withUnsafeBufferPointer { wb in
                    fast.withUnsafeMutableBytes { IQ4_NL.quantizeRow(s, importance: wb, into: $0) }
                    ref.withUnsafeMutableBytes { IQ4_NL.quantizeRowReference(s, importance: wb, into: $0) }
                }
            }
            if fast != ref {
                Issue.record("row \(r): fast \(Self.hex(fast)) reference \(Self.hex(ref))")
                return
            }
        }
    }

    /// What the imatrix is for: the error weighted by importance, Σ w·(x − x̂)², is smaller than
    /// without it (ggml's own results on these rows: 0.34...0.60 of it on average, never above
    /// 0.87 in a row).
    @Test(arguments: weightedNames)
    func importanceLowersWeightedError(_ name: String) {
        let q = Self.weighted[name]!
        var rng = LegacyQuantTests.SplitMix(state: 99)
        var ratios: [Double] = []
        for _ in 0..<12 {
            let x = (0..<512).map { _ in 0.02 * rng.normal() }
            let w = (0..<512).map { _ in Float(exp(2 * Double(rng.normal()))) }
            func weightedError(_ importance: [Float]?) -> Double {
                let back = Self.dequantize(q, Self.quantize(q, x, cols: 512, importance: importance), count: 512)
                var sum: Double = 0
                for j in 0..<512 {
                    let e = Double(back[j] - x[j])
                    sum += Double(w[j]) * e * e
                }
                return sum
            }
            ratios.append(weightedError(w) / weightedError(nil))
        }
        #expect(ratios.allSatisfy { $0 < 1 }, "\(name): \(ratios)")
        #expect(ratios.reduce(0, +) / Double(ratios.count) < 0.8, "\(name): \(ratios)")
    }

    @Test(arguments: weightedNames)
    func emptyRow(_ name: String) {
        let q = Self.weighted[name]!
        var out: [UInt8] = []
        [Float]().withUnsafeBufferPointer { s in out.withUnsafeMutableBytes { q.quantizeRow(s, importance: s, into: $0) } }
        #expect(out.isEmpty)
    }
}
