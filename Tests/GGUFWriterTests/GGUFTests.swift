import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import Testing

@Suite struct GGUFTests {
    func tempPath(_ name: String) -> String { NSTemporaryDirectory() + "eq-gguf-\(UUID().uuidString)-\(name)" }

    @Test func writesAndReadsEveryValueType() throws {
        let w = GGUFFileWriter()
        let values: [(String, GGUFValue)] = [
            ("u8", .uint8(200)), ("i8", .int8(-5)), ("u16", .uint16(60000)), ("i16", .int16(-300)),
            ("u32", .uint32(4_000_000_000)), ("i32", .int32(-7)), ("f32", .float32(1.5)), ("b", .bool(true)),
            ("s", .string("héllo")), ("u64", .uint64(1 << 40)), ("i64", .int64(-(1 << 40))), ("f64", .float64(2.25)),
            ("arr", .strings(["a", "", "ç"])), ("nested", .array(.array, [.int32s([1, 2]), .int32s([])])),
        ]
        for (k, v) in values { w.add(k, v) }
        w.add("u8", .uint8(7)) // replaces in place, as gguf-py does
        w.addTensor(name: "t0", ne: [32, 2], type: .q8_0)
        w.addTensor(name: "t1", ne: [3], type: .f32)
        let p = tempPath("rt.gguf")
        defer { try? FileManager.default.removeItem(atPath: p) }
        try w.begin(path: p)
        let q = [UInt8](repeating: 0xAB, count: 68)
        try q.withUnsafeBytes { try w.writeTensorData(0, $0) }
        try [Float](arrayLiteral: 1, 2, 3).withUnsafeBytes { try w.writeTensorData(1, $0) }
        try w.commit()

        let f = try GGUFFile(path: p)
        #expect(f.version == 3)
        #expect(f.metadata.map(\.key) == values.map(\.0))
        #expect(f["u8"] == .uint8(7))
        for (k, v) in values.dropFirst() { #expect(f[k] == v, "\(k)") }
        #expect(f.tensors.map(\.name) == ["t0", "t1"])
        #expect(f.tensors[1].offset == 96) // 68 padded to 32
        #expect(f.dataStart % 32 == 0)
        #expect(Array(f.data(f.tensors[0])) == q)
        #expect(f.file.size == f.dataStart + 96 + 32)
    }

    /// The layout is a pure function of what was added: asking for it changes nothing, and it is
    /// the file `begin` writes (size, data start, offsets).
    @Test func layoutIsPureAndIsWhatGetsWritten() throws {
        let w = GGUFFileWriter()
        w.add("k", .string("v"))
        w.addTensor(name: "a", ne: [32, 3], type: .q8_0)
        w.addTensor(name: "b", ne: [5], type: .f32)
        let l1 = w.layout, l2 = w.layout
        #expect(l1.headerBytes == l2.headerBytes && l1.totalSize == l2.totalSize && l1.tensorOffsets == [0, 128])
        let alone = GGUFLayout(metadata: [("k", .string("v"))], tensors: [GGUFTensorInfo(name: "a", ne: [32, 3], type: .q8_0),
                                                                         GGUFTensorInfo(name: "b", ne: [5], type: .f32)])
        #expect(alone.headerBytes == l1.headerBytes && alone.totalSize == l1.totalSize)
        let p = tempPath("layout.gguf")
        defer { try? FileManager.default.removeItem(atPath: p) }
        let written = try w.begin(path: p)
        #expect(written.totalSize == l1.totalSize)
        try [UInt8](repeating: 1, count: 102).withUnsafeBytes { try w.writeTensorData(0, $0) }
        try [Float](repeating: 2, count: 5).withUnsafeBytes { try w.writeTensorData(1, $0) }
        try w.commit()
        let f = try GGUFFile(path: p)
        #expect(f.file.size == l1.totalSize && f.dataStart == l1.dataStart)
        #expect(f.tensors.map(\.offset) == l1.tensorOffsets)
    }

    @Test func abortLeavesNothing() throws {
        let p = tempPath("abort.gguf")
        let w = GGUFFileWriter()
        w.addTensor(name: "t", ne: [4], type: .f32)
        try w.begin(path: p)
        w.abort()
        #expect(!FileManager.default.fileExists(atPath: p))
        #expect(!FileManager.default.fileExists(atPath: OutputFile.tempName(for: p)))
    }

    func header(nTensors: UInt64, nKV: UInt64, version: UInt32 = 3) -> [UInt8] {
        var b = Array("GGUF".utf8)
        withUnsafeBytes(of: version.littleEndian) { b += $0 }
        withUnsafeBytes(of: nTensors.littleEndian) { b += $0 }
        withUnsafeBytes(of: nKV.littleEndian) { b += $0 }
        return b
    }

    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    func str(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

    @Test func refusesHostileFiles() throws {
        let cases: [([UInt8], String)] = [
            (Array("GGU".utf8), "no GGUF magic"),
            (Array("GGML0000000000000000000000".utf8), "bad magic"),
            (header(nTensors: 0, nKV: 0, version: 1), "unsupported GGUF version 1"),
            (header(nTensors: 0, nKV: UInt64.max), "metadata count"),
            (header(nTensors: 1 << 60, nKV: 0), "tensor count"),
            (header(nTensors: 0, nKV: 1) + le(UInt64(1) << 62) + Array("k".utf8) + [UInt8](repeating: 0, count: 32), "claims"),
            (header(nTensors: 0, nKV: 1) + str("k") + le(UInt32(99)), "unknown value type 99"),
            (header(nTensors: 0, nKV: 1) + str("k") + le(UInt32(9)) + le(UInt32(4)) + le(UInt64(1) << 50), "array of"),
            (header(nTensors: 0, nKV: 1) + str("k") + le(UInt32(7)) + [5], "bool value 5"),
            (header(nTensors: 0, nKV: 2) + str("k") + le(UInt32(0)) + [1] + str("k") + le(UInt32(0)) + [1], "duplicate metadata key"),
            (header(nTensors: 1, nKV: 0) + str("t") + le(UInt32(9)) + [UInt8](repeating: 0, count: 64), "9 dimensions"),
            (header(nTensors: 1, nKV: 0) + str("t") + le(UInt32(2)) + le(UInt64(1) << 40) + le(UInt64(1) << 40) + le(UInt32(0)) + le(UInt64(0)), "overflows"),
            (header(nTensors: 1, nKV: 0) + str("t") + le(UInt32(1)) + le(UInt64(4)) + le(UInt32(77)) + le(UInt64(0)), "unknown ggml type 77"),
            (header(nTensors: 1, nKV: 0) + str("t") + le(UInt32(1)) + le(UInt64(33)) + le(UInt32(8)) + le(UInt64(0)), "block size"),
            (header(nTensors: 1, nKV: 0) + str("t") + le(UInt32(1)) + le(UInt64(4)) + le(UInt32(0)) + le(UInt64(3)), "not aligned"),
            (header(nTensors: 1, nKV: 0) + str("t") + le(UInt32(1)) + le(UInt64(1024)) + le(UInt32(0)) + le(UInt64(0)), "runs past the end"),
            (header(nTensors: 2, nKV: 0) + (str("t") + le(UInt32(1)) + le(UInt64(1)) + le(UInt32(0)) + le(UInt64(0))) + (str("t") + le(UInt32(1)) + le(UInt64(1)) + le(UInt32(0)) + le(UInt64(32))) + [UInt8](repeating: 0, count: 100), "duplicate tensor name"),
        ]
        for (bytes, text) in cases {
            let p = tempPath("bad.gguf")
            _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
            defer { try? FileManager.default.removeItem(atPath: p) }
            do {
                _ = try GGUFFile(path: p)
                Issue.record("expected \(text)")
            } catch let error as GGUFError {
                #expect(error.fault.contains(text), "\(error.fault)")
                #expect(error.path == p)
            } catch {
                Issue.record("\(type(of: error)): \(error)")
            }
        }
    }

    @Test func typeTableMatchesGGML() {
        #expect(GGMLType.q8_0.typeSize == 34 && GGMLType.q8_0.blockSize == 32)
        #expect(GGMLType.q4_K.typeSize == 144 && GGMLType.q6_K.typeSize == 210 && GGMLType.q2_K.typeSize == 84)
        #expect(GGMLType.q3_K.typeSize == 110 && GGMLType.q5_K.typeSize == 176 && GGMLType.iq4_xs.typeSize == 136)
        #expect(GGMLType(name: "Q4_K") == .q4_K && GGMLType(name: "bf16") == .bf16)
        #expect(GGMLType(rawValue: 4) == nil)
        #expect(abs(GGMLType.q4_K.bitsPerWeight - 4.5) < 1e-9)
    }
}
