import Foundation
import MappedIO
@testable import SafetensorsReader
import Testing

/// Fixtures/torch: written by real torch.save (make_torch_fixtures.py), with expected.json.
private let torchFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/torch").path

private func floats(_ v: [Float]) -> [UInt8] { v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

@Suite struct TorchFileTests {
    // MARK: - Files written by torch

    /// Names, order, dtypes, shapes and bytes exactly as torch.load(weights_only=True) reports them.
    @Test(arguments: ["state_dict.bin", "float8.bin", "tiny-llama/pytorch_model.bin"])
    func readsTorchWrittenFiles(_ name: String) throws {
        let json = try #require(FileManager.default.contents(atPath: torchFixtures + "/expected.json"))
        let all = try #require(try JSONSerialization.jsonObject(with: json) as? [String: [[String: Any]]])
        let expected = try #require(all[name])
        let f = try TorchFile(path: torchFixtures + "/" + name)
        #expect(f.tensors.map(\.name) == expected.map { $0["name"] as? String })
        for (t, e) in zip(f.tensors, expected) {
            #expect(t.dtype.rawValue == e["dtype"] as? String, "\(t.name)")
            #expect(t.shape == e["shape"] as? [Int], "\(t.name)")
            #expect(t.elementCount == t.shape.reduce(1, *))
            #expect(t.range.count == t.elementCount * t.dtype.bits / 8)
            #expect(sha256Hex(f.data(t)) == e["sha256"] as? String, "\(t.name)")
            #expect(f[t.name]?.range == t.range)
        }
    }

    @Test func stateDictDetails() throws {
        let f = try TorchFile(path: torchFixtures + "/state_dict.bin")
        #expect(f.prefix == "state_dict")
        let a = try #require(f["tied.a"]), b = try #require(f["tied.b"]), row = try #require(f["row.view"])
        // Tied weights are one storage: the same bytes, not a copy.
        #expect(a.range == b.range)
        // w[1] is the second row of that storage: storage_offset 4 floats.
        #expect(row.range == (a.range.lowerBound + 16)..<(a.range.lowerBound + 32))
        #expect(f["scalar"]?.shape == [] && f["scalar"]?.elementCount == 1)
        #expect(f["position_ids"]?.dtype == .i64)
        #expect(f["odd_stride"]?.shape == [1, 4])
        #expect(try #require(f.zip["state_dict/byteorder"]).range.count == 6)
    }

    /// torch.load takes the archive folder from the first entry, not from the file's current name.
    @Test func readsRenamedFile() throws {
        let d = TempDir(); defer { d.cleanup() }
        try FileManager.default.copyItem(atPath: torchFixtures + "/tiny-llama/pytorch_model.bin", toPath: d.file("renamed.bin"))
        let f = try TorchFile(path: d.file("renamed.bin"))
        #expect(f.prefix == "pytorch_model")
        #expect(f.tensors.first?.name == "model.embed_tokens.weight" && f.tensors.first?.dtype == .bf16)
        #expect(f.tensors.count == 21)
    }

    // MARK: - Hand-built archives that must read

    @Test(arguments: [false, true])
    func readsZip64Archive(_ zip64: Bool) throws {
        let w = floats([1, 2, 3, 4, 5, 6])
        let half: [UInt8] = [0x00, 0x3c, 0x00, 0x40]
        let pickle = PickleBuilder.stateDict([
            ("w", { $0.tensor(key: "0", numel: 6, size: [2, 3]) }),
            ("h", { $0.tensor(storage: "HalfStorage", key: "1", numel: 2, size: [2]) }),
            ("w.tail", { $0.tensor(key: "0", numel: 6, offset: 3, size: [1, 3], stride: [99, 1]) }),
        ])
        let f = try open(ZipBuilder.torch(pickle: pickle, storages: [("0", w), ("1", half)], zip64: zip64))
        #expect(f.prefix == "archive")
        #expect(f.tensors.map(\.name) == ["w", "h", "w.tail"])
        #expect(f.tensors.map(\.dtype) == [.f32, .f16, .f32])
        #expect(Array(f.data(f.tensors[0])) == w)
        #expect(Array(f.data(f.tensors[1])) == half)
        #expect(Array(f.data(f.tensors[2])) == Array(w[12...]))
        #expect(f.zip.entries.allSatisfy { $0.range.lowerBound % 64 == 0 })
    }

    /// Storages past 64 KB elements need BININT; LONG1 and the empty-tensor case read too.
    @Test func readsWideIntegersAndEmptyTensors() throws {
        let big = [UInt8](repeating: 7, count: 70_000)
        var p = PickleBuilder()
        p.op(0x7d, 0x28)
        p.string("big"); p.tensor(storage: "ByteStorage", key: "0", numel: 70_000, size: [70_000])
        p.string("empty"); p.tensor(key: "1", numel: 0, size: [0, 5])
        p.op(0x75, 0x2e)
        let f = try open(ZipBuilder.torch(pickle: p.bytes, storages: [("0", big), ("1", [])]))
        #expect(f["big"]?.dtype == .u8 && f["big"]?.elementCount == 70_000)
        #expect(Array(f.data(try #require(f["big"]))) == big)
        #expect(f["empty"]?.range.isEmpty == true && f["empty"]?.shape == [0, 5])
    }

    @Test func unpicklerDecodesScalars() throws {
        var p = PickleBuilder()
        p.op(0x95); p.bytes += withUnsafeBytes(of: UInt64(4).littleEndian, Array.init) // FRAME
        p.op(0x28) // MARK
        p.long1(-129); p.long1(1 << 40); p.long1(0); p.long1(Int(Int32.min) - 1); p.int(-2)
        p.op(0x47); p.bytes += withUnsafeBytes(of: (1.5).bitPattern.bigEndian, Array.init) // BINFLOAT
        p.op(0x8c, 3); p.bytes += Array("hé".utf8) // SHORT_BINUNICODE
        p.op(0x8d); p.bytes += withUnsafeBytes(of: UInt64(2).littleEndian, Array.init); p.bytes += Array("ok".utf8) // BINUNICODE8
        p.op(0x4e, 0x88, 0x5d) // NONE NEWTRUE EMPTY_LIST
        p.op(0x28); p.int(1); p.int(2); p.op(0x65) // MARK 1 2 APPENDS
        p.op(0x74, 0x2e) // TUPLE STOP
        let v = try p.bytes.withUnsafeBytes { b in
            var u = Unpickler(bytes: b, path: "t")
            return try u.load()
        }
        guard case .tuple(let items, _) = v else { Issue.record("\(v.typeName)"); return }
        #expect(items.map(\.typeName) == ["int", "int", "int", "int", "int", "float", "str", "str", "None", "bool", "list"])
        if case .int(let a) = items[0], case .int(let b) = items[1], case .int(let c) = items[2], case .int(let d) = items[3],
           case .int(let e) = items[4], case .float(let x) = items[5], case .string(let s) = items[6], case .string(let s8) = items[7],
           case .list(let l) = items[10] {
            let expected: [Int] = [-129, 1 << 40, 0, Int(Int32.min) - 1, -2]
            #expect([a, b, c, d, e] == expected)
            #expect(x == 1.5 && s == "hé" && s8 == "ok" && l.items.count == 2)
        } else {
            Issue.record("unexpected values")
        }
    }

    // MARK: - Refusals

    @Test func refusesLegacyAndNonZipFiles() throws {
        try expectRefusal(path: torchFixtures + "/legacy.bin") { .legacyFormat(path: $0) }
        try expectRefusal(Array("not a checkpoint".utf8)) { .notZip(path: $0) }
        try expectRefusal([]) { .notZip(path: $0) }
        let e = TorchError.legacyFormat(path: "x.bin")
        #expect(e.fault.contains("torch ≥ 1.6") && e.fault.contains("safetensors"))
    }

    @Test func refusesUnknownOpcodes() throws {
        // MEMOIZE comes with protocol 4, which torch's own weights_only loader refuses too.
        try expectRefusal(path: torchFixtures + "/protocol4.bin") { .unsupportedOpcode(path: $0, opcode: 0x94, offset: 12) }
        try expectRefusal(archive(PickleBuilder.raw([0x7d, 0x94, 0x2e]))) { .unsupportedOpcode(path: $0, opcode: 0x94, offset: 3) }
        // INST, OBJ, NEWOBJ, STACK_GLOBAL, EXT1, PERSID, UNICODE: other ways to name, build or call.
        for op: UInt8 in [0x69, 0x6f, 0x81, 0x93, 0x82, 0x50, 0x56] {
            try expectRefusal(archive(PickleBuilder.raw([op]))) { .unsupportedOpcode(path: $0, opcode: op, offset: 2) }
        }
        #expect(TorchError.unsupportedOpcode(path: "x", opcode: 0x94, offset: 12).fault.contains("opcode 0x94 at byte 12"))
    }

    /// Hostile globals are refused where they appear; nothing is imported, nothing is called.
    @Test(arguments: [("os", "system"), ("builtins", "eval"), ("__builtin__", "getattr"), ("posix", "system"),
                      ("torch", "load"), ("collections", "Counter"), ("torch._utils", "_rebuild_parameter_with_state"),
                      ("torch", "ComplexFloatStorage"), ("torch.nn.modules.linear", "Linear")])
    func refusesDisallowedGlobals(_ g: (String, String)) throws {
        var p = PickleBuilder()
        p.global(g.0, g.1)
        p.string("echo pwned")
        p.op(0x85, 0x52, 0x2e) // TUPLE1 REDUCE STOP
        let e = try expectRefusal(archive(p.bytes)) { .disallowedGlobal(path: $0, module: g.0, name: g.1, offset: 2) }
        #expect(e?.fault.contains("\(g.0) \(g.1)") == true && e?.fault.contains("call") == false)
    }

    @Test func refusesReduceOfNonCallables() throws {
        var p = PickleBuilder()
        p.global("torch", "FloatStorage")
        p.op(0x29)
        let at = p.bytes.count
        p.op(0x52, 0x2e)
        try expectRefusal(archive(p.bytes)) { .disallowedReduce(path: $0, callable: "torch.FloatStorage", offset: at) }
        var q = PickleBuilder()
        q.string("os.system")
        q.op(0x29)
        let at2 = q.bytes.count
        q.op(0x52, 0x2e)
        try expectRefusal(archive(q.bytes)) { .disallowedReduce(path: $0, callable: "a str", offset: at2) }
    }

    @Test func refusesCompressedEntries() throws {
        try expectRefusal(path: torchFixtures + "/deflated.bin") { .compressedEntry(path: $0, entry: "deflated/data.pkl", method: 8) }
        var z = ZipBuilder()
        z.add("archive/data.pkl", PickleBuilder.raw([0x7d, 0x2e]))
        z.add("archive/data/0", [1, 2, 3, 4], method: 14)
        let e = try expectRefusal(z.bytes()) { .compressedEntry(path: $0, entry: "archive/data/0", method: 14) }
        #expect(e?.fault.contains("method 14") == true)
    }

    @Test func refusesStoragesAndTensorsOutsideTheirEntries() throws {
        func file(numel: Int, offset: Int, size: [Int], entryBytes: Int, key: String = "0") -> [UInt8] {
            let pickle = PickleBuilder.stateDict([("w", { $0.tensor(key: key, numel: numel, offset: offset, size: size) })])
            return ZipBuilder.torch(pickle: pickle, storages: [("0", [UInt8](repeating: 1, count: entryBytes))])
        }
        try expectFault(file(numel: 4, offset: 2, size: [4], entryBytes: 16), contains: "storage_offset 2 + 4 elements of F32 run past its storage (16 bytes)") {
            if case .badTensor(_, "w", _) = $0 { true } else { false }
        }
        try expectFault(file(numel: 8, offset: 0, size: [4], entryBytes: 16), contains: "entry holds 16 bytes, but its persistent id says 8 elements of F32 storage") {
            if case .badStorage(_, "0", _) = $0 { true } else { false }
        }
        try expectFault(file(numel: 4, offset: 0, size: [4], entryBytes: 16, key: "7"), contains: "no zip entry archive/data/7") {
            if case .badStorage(_, "7", _) = $0 { true } else { false }
        }
        try expectFault(file(numel: 4, offset: 0, size: [1 << 62, 8], entryBytes: 16), contains: "overflows") {
            if case .badTensor = $0 { true } else { false }
        }
        // One storage named with two types is a forgery torch would silently half-honour.
        let twice = PickleBuilder.stateDict([
            ("a", { $0.tensor(key: "0", numel: 4, size: [4]) }),
            ("b", { $0.tensor(storage: "HalfStorage", key: "0", numel: 8, size: [8]) }),
        ])
        try expectFault(ZipBuilder.torch(pickle: twice, storages: [("0", [UInt8](repeating: 0, count: 16))]), contains: "named again") {
            if case .badStorage(_, "0", _) = $0 { true } else { false }
        }
    }

    @Test func refusesNonContiguousTensors() throws {
        try expectRefusal(path: torchFixtures + "/noncontiguous.bin") { .nonContiguous(path: $0, name: "t", shape: [4, 3], stride: [1, 4]) }
        let pickle = PickleBuilder.stateDict([("w", { $0.tensor(key: "0", numel: 8, size: [2, 2], stride: [4, 1]) })])
        try expectRefusal(ZipBuilder.torch(pickle: pickle, storages: [("0", [UInt8](repeating: 0, count: 32))])) {
            .nonContiguous(path: $0, name: "w", shape: [2, 2], stride: [4, 1])
        }
    }

    @Test func refusesWhatIsNotAStateDictOfTensors() throws {
        try expectRefusal(path: torchFixtures + "/not_tensor.bin") { .notATensor(path: $0, key: "step", found: "int") }
        try expectRefusal(archive(PickleBuilder.raw([0x5d, 0x2e]))) { .notAStateDict(path: $0, found: "list") }
        let dup = PickleBuilder.stateDict([
            ("a", { $0.tensor(key: "0", numel: 1, size: [1]) }),
            ("b", { $0.tensor(key: "0", numel: 1, size: [1]) }),
            ("a", { $0.tensor(key: "0", numel: 1, size: [1]) }),
        ])
        try expectRefusal(ZipBuilder.torch(pickle: dup, storages: [("0", [0, 0, 0, 0])])) { .duplicateTensor(path: $0, name: "a") }
        let nested = PickleBuilder.stateDict([("model", { $0.op(0x7d) })])
        try expectRefusal(archive(nested)) { .notATensor(path: $0, key: "model", found: "dict") }
        let neg = PickleBuilder.stateDict([("w", { $0.tensor(key: "0", numel: 1, size: [1], metadata: [("conj", false), ("neg", true)]) })])
        try expectFault(ZipBuilder.torch(pickle: neg, storages: [("0", [0, 0, 0, 0])]), contains: "neg bit") {
            if case .badTensor(_, "w", _) = $0 { true } else { false }
        }
        let bigEndian = ZipBuilder.torch(pickle: PickleBuilder.raw([0x7d, 0x2e]), storages: [], byteorder: "big")
        try expectRefusal(bigEndian) { .byteOrder(path: $0, found: "big") }
        // A byteorder record is optional (torch < 1.10 did not write one).
        #expect(try open(ZipBuilder.torch(pickle: PickleBuilder.raw([0x7d, 0x2e]), storages: [], byteorder: nil)).tensors.isEmpty)
    }

    /// Each structural fault of a pickle is one clear refusal, including the ones meant to exhaust
    /// memory or the stack.
    @Test(arguments: [
        ([0x7d, 0x30, 0x2e], "unsupported"), // POP is not something torch.save writes
        ([0x7d], "no STOP"),
        ([0x7d, 0x2e, 0x2e], "1 bytes after STOP"),
        ([0x7d, 0x7d, 0x2e], "2 values on the stack"),
        ([0x28, 0x7d, 0x2e], "open MARKs"),
        ([0x74], "needs a MARK"),
        ([0x86], "pops an empty stack"),
        ([0x28, 0x71, 0x00], "needs a value on the stack"),
        ([0x68, 0x05], "memo 5 read at byte 2 was never stored"),
        ([0x58, 0xff, 0xff, 0xff, 0x7f], "runs past the end"),
        ([0x8c, 0x01, 0xff], "not valid UTF-8"),
        ([0x8a, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9], "LONG1 at byte 2 of 9 bytes"),
        ([0x80, 0x02], "PROTO at byte 2"),
        ([0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2e], "already placed"), // a list appended to itself
        ([0x7d, 0x4b, 0x01, 0x88, 0x73, 0x2e], "not a tensor name"),
        ([0x7d, 0x29, 0x88, 0x73, 0x2e], "dict key at byte 5 is a tuple"),
        ([0x7d, 0x4b, 0x01, 0x61, 0x2e], "APPEND(S) at byte 5 on a dict"),
        ([0x7d, 0x7d, 0x62, 0x2e], "only an OrderedDict's attributes"),
        ([0x63] + Array("os\nsys".utf8), "no name line"),
        ([0x51], "pops an empty stack"),
        ([0x4b, 0x01, 0x51], "persistent id at byte 4 is an int"),
    ] as [([UInt8], String)])
    func refusesMalformedPickles(_ c: ([UInt8], String)) throws {
        let e = try expectFault(archive(PickleBuilder.raw(c.0)), contains: c.1) { _ in true }
        #expect(e != nil)
    }

    @Test func boundsNestingAndMarks() throws {
        try expectFault(archive(PickleBuilder.raw([0x29] + [UInt8](repeating: 0x85, count: 100) + [0x2e])), contains: "nested more than 64 deep") { _ in true }
        try expectFault(archive(PickleBuilder.raw([UInt8](repeating: 0x28, count: 100))), contains: "MARK nested more than 64 deep") { _ in true }
        // Nesting through containers filled before insertion is measured too.
        var p: [UInt8] = [0x5d] // 71 empty lists…
        for _ in 0..<70 { p += [0x5d] }
        for _ in 0..<70 { p += [0x61] } // …each appended into the one below it
        p.append(0x2e)
        try expectFault(archive(PickleBuilder.raw(p)), contains: "nested more than 64 deep") { _ in true }
    }

    @Test func refusesBrokenZips() throws {
        let valid = try #require(FileManager.default.contents(atPath: torchFixtures + "/state_dict.bin")).map { $0 }
        try expectFault(Array(valid.dropLast()), contains: "no end-of-central-directory record") { if case .badZip = $0 { true } else { false } }
        try expectFault(Array(valid.prefix(2000)), contains: "no end-of-central-directory record") { if case .badZip = $0 { true } else { false } }
        let eocd = valid.count - 22
        let cd = Int(valid[eocd + 16]) | Int(valid[eocd + 17]) << 8 | Int(valid[eocd + 18]) << 16 | Int(valid[eocd + 19]) << 24
        var badCD = valid
        badCD[cd] = 0
        try expectFault(badCD, contains: "central directory entry 0 (offset \(cd)) has no central-directory signature") { if case .badZip = $0 { true } else { false } }
        // torch's EOCD repeats its Zip64 record's values; a disagreement is corruption.
        var badCount = valid
        badCount[eocd + 10] &+= 1
        try expectFault(badCount, contains: "entry count: end-of-central-directory says") { if case .badZip = $0 { true } else { false } }
        var badLocal = valid
        badLocal[0] = 0
        try expectRefusal(badLocal) { .notZip(path: $0) }
        // A central directory claiming more bytes for one entry than it has makes it overlap the next.
        var z = ZipBuilder()
        z.add("archive/data.pkl", PickleBuilder.raw([0x7d, 0x2e]), claimedSize: 30)
        z.add("archive/version", [0x33])
        try expectFault(z.bytes(), contains: "overlap") { if case .badZip = $0 { true } else { false } }
        var z2 = ZipBuilder()
        z2.add("archive/data.pkl", PickleBuilder.raw([0x7d, 0x2e]))
        z2.add("archive/data.pkl", PickleBuilder.raw([0x7d, 0x2e]))
        try expectFault(z2.bytes(), contains: "appears twice") { if case .badZip = $0 { true } else { false } }
        var z3 = ZipBuilder()
        z3.add("data.pkl", PickleBuilder.raw([0x7d, 0x2e]))
        try expectFault(z3.bytes(), contains: "is not inside the archive's folder") { if case .badZip = $0 { true } else { false } }
        var z4 = ZipBuilder()
        z4.add("archive/version", [0x33])
        try expectFault(z4.bytes(), contains: "no archive/data.pkl entry") { if case .badZip = $0 { true } else { false } }
        var z5 = ZipBuilder()
        z5.add("archive/data.pkl", PickleBuilder.raw([0x7d, 0x2e]), claimedSize: 1 << 20)
        try expectFault(z5.bytes(), contains: "runs past the central directory") { if case .badZip = $0 { true } else { false } }
    }

    /// Every truncation and single-byte corruption of a torch-written file either reads (with every
    /// tensor's range inside the file) or fails with a one-line FileFault naming the file.
    @Test func truncatedAndCorruptedFilesNeverCrash() throws {
        let d = TempDir(); defer { d.cleanup() }
        let valid = try #require(FileManager.default.contents(atPath: torchFixtures + "/state_dict.bin")).map { $0 }
        let p = d.file("h.bin")
        d.write("h.bin", valid)
        // One file changed in place (rewriting ~18k files costs more than reading them); each
        // TorchFile, and with it the mapping, is gone before the next change.
        let handle = try #require(FileHandle(forUpdatingAtPath: p))
        defer { try? handle.close() }
        var read = 0
        func check() {
            do {
                let f = try TorchFile(path: p)
                for t in f.tensors { _ = f.data(t).reduce(0) { $0 &+ Int($1) } }
                read += 1
            } catch let error as any FileFault {
                #expect(error.path == p)
                #expect(!error.fault.isEmpty && !error.description.contains("\n") && error.fault.count < 600, "\(error.fault.debugDescription)")
            } catch {
                Issue.record("\(type(of: error)): \(error)")
            }
        }
        for n in 0..<valid.count {
            try handle.truncate(atOffset: UInt64(n))
            check()
        }
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: valid)
        for i in valid.indices {
            for v: UInt8 in [0x00, 0xFF, valid[i] ^ 0x80] where v != valid[i] {
                try handle.seek(toOffset: UInt64(i))
                try handle.write(contentsOf: [v])
                check()
            }
            try handle.seek(toOffset: UInt64(i))
            try handle.write(contentsOf: [valid[i]])
        }
        // Flips in tensor data and alignment padding are harmless, so some variants still read.
        #expect(read > 0)
        #expect(try TorchFile(path: p).tensors.count == 13)
    }

    // MARK: - Helpers

    private func open(_ bytes: [UInt8]) throws -> TorchFile {
        let d = TempDir(); defer { d.cleanup() }
        d.write("x.bin", bytes)
        // The mapping outlives the directory entry.
        return try TorchFile(path: d.file("x.bin"))
    }

    /// An archive holding just `pickle` as its data.pkl.
    private func archive(_ pickle: [UInt8]) -> [UInt8] { ZipBuilder.torch(pickle: pickle, storages: []) }

    @discardableResult
    private func expectRefusal(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation,
                               _ expected: (String) -> TorchError) throws -> TorchError? {
        let d = TempDir(); defer { d.cleanup() }
        d.write("x.bin", bytes)
        return try expectRefusal(path: d.file("x.bin"), sourceLocation: sourceLocation, expected)
    }

    @discardableResult
    private func expectRefusal(path: String, sourceLocation: SourceLocation = #_sourceLocation,
                               _ expected: (String) -> TorchError) throws -> TorchError? {
        do {
            _ = try TorchFile(path: path)
            Issue.record("expected \(expected(path))", sourceLocation: sourceLocation)
        } catch let error as TorchError {
            #expect(error == expected(path), sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
            return error
        }
        return nil
    }

    @discardableResult
    private func expectFault(_ bytes: [UInt8], contains text: String, sourceLocation: SourceLocation = #_sourceLocation,
                             _ isCase: (TorchError) -> Bool) throws -> TorchError? {
        let d = TempDir(); defer { d.cleanup() }
        d.write("x.bin", bytes)
        do {
            _ = try TorchFile(path: d.file("x.bin"))
            Issue.record("expected an error containing \(text)", sourceLocation: sourceLocation)
        } catch let error as TorchError {
            #expect(error.path == d.file("x.bin"), sourceLocation: sourceLocation)
            #expect(isCase(error), "\(error)", sourceLocation: sourceLocation)
            #expect(error.fault.contains(text), "\(error.fault)", sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
            return error
        }
        return nil
    }
}
