import Foundation

/// Builds safetensors files byte by byte, valid or deliberately broken.
struct SafetensorsBuilder {
    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var data: [UInt8]
    }

    var tensors: [Tensor] = []
    var metadata: [String: String]? = ["format": "pt"]

    mutating func add(_ name: String, dtype: String = "F32", shape: [Int], data: [UInt8]? = nil) {
        let count = shape.reduce(1, *)
        let size = dtype == "F32" ? 4 : dtype == "I8" || dtype == "U8" ? 1 : dtype == "F64" || dtype == "I64" ? 8 : 2
        tensors.append(Tensor(name: name, dtype: dtype, shape: shape,
                              data: data ?? (0..<(count * size)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ name.count) }))
    }

    /// The header JSON with offsets laid out contiguously (override with `headerJSON` for broken ones).
    func headerJSON() -> String {
        var parts: [String] = []
        if let m = metadata {
            parts.append("\"__metadata__\":{" + m.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",") + "}")
        }
        var off = 0
        for t in tensors {
            parts.append("\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(off),\(off + t.data.count)]}")
            off += t.data.count
        }
        return "{" + parts.joined(separator: ",") + "}"
    }

    func bytes(header: String? = nil, headerLength: UInt64? = nil) -> [UInt8] {
        var h = Array((header ?? headerJSON()).utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out: [UInt8] = []
        withUnsafeBytes(of: (headerLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        out += h
        for t in tensors { out += t.data }
        return out
    }
}

/// A fresh directory under the system temp dir, removed by `cleanup()`.
struct TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "eq-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    func write(_ name: String, _ bytes: [UInt8]) { _ = FileManager.default.createFile(atPath: file(name), contents: Data(bytes)) }
    func write(_ name: String, _ text: String) { write(name, Array(text.utf8)) }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted() ?? [] }
}
