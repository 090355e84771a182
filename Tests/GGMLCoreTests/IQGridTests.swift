import Crypto
import Foundation
import GGMLCore
import Testing

/// The i-quant lattices and sign tables, transcribed from ggml-common.h by scripts/gen-iq-tables.py,
/// against the SHA-256 of ggml's own tables (Fixtures/iq-tables.sha256, little-endian bytes).
@Suite struct IQGridTests {
    static func bytes<T: FixedWidthInteger>(_ a: [T]) -> [UInt8] {
        a.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    @Test func tablesEqualGGMLs() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("Fixtures/iq-tables.sha256"), encoding: .utf8)
        var want: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            want[String(f[1])] = String(f[0])
        }
        let have: [String: (count: Int, bytes: [UInt8])] = [
            "kmask_iq2xs": (GGMLTables.kmaskIQ2XS.count, Self.bytes(GGMLTables.kmaskIQ2XS)),
            "ksigns_iq2xs": (GGMLTables.ksignsIQ2XS.count, Self.bytes(GGMLTables.ksignsIQ2XS)),
            "iq2xxs_grid": (GGMLTables.iq2xxsGrid.count, Self.bytes(GGMLTables.iq2xxsGrid)),
            "iq2xs_grid": (GGMLTables.iq2xsGrid.count, Self.bytes(GGMLTables.iq2xsGrid)),
            "iq2s_grid": (GGMLTables.iq2sGrid.count, Self.bytes(GGMLTables.iq2sGrid)),
            "iq3xxs_grid": (GGMLTables.iq3xxsGrid.count, Self.bytes(GGMLTables.iq3xxsGrid)),
            "iq3s_grid": (GGMLTables.iq3sGrid.count, Self.bytes(GGMLTables.iq3sGrid)),
            "iq1s_grid": (GGMLTables.iq1sGrid.count, Self.bytes(GGMLTables.iq1sGrid)),
        ]
        #expect(Set(have.keys) == Set(want.keys))
        let sizes = ["kmask_iq2xs": 8, "ksigns_iq2xs": 128, "iq2xxs_grid": 256, "iq2xs_grid": 512, "iq2s_grid": 1024,
                     "iq3xxs_grid": 256, "iq3s_grid": 512, "iq1s_grid": 2048]
        for (name, t) in have {
            #expect(t.count == sizes[name], "\(name)")
            let digest = SHA256.hash(data: t.bytes).map { String(format: "%02x", $0) }.joined()
            #expect(digest == want[name], "\(name)")
        }
    }

    /// The grids' entries are lattice points from small alphabets: IQ2 bytes 8, 25, 43; IQ3_XXS
    /// 4, 12, …, 52 and 62; IQ3_S the odd numbers 1…15; IQ1 bytes −1, 0, +1.
    @Test func gridEntriesAreLatticePoints() {
        for g in [GGMLTables.iq2xxsGrid, GGMLTables.iq2xsGrid, GGMLTables.iq2sGrid] {
            for v in g { #expect(Self.bytes([v]).allSatisfy { [0x08, 0x19, 0x2b].contains($0) }) }
        }
        for v in GGMLTables.iq3xxsGrid { #expect(Self.bytes([v]).allSatisfy { [4, 12, 20, 28, 36, 44, 52, 62].contains($0) }) }
        for v in GGMLTables.iq3sGrid { #expect(Self.bytes([v]).allSatisfy { $0 % 2 == 1 && $0 <= 15 }) }
        for v in GGMLTables.iq1sGrid { #expect(Self.bytes([v]).allSatisfy { [0xff, 0x00, 0x01].contains($0) }) }
    }
}
