import Foundation
import GGMLCore
@testable import Quantizers
import Testing

/// The i-quants below IQ4_NL against llama.cpp's own quantizer: ggml_quantize_chunk's bytes with the
/// fixture's importance vectors and, where ggml allows it, without (Fixtures/quant/make_golden_imatrix.py),
/// and ggml's dequantization of its bytes.
@Suite struct IQuantTests {
    static let quantizers: [String: any BlockQuantizer.Type] = [
        "iq2_xxs": IQ2_XXS.self, "iq2_xs": IQ2_XS.self, "iq2_s": IQ2_S.self, "iq3_xxs": IQ3_XXS.self,
        "iq3_s": IQ3_S.self, "iq1_s": IQ1_S.self, "iq1_m": IQ1_M.self, "iq4_xs": IQ4_XS.self,
    ]
    static let names = quantizers.keys.sorted()
    typealias G = ImportanceQuantTests

    static func mismatch(_ e: G.Entry, _ got: [UInt8], _ want: [UInt8]) -> String? {
        guard got != want else { return nil }
        let first = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, want.count)
        return "\(e.name) (byte \(first) of \(want.count))"
    }

    @Test func everyTypeIsWritableAndCovered() {
        for name in Self.names {
            let q = Self.quantizers[name]!
            #expect(Quantizers.quantizer(for: q.type) == q, "\(name)")
            let usesImportance = q.usesImportance
            #expect(usesImportance)
            let entries = G.golden.expected[name]!
            // every finite entry of whole super-blocks, multi-row ones included
            #expect(entries.count >= 40 && entries.contains { G.golden.entries[$0.0].rows > 1 }, "\(name)")
        }
        #expect(Set(G.golden.expectedNull.keys) == ["iq2_s", "iq3_s", "iq3_xxs", "iq4_xs", "iq1_m"])
    }

    @Test(arguments: names)
    func matchesLlamaCppWithImatrix(_ name: String) {
        let q = Self.quantizers[name]!
        var bad: [String] = []
        for (i, want) in G.golden.expected[name]! {
            let e = G.golden.entries[i]
            if let m = Self.mismatch(e, G.quantize(q, e.x, cols: e.cols, importance: e.importance), want) { bad.append(m) }
        }
        #expect(bad.isEmpty, "\(name): \(bad.count) entries differ: \(bad.prefix(10))")
    }

    @Test(arguments: ["iq2_s", "iq3_s", "iq3_xxs", "iq4_xs", "iq1_m"])
    func matchesLlamaCppWithoutImatrix(_ name: String) {
        let q = Self.quantizers[name]!
        var bad: [String] = []
        var differs = 0
        for (i, want) in G.golden.expectedNull[name]! {
            let e = G.golden.entries[i]
            if let m = Self.mismatch(e, G.quantize(q, e.x, cols: e.cols, importance: nil), want) { bad.append(m) }
            if want != G.golden.expected[name]!.first(where: { $0.0 == i })!.1 { differs += 1 }
        }
        #expect(bad.isEmpty, "\(name): \(bad.count) entries differ: \(bad.prefix(10))")
        // the fixture exercises the imatrix path, not rows where it gives the NULL bytes
        #expect(differs * 2 >= G.golden.expectedNull[name]!.count, "\(name): only \(differs) entries depend on the imatrix")
    }

    @Test(arguments: names)
    func dequantizesAsLlamaCpp(_ name: String) {
        let q = Self.quantizers[name]!
        var bad: [String] = []
        for ((i, bytes), (j, want)) in zip(G.golden.expected[name]!, G.golden.dequantized[name]!) {
            precondition(i == j)
            let e = G.golden.entries[i]
            let got = G.dequantize(q, bytes, count: e.rows * e.cols)
            if got.map(\.bitPattern) != want.map(\.bitPattern) { bad.append(e.name) }
        }
        #expect(bad.isEmpty, "\(name): \(bad)")
    }

    /// Where ggml aborts (GGML_ASSERT in its neighbour search when a 1e20 element makes every
    /// distance inf: llama-quantize dies), ours returns, with the same bytes every time. (Those bytes
    /// cannot dequantize to finite values: the block scale overflows fp16, as q4_0's does.)
    @Test(arguments: names)
    func survivesWhatAbortsGGML(_ name: String) {
        let q = Self.quantizers[name]!
        for i in G.golden.aborts[name] ?? [] {
            let e = G.golden.entries[i]
            let once = G.quantize(q, e.x, cols: e.cols, importance: e.importance)
            #expect(once == G.quantize(q, e.x, cols: e.cols, importance: e.importance), "\(name) \(e.name)")
        }
        #expect(G.golden.aborts.values.reduce(0) { $0 + $1.count } >= 1)
    }

    /// Rows of a multi-row entry one at a time give the chunk's bytes.
    @Test(arguments: names)
    func rowsAreIndependent(_ name: String) {
        let q = Self.quantizers[name]!
        for (i, want) in G.golden.expected[name]! where G.golden.entries[i].rows > 1 {
            let e = G.golden.entries[i]
            let rb = q.type.rowSize(e.cols)!
            for r in 0..<e.rows {
                let row = Array(e.x[(r * e.cols)..<((r + 1) * e.cols)])
                #expect(G.quantize(q, row, cols: e.cols, importance: e.importance) == Array(want[(r * rb)..<((r + 1) * rb)]), "\(name) \(e.name) row \(r)")
            }
        }
    }
}
