import Calibration
import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import Testing

private let repoFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures").path

private func tempDir() -> String {
    let d = NSTemporaryDirectory() + "eq-imatrix-reader-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// A GGUF imatrix as llama-imatrix writes one: metadata, then `<name>.in_sum2` (ne = [ne0, nMat])
/// and `<name>.counts` (ne = [1, nMat]) per entry. `extra` adds or replaces tensors.
private func writeImatrixGGUF(_ path: String, entries: [(String, [Float], [Float])],
                              metadata: [(String, GGUFValue)]? = nil,
                              extra: [(name: String, ne: [Int], type: GGMLType, bytes: [UInt8])] = []) throws {
    let w = GGUFFileWriter()
    for (k, v) in metadata ?? [("general.type", .string("imatrix")), ("imatrix.datasets", .strings(["calib.txt"])),
                               ("imatrix.chunk_count", .uint32(10)), ("imatrix.chunk_size", .uint32(512))] {
        w.add(k, v)
    }
    var data: [[UInt8]] = []
    for (name, sums, counts) in entries {
        let split = !counts.isEmpty && sums.count % counts.count == 0
        _ = w.addTensor(name: name + ".in_sum2", ne: split ? [sums.count / counts.count, counts.count] : [sums.count], type: .f32)
        _ = w.addTensor(name: name + ".counts", ne: [1, counts.count], type: .f32)
        data.append(sums.flatMap(leBytes))
        data.append(counts.flatMap(leBytes))
    }
    for e in extra {
        _ = w.addTensor(name: e.name, ne: e.ne, type: e.type)
        data.append(e.bytes)
    }
    try w.begin(path: path)
    for (i, d) in data.enumerated() { try d.withUnsafeBytes { try w.writeTensorData(i, $0) } }
    try w.commit()
}

private func leBytes(_ f: Float) -> [UInt8] { withUnsafeBytes(of: f.bitPattern.littleEndian, Array.init) }
private func leBytes(_ i: Int32) -> [UInt8] { withUnsafeBytes(of: i.littleEndian, Array.init) }

/// llama-imatrix's legacy `.dat`: n_entries, then per entry name length, name, ncall, nval,
/// values; then the optional chunk count and dataset name.
private func legacyBytes(_ entries: [(String, Int32, [Float])], trailer: (Int32, String)? = nil) -> [UInt8] {
    var b = leBytes(Int32(entries.count))
    for (name, ncall, values) in entries {
        b += leBytes(Int32(name.utf8.count)) + Array(name.utf8) + leBytes(ncall) + leBytes(Int32(values.count))
        b += values.flatMap(leBytes)
    }
    if let (chunks, dataset) = trailer { b += leBytes(chunks) + leBytes(Int32(dataset.utf8.count)) + Array(dataset.utf8) }
    return b
}

private func readBytes(_ bytes: [UInt8], in dir: String, name: String = "im.dat") throws -> ImportanceMatrix {
    let p = (dir as NSString).appendingPathComponent(name)
    _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
    return try ImatrixReader.read(path: p)
}

private func expectImatrixError(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let d = tempDir()
    defer { try? FileManager.default.removeItem(atPath: d) }
    do {
        _ = try readBytes(bytes, in: d)
        Issue.record("expected an error containing \"\(fragment)\"", sourceLocation: sourceLocation)
    } catch let error as CalibrationError {
        #expect(error.path.hasSuffix("im.dat"), sourceLocation: sourceLocation)
        #expect(error.fault.contains(fragment), "\(error.fault)", sourceLocation: sourceLocation)
        #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct ImatrixReaderTests {
    /// The SmolLM2 imatrix llama-imatrix wrote (-c 512 --chunks 10), used end to end in scripts/test.sh.
    @Test func readsLlamaImatrixGGUF() throws {
        let m = try ImatrixReader.read(path: repoFixtures + "/smollm2/imatrix.gguf")
        #expect(!m.isLegacy)
        #expect(m.entries.count == 30 * 7)
        #expect(m.datasets == ["/work/data/wiki/wiki-calib.txt"])
        #expect(m.chunkCount == 10 && m.chunkSize == 512)
        let q = try #require(m.entries["blk.0.attn_q.weight"])
        #expect(q.sums.count == 576 && q.nMat == 1)
        #expect(m.entries["blk.29.ffn_down.weight"]?.sums.count == 1536)
        // 10 chunks of 512 tokens; every matmul in a dense model sees every token.
        #expect(q.counts == [5120])
        let w = try #require(m.quantWeights(for: "blk.0.attn_q.weight"))
        #expect(w == q.sums.map { $0 / 5120 })
        #expect(m.quantWeights(for: "token_embd.weight") == nil)
        #expect(m.allQuantWeights().count == 210)
    }

    /// load_imatrix's arithmetic: counts go through lround to int64 and back to float; a matrix
    /// whose count is not positive gets 1s; sums that do not split evenly leave the tail at 0.
    @Test func ggufQuantWeightsFollowLoadImatrix() throws {
        let d = tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let p = d + "/im.gguf"
        try writeImatrixGGUF(p, entries: [
            ("a.weight", [1, 2, 3, 4, 5, 6], [2.5, 0]),           // lround(2.5) = 3; second matrix saw no tokens
            ("b.weight", [8, 8, 8, 8], [-1.4, .nan]),             // lround(-1.4) = -1 and NaN (LONG_MIN): both not positive
            ("c.weight", [1, 2, 3, 4, 5, 6, 7], [2, 4]),          // 7 sums over 2 matrices: ne0 = 3, the 7th stays 0
            ("d.weight", [3, 6], [1.49999]),
        ])
        let m = try ImatrixReader.read(path: p)
        #expect(m.quantWeights(for: "a.weight") == [1.0 / 3, 2.0 / 3, 1, 1, 1, 1])
        #expect(m.quantWeights(for: "b.weight") == [1, 1, 1, 1])
        #expect(m.quantWeights(for: "c.weight") == [0.5, 1, 1.5, 1, 1.25, 1.5, 0])
        #expect(m.quantWeights(for: "d.weight") == [3, 6])
        #expect(m.datasets == ["calib.txt"] && m.chunkCount == 10 && m.chunkSize == 512)
    }

    /// Tensors that are neither `.in_sum2` nor `.counts` are ignored, as common_imatrix_load does.
    @Test func ggufIgnoresOtherTensors() throws {
        let d = tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try writeImatrixGGUF(d + "/im.gguf", entries: [("x.weight", [4, 4], [2])],
                             extra: [(name: "something.else", ne: [2], type: .f32, bytes: [0, 0, 0, 0, 0, 0, 0, 0])])
        let m = try ImatrixReader.read(path: d + "/im.gguf")
        #expect(Array(m.entries.keys) == ["x.weight"])
    }

    @Test func ggufFaults() throws {
        let d = tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        func fault(_ fragment: String, entries: [(String, [Float], [Float])] = [("x.weight", [1, 2], [1])],
                   metadata: [(String, GGUFValue)]? = nil,
                   extra: [(name: String, ne: [Int], type: GGMLType, bytes: [UInt8])] = [],
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
            let p = d + "/f-\(UUID().uuidString).gguf"
            try writeImatrixGGUF(p, entries: entries, metadata: metadata, extra: extra)
            do {
                _ = try ImatrixReader.read(path: p)
                Issue.record("expected \"\(fragment)\"", sourceLocation: sourceLocation)
            } catch let error as CalibrationError {
                #expect(error.path == p, sourceLocation: sourceLocation)
                #expect(error.fault.contains(fragment), "\(error.fault)", sourceLocation: sourceLocation)
            } catch {
                Issue.record("\(type(of: error)): \(error)", sourceLocation: sourceLocation)
            }
        }
        try fault("no data", entries: [])
        try fault("missing imatrix metadata", metadata: [("general.type", .string("imatrix")), ("imatrix.chunk_count", .uint32(1))])
        try fault("imatrix.chunk_count must be a uint32", metadata: [
            ("imatrix.datasets", .strings(["t"])), ("imatrix.chunk_count", .int32(1)), ("imatrix.chunk_size", .uint32(512)),
        ])
        try fault("mismatched sums and counts for y.weight", extra: [(name: "y.weight.in_sum2", ne: [1], type: .f32, bytes: leBytes(Float(1)))])
        try fault("mismatched sums and counts for y.weight", extra: [(name: "y.weight.counts", ne: [1], type: .f32, bytes: leBytes(Float(1)))])
        try fault("must be F32", entries: [], extra: [
            (name: "y.weight.in_sum2", ne: [2], type: .f32, bytes: leBytes(Float(1)) + leBytes(Float(1))),
            (name: "y.weight.counts", ne: [1], type: .f16, bytes: [0, 0x3C]),
        ])
        try fault("counts for y.weight are empty", entries: [], extra: [
            (name: "y.weight.in_sum2", ne: [2], type: .f32, bytes: leBytes(Float(1)) + leBytes(Float(1))),
            (name: "y.weight.counts", ne: [0], type: .f32, bytes: []),
        ])
        // Without requireMetadata (other readers of imatrix files), the metadata may be absent.
        let p = d + "/nometa.gguf"
        try writeImatrixGGUF(p, entries: [("x.weight", [1, 2], [1])], metadata: [("general.type", .string("imatrix"))])
        let m = try ImatrixReader.read(path: p, requireMetadata: false)
        #expect(m.entries.count == 1 && m.datasets.isEmpty && m.chunkCount == 0)
    }

    /// chunk_count is read into llama.cpp's int32_t: a value past INT32_MAX is negative there, and
    /// then quantize.imatrix.chunks_count is not written.
    @Test func chunkCountWrapsLikeInt32() throws {
        let d = tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try writeImatrixGGUF(d + "/im.gguf", entries: [("x.weight", [1], [1])], metadata: [
            ("imatrix.datasets", .strings([])), ("imatrix.chunk_count", .uint32(0x8000_0001)), ("imatrix.chunk_size", .uint32(7)),
        ])
        let m = try ImatrixReader.read(path: d + "/im.gguf")
        #expect(m.chunkCount == -2_147_483_647 && m.chunkSize == 7 && m.datasets.isEmpty)
    }

    @Test func readsLegacyDat() throws {
        let d = tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let m = try readBytes(legacyBytes([("blk.0.attn_q.weight", 4, [4, 8, 2]), ("blk.0.ffn_up.weight", 0, [3, 5])],
                                          trailer: (10, "wiki.txt")), in: d)
        #expect(m.isLegacy && m.chunkCount == 10 && m.chunkSize == 0 && m.datasets == ["wiki.txt"])
        #expect(m.entries["blk.0.attn_q.weight"] == .init(sums: [4, 8, 2], counts: [4]))
        // Legacy sums are mean·ncall: divided by ncall, or kept as they are when ncall is not positive.
        #expect(m.quantWeights(for: "blk.0.attn_q.weight") == [1, 2, 0.5])
        #expect(m.quantWeights(for: "blk.0.ffn_up.weight") == [3, 5])
    }

    /// The trailer is optional and read the way istream::read reads it: a short chunk count keeps
    /// the bytes that were there; a dataset name cut short is dropped; names end at a NUL; a
    /// repeated entry replaces the earlier one.
    @Test func legacyEdgeCases() throws {
        let d = tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let base = legacyBytes([("w", 2, [2]), ("w", 1, [7, 9])])
        var m = try readBytes(base, in: d)
        #expect(m.chunkCount == 0 && m.datasets.isEmpty)
        #expect(m.entries.count == 1 && m.quantWeights(for: "w") == [7, 9])
        m = try readBytes(base + [0x05, 0x01], in: d)
        #expect(m.chunkCount == 0x105 && m.datasets.isEmpty)
        m = try readBytes(base + leBytes(Int32(3)) + leBytes(Int32(10)) + Array("short".utf8), in: d)
        #expect(m.chunkCount == 3 && m.datasets.isEmpty)
        m = try readBytes(base + leBytes(Int32(3)) + leBytes(Int32(5)) + Array("ab\0cd".utf8), in: d)
        #expect(m.datasets == ["ab"])
        m = try readBytes(legacyBytes([("x\0y", 1, [1])]), in: d)
        #expect(Array(m.entries.keys) == ["x"])
    }

    /// Hostile files: one error naming the file, never a crash or an allocation sized by the file.
    @Test func hostileLegacyFiles() {
        expectImatrixError([], "no data")
        expectImatrixError([1, 0], "no data")
        expectImatrixError(leBytes(Int32(0)), "no data")
        expectImatrixError(leBytes(Int32(-3)), "no data")
        expectImatrixError(leBytes(Int32.max), "failed reading name for entry 1")
        expectImatrixError(leBytes(Int32(1)) + leBytes(Int32(-1)), "failed reading name for entry 1")
        expectImatrixError(leBytes(Int32(1)) + leBytes(Int32.max) + [65, 66], "failed reading name for entry 1")
        let head = leBytes(Int32(1)) + leBytes(Int32(1)) + [65]
        expectImatrixError(head + leBytes(Int32(1)), "failed reading number of values for entry 1")
        expectImatrixError(head + leBytes(Int32(1)) + leBytes(Int32(0)), "failed reading number of values for entry 1")
        expectImatrixError(head + leBytes(Int32(1)) + leBytes(Int32(-5)), "failed reading number of values for entry 1")
        expectImatrixError(head + leBytes(Int32(1)) + leBytes(Int32.max) + [0, 0, 0, 0], "run past the end of the file")
        expectImatrixError(legacyBytes([("a", 1, [1]), ("b", 1, [1])]).dropLast(1).map { $0 }, "failed reading data for entry 2")
    }

    /// Every truncation and every single-byte corruption of a small valid file, in both formats,
    /// either reads or fails with a FileError naming the file.
    @Test func truncatedAndCorruptedFilesNeverCrash() throws {
        let d = tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try writeImatrixGGUF(d + "/v.gguf", entries: [("x.weight", [1, 2, 3, 4], [2, 3]), ("y.weight", [5], [1])])
        let gguf = [UInt8](FileManager.default.contents(atPath: d + "/v.gguf")!)
        let dat = legacyBytes([("x.weight", 3, [1, 2, 3]), ("y.weight", 1, [4])], trailer: (2, "t.txt"))
        for valid in [gguf, dat] {
            var variants: [[UInt8]] = (0..<valid.count).map { Array(valid[..<$0]) }
            for i in valid.indices {
                for v: UInt8 in [0x00, 0xFF, valid[i] ^ 0x80] {
                    var b = valid
                    b[i] = v
                    variants.append(b)
                }
            }
            for b in variants {
                do {
                    let m = try readBytes(b, in: d, name: "h.bin")
                    _ = m.allQuantWeights()
                } catch let error as CalibrationError {
                    #expect(error.path.hasSuffix("h.bin"))
                    #expect(!error.fault.isEmpty && !error.fault.contains("\n") && error.fault.count < 400,
                            "\(error.fault.debugDescription)")
                } catch {
                    Issue.record("\(type(of: error)): \(error)")
                }
            }
        }
    }
}
