import Foundation
import MappedIO
import SafetensorsReader
import Testing

@Suite struct SafetensorsReaderTests {
    func sample() -> SafetensorsBuilder {
        var b = SafetensorsBuilder()
        b.add("b.weight", dtype: "BF16", shape: [4, 8])
        b.add("a.weight", dtype: "F32", shape: [3])
        b.add("c.weight", dtype: "F16", shape: [2, 2])
        return b
    }

    @Test func readsValidFile() throws {
        let d = TempDir(); defer { d.cleanup() }
        let b = sample()
        d.write("model.safetensors", b.bytes())
        let f = try SafetensorsFile(path: d.file("model.safetensors"))
        #expect(f.tensors.map(\.name) == ["b.weight", "a.weight", "c.weight"])
        #expect(f.metadata.first?.key == "format")
        let t = try #require(f["b.weight"])
        #expect(t.dtype == .bf16 && t.shape == [4, 8] && t.elementCount == 32)
        #expect(Array(f.data(t)) == b.tensors[0].data)
        let ck = try SafetensorsCheckpoint(path: d.path)
        // convert_hf_to_gguf visits names sorted within a shard.
        #expect(ck.entries.map(\.tensor.name) == ["a.weight", "b.weight", "c.weight"])
    }

    /// Each hostile file gives one error naming the file and the fault.
    @Test(arguments: [
        ("truncated length", [UInt8]([1, 0, 0]), "too short"),
        ("header past EOF", SafetensorsBuilder().bytes(header: "{}", headerLength: 4096), "runs past the end"),
        ("huge header", SafetensorsBuilder().bytes(header: "{}", headerLength: 200_000_000), "exceeds the 100 MB limit"),
        ("invalid JSON", SafetensorsBuilder().bytes(header: "{\"a\":"), "invalid JSON header"),
        ("not object", SafetensorsBuilder().bytes(header: "[1,2,3]"), "does not start with '{'"),
    ])
    func refusesBrokenHeaders(_ c: (String, [UInt8], String)) throws {
        try expectFault(c.1, contains: c.2)
    }

    func expectFault(_ bytes: [UInt8], contains text: String) throws {
        let d = TempDir(); defer { d.cleanup() }
        d.write("x.safetensors", bytes)
        do {
            _ = try SafetensorsFile(path: d.file("x.safetensors"))
            Issue.record("expected an error containing \(text)")
        } catch let error as SafetensorsError {
            #expect(error.path == d.file("x.safetensors"))
            #expect(error.fault.contains(text), "\(error.fault)")
            #expect(!error.description.contains("\n"))
        } catch {
            Issue.record("\(type(of: error)): \(error)")
        }
    }

    @Test func refusesBadTensorEntries() throws {
        let data = [UInt8](repeating: 1, count: 16)
        func file(_ header: String) -> [UInt8] {
            var h = Array(header.utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            var out: [UInt8] = []
            withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
            return out + h + data
        }
        let cases: [(String, String)] = [
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, "overlap"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#, "run past the end"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, "not covered"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#, "gap"),
            (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#, "needs 12"),
            (#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#, "overflows"),
            (#"{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#, "non-negative"),
            (#"{"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}}"#, "unknown dtype \"Q4\""),
            (#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}"#, "reversed"),
            (#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}}"#, "two integers"),
            (#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, "duplicate tensor name"),
            (#"{"a":{"shape":[4],"data_offsets":[0,16]}}"#, "missing dtype"),
            (#"{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, "is not a string"),
        ]
        for (h, text) in cases { try expectFault(file(h), contains: text) }
    }

    @Test func readsShardsAndRefusesEscapes() throws {
        let d = TempDir(); defer { d.cleanup() }
        var a = SafetensorsBuilder(); a.add("x", shape: [2])
        var b = SafetensorsBuilder(); b.add("y", shape: [3])
        d.write("model-00001-of-00002.safetensors", a.bytes())
        d.write("model-00002-of-00002.safetensors", b.bytes())
        d.write("model.safetensors.index.json", #"{"metadata":{},"weight_map":{"y":"model-00002-of-00002.safetensors","x":"model-00001-of-00002.safetensors"}}"#)
        let ck = try SafetensorsCheckpoint(path: d.path)
        #expect(ck.entries.map(\.tensor.name) == ["x", "y"])
        #expect(ck.files.count == 2)

        let cases: [(String, String)] = [
            (#"{"weight_map":{"x":"/etc/passwd"}}"#, "is absolute"),
            (#"{"weight_map":{"x":"../outside.safetensors"}}"#, "contains '..'"),
            (#"{"weight_map":{"x":"sub/../../x.safetensors"}}"#, "contains '..'"),
            (#"{"weight_map":{"x":"link.safetensors"}}"#, "resolves outside"),
            (#"{"weight_map":{"x":"model-00009-of-00009.safetensors"}}"#, "missing shard"),
            (#"{"weight_map":{"x":"model-00002-of-00002.safetensors"}}"#, "does not contain it"),
            (#"{"weight_map":{"x":"model-00001-of-00002.safetensors","z":"model-00001-of-00002.safetensors"}}"#, "does not contain it"),
            (#"{"weight_map":{}}"#, "is empty"),
            (#"{"nope":{}}"#, "no \"weight_map\""),
        ]
        let outside = TempDir(); defer { outside.cleanup() }
        outside.write("x.safetensors", a.bytes())
        try FileManager.default.createSymbolicLink(atPath: d.file("link.safetensors"), withDestinationPath: outside.file("x.safetensors"))
        for (index, text) in cases {
            d.write("model.safetensors.index.json", index)
            do {
                _ = try SafetensorsCheckpoint(path: d.path)
                Issue.record("expected \(text)")
            } catch let error as SafetensorsError {
                #expect(error.fault.contains(text), "\(error.fault)")
                #expect(error.path.hasSuffix("model.safetensors.index.json"))
            } catch {
                Issue.record("\(type(of: error)): \(error)")
            }
        }
    }
}
