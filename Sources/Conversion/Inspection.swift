import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import SafetensorsReader
import StrictJSON

/// A description of a GGUF file or a safetensors checkpoint, as text or JSON.
public struct Inspection {
    public let json: JSONValue
    public let text: String

    public init(path: String, showTensors: Bool = true) throws {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        if exists, !isDir.boolValue, GGUF.hasMagic(path) {
            self = try Self.gguf(GGUFFile.model(path), showTensors: showTensors)
        } else {
            self = try Self.safetensors(SafetensorsCheckpoint(path: path), showTensors: showTensors)
        }
    }

    init(json: JSONValue, text: String) {
        self.json = json
        self.text = text
    }

    static func describe(_ v: GGUFValue) -> (JSONValue, String) {
        switch v {
        case .string(let s):
            let short = s.count > 60 ? String(s.prefix(57)).replacingOccurrences(of: "\n", with: "\\n") + "..." : s.replacingOccurrences(of: "\n", with: "\\n")
            return (.string(s), "\"\(short)\"")
        case .bool(let b): return (.bool(b), b ? "true" : "false")
        case .float32(let f): return (.double(Double(f)), "\(f)")
        case .float64(let d): return (.double(d), "\(d)")
        case .array(let t, let items):
            let head = items.prefix(3).map { describe($0).1 }.joined(separator: ", ")
            let text = "[\(t)] × \(items.count)" + (items.isEmpty ? "" : ": \(head)\(items.count > 3 ? ", ..." : "")")
            if items.count > 64 {
                return (.obj(["type": .string("\(t)"), "count": .int(items.count)]), text)
            }
            return (.array(items.map { describe($0).0 }), text)
        default:
            if let i = v.intValue { return (.int(i), "\(i)") }
            return (.null, "?")
        }
    }

    /// One GGUF, or a split model's files (every tensor, the first file's metadata).
    static func gguf(_ files: [GGUFFile], showTensors: Bool) -> Inspection {
        let f = files[0]
        let all = files.flatMap(\.tensors)
        let size = files.reduce(0) { $0 + $1.file.size }
        var lines = ["GGUF v\(f.version): \(f.path)" + (files.count > 1 ? " (split 1 of \(files.count); all \(files.count) read)" : ""),
                     "  \(f.metadata.count) metadata keys, \(all.count) tensors, alignment \(f.alignment), \(files.count > 1 ? "files" : "file") \(size) bytes",
                     "", "metadata:"]
        var meta = JSONObject()
        let width = f.metadata.map(\.key.count).max() ?? 0
        for (k, v) in f.metadata {
            let (j, t) = describe(v)
            meta.append(k, j)
            lines.append("  \(k.padding(toLength: width, withPad: " ", startingAt: 0))  \(t)")
        }
        var byType: [GGMLType: (n: Int, elems: Int, bytes: Int)] = [:]
        var tensors: [JSONValue] = []
        if showTensors { lines += ["", "tensors:"] }
        let nameWidth = all.map(\.name.count).max() ?? 0
        for t in all {
            let e = t.elementCount
            byType[t.type, default: (0, 0, 0)].n += 1
            byType[t.type]!.elems += e
            byType[t.type]!.bytes += t.byteCount
            tensors.append(.obj(["name": .string(t.name), "type": .string(t.type.name), "ne": .array(t.ne.map { .int($0) }),
                                 "bytes": .int(t.byteCount), "offset": .int(t.offset)]))
            if showTensors {
                lines.append("  \(t.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(t.type.name.padding(toLength: 6, withPad: " ", startingAt: 0))  \(("[" + t.ne.map(String.init).joined(separator: ", ") + "]").padding(toLength: 18, withPad: " ", startingAt: 0))  \(t.byteCount)")
            }
        }
        let (totals, totalLines) = summarize(byType.map { ($0.key.name, $0.value.n, $0.value.elems, $0.value.bytes) })
        lines += totalLines
        let json = JSONValue.obj(["format": .string("gguf"), "path": .string(f.path), "version": .int(Int(f.version)),
                                  "file_size": .int(size), "files": .array(files.map { .string($0.path) }), "alignment": .int(f.alignment),
                                  "metadata": .object(meta), "tensors": .array(tensors), "totals": totals])
        return Inspection(json: json, text: lines.joined(separator: "\n"))
    }

    static func safetensors(_ c: SafetensorsCheckpoint, showTensors: Bool) -> Inspection {
        var lines = ["safetensors: \(c.directory) (\(c.files.count) file\(c.files.count == 1 ? "" : "s"), \(c.entries.count) tensors)"]
        var files: [JSONValue] = []
        for f in c.files {
            var m = JSONObject()
            for (k, v) in f.metadata { m.append(k, .string(v)) }
            files.append(.obj(["path": .string(f.path), "size": .int(f.file.size), "metadata": .object(m)]))
            lines.append("  \(f.path): \(f.file.size) bytes" + (f.metadata.isEmpty ? "" : ", metadata " + f.metadata.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))
        }
        var byType: [String: (n: Int, elems: Int, bytes: Int)] = [:]
        var tensors: [JSONValue] = []
        if showTensors { lines += ["", "tensors:"] }
        let nameWidth = c.entries.map(\.tensor.name.count).max() ?? 0
        for e in c.entries {
            let t = e.tensor
            byType[t.dtype.rawValue, default: (0, 0, 0)].n += 1
            byType[t.dtype.rawValue]!.elems += t.elementCount
            byType[t.dtype.rawValue]!.bytes += t.range.count
            tensors.append(.obj(["name": .string(t.name), "dtype": .string(t.dtype.rawValue), "shape": .array(t.shape.map { .int($0) }),
                                 "bytes": .int(t.range.count), "file": .string(c.files[e.fileIndex].path)]))
            if showTensors {
                lines.append("  \(t.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(t.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0))  \(("[" + t.shape.map(String.init).joined(separator: ", ") + "]").padding(toLength: 16, withPad: " ", startingAt: 0))  \(t.range.count)")
            }
        }
        let (totals, totalLines) = summarize(byType.map { ($0.key, $0.value.n, $0.value.elems, $0.value.bytes) })
        lines += totalLines
        let json = JSONValue.obj(["format": .string("safetensors"), "path": .string(c.directory), "files": .array(files),
                                  "tensors": .array(tensors), "totals": totals])
        return Inspection(json: json, text: lines.joined(separator: "\n"))
    }

    /// Per-type tensor count, elements, bytes and bits per weight, plus the overall line.
    static func summarize(_ rows: [(String, Int, Int, Int)]) -> (JSONValue, [String]) {
        var lines = ["", "totals:"]
        var arr: [JSONValue] = []
        let sorted = rows.sorted { $0.3 > $1.3 }
        var elems = 0, bytes = 0
        for (t, n, e, b) in sorted {
            elems += e
            bytes += b
            let bpw = e > 0 ? Double(b * 8) / Double(e) : 0
            arr.append(.obj(["type": .string(t), "tensors": .int(n), "elements": .int(e), "bytes": .int(b), "bpw": .double((bpw * 1000).rounded() / 1000)]))
            lines.append("  " + t.padding(toLength: max(8, t.count), withPad: " ", startingAt: 0) + String(format: " %5d tensors  %14d weights  %14d bytes  %6.3f bpw", n, e, b, bpw))
        }
        let bpw = elems > 0 ? Double(bytes * 8) / Double(elems) : 0
        lines.append("  all     " + String(format: " %5d tensors  %14d weights  %14d bytes  %6.3f bpw", rows.reduce(0) { $0 + $1.1 }, elems, bytes, bpw))
        return (.obj(["by_type": .array(arr), "elements": .int(elems), "bytes": .int(bytes), "bpw": .double((bpw * 1000).rounded() / 1000)]), lines)
    }
}
