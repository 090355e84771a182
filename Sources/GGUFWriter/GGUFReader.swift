import GGMLCore
import MappedIO

/// A GGUF file read through a memory map. Every count, length and offset is checked against the
/// file before it is used, so a hostile file produces one error naming the fault, never a crash
/// or an allocation sized by the attacker.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let file: MappedFile
    public let version: UInt32
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let dataStart: Int
    private let byName: [String: Int]

    /// Bounds that no real model comes near, so that absurd counts fail fast.
    public static let maxStringLength = 1 << 30
    public static let maxArrayNesting = 4

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        var c = Cursor(buf: file.all, path: file.path)
        guard file.size >= 4 else { throw c.fail("truncated: \(file.size) bytes, no GGUF magic") }
        let magic = try c.bytes(4)
        guard Array(magic) == GGUF.magic else { throw c.fail("not a GGUF file (bad magic)") }
        version = try c.u32()
        guard version == 2 || version == 3 else {
            throw c.fail("unsupported GGUF version \(version) (2 and 3 are supported)")
        }
        let nTensors = try c.u64()
        let nKV = try c.u64()
        // Each KV takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least 8+4+8+4+8.
        guard nKV <= UInt64(c.remaining / 13) else { throw c.fail("metadata count \(nKV) is larger than the file can hold") }
        guard nTensors <= UInt64(c.remaining / 32) else { throw c.fail("tensor count \(nTensors) is larger than the file can hold") }
        var meta: [(String, GGUFValue)] = []
        var seen: Set<String> = []
        meta.reserveCapacity(Int(nKV))
        for _ in 0..<Int(nKV) {
            let key = try c.string()
            guard seen.insert(key).inserted else { throw c.fail("duplicate metadata key \(quoted(key))") }
            let tRaw = try c.u32()
            guard let t = GGUFValueType(rawValue: tRaw) else { throw c.fail("key \(quoted(key)): unknown value type \(tRaw)") }
            meta.append((key, try c.value(t, depth: 0, key: key)))
        }
        var align = GGUF.defaultAlignment
        if let a = meta.first(where: { $0.0 == GGUFKey.General.alignment })?.1 {
            guard case .uint32(let v) = a, v > 0, v & (v - 1) == 0 else {
                throw c.fail("general.alignment must be a non-zero power of two uint32")
            }
            align = Int(v)
        }
        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(Int(nTensors))
        var names: [String: Int] = [:]
        for _ in 0..<Int(nTensors) {
            let name = try c.string()
            let nd = try c.u32()
            guard nd >= 1, nd <= UInt32(GGUF.maxDims) else { throw c.fail("tensor \(quoted(name)): \(nd) dimensions (1 to 4 allowed)") }
            var ne: [Int] = []
            var count = 1
            for _ in 0..<Int(nd) {
                let d = try c.u64()
                guard d <= UInt64(Int64.max) else { throw c.fail("tensor \(quoted(name)): dimension \(d) is absurd") }
                let (p, o) = count.multipliedReportingOverflow(by: Int(d))
                guard !o else { throw c.fail("tensor \(quoted(name)): element count overflows") }
                count = p
                ne.append(Int(d))
            }
            let tRaw = try c.u32()
            guard let type = GGMLType(rawValue: tRaw) else { throw c.fail("tensor \(quoted(name)): unknown ggml type \(tRaw)") }
            guard ne[0] % type.blockSize == 0 else {
                throw c.fail("tensor \(quoted(name)): row of \(ne[0]) is not a multiple of \(type.name)'s block size \(type.blockSize)")
            }
            let off = try c.u64()
            guard off % UInt64(align) == 0 else { throw c.fail("tensor \(quoted(name)): offset \(off) is not aligned to \(align)") }
            guard off <= UInt64(file.size) else { throw c.fail("tensor \(quoted(name)): offset \(off) is past the end of the file") }
            guard names[name] == nil else { throw c.fail("duplicate tensor name \(quoted(name))") }
            names[name] = infos.count
            let info = GGUFTensorInfo(name: name, ne: ne, type: type, offset: Int(off))
            // byteCount = rowSize × rows; checking it here makes every later use overflow-free.
            // (the rows are multiplied on their own: an empty row, ne[0] = 0, hides huge outer
            // dimensions from the element count)
            let (rowBytes, o1) = (ne[0] / type.blockSize).multipliedReportingOverflow(by: type.typeSize)
            guard !o1, let rows = checkedProduct(ne.dropFirst()), rowBytes.multipliedReportingOverflow(by: rows).overflow == false else {
                throw c.fail("tensor \(quoted(name)): byte size overflows")
            }
            infos.append(info)
        }
        let start = GGUF.pad(c.pos, align)
        for t in infos {
            let (end, o) = (start + t.offset).addingReportingOverflow(t.byteCount)
            guard !o, end <= file.size else {
                // the message names offset and size apart: their sum is what overflowed
                throw c.fail("tensor \(quoted(t.name)): its data (\(t.byteCount) bytes at offset \(t.offset)) runs past the end of the file (truncated?)")
            }
        }
        metadata = meta
        tensors = infos
        alignment = align
        dataStart = start
        byName = names
    }

    public subscript(key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    public func tensor(named n: String) -> GGUFTensorInfo? { byName[n].map { tensors[$0] } }

    public func data(_ t: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        file.bytes((dataStart + t.offset)..<(dataStart + t.offset + t.byteCount))
    }
}

private struct Cursor {
    let buf: UnsafeRawBufferPointer
    let path: String
    var pos = 0

    var remaining: Int { buf.count - pos }

    func fail(_ m: String) -> GGUFError { .malformed(path: path, detail: m) }

    mutating func bytes(_ n: Int) throws(GGUFError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw fail("truncated at byte \(pos): needs \(n) more bytes, \(remaining) left") }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: buf[pos..<(pos + n)])
    }

    mutating func int<T: FixedWidthInteger>(_: T.Type) throws(GGUFError) -> T {
        let b = try bytes(MemoryLayout<T>.size)
        return T(littleEndian: b.loadUnaligned(as: T.self))
    }

    mutating func u32() throws(GGUFError) -> UInt32 { try int(UInt32.self) }
    mutating func u64() throws(GGUFError) -> UInt64 { try int(UInt64.self) }

    mutating func string() throws(GGUFError) -> String {
        let at = pos
        let n = try u64()
        guard n <= UInt64(GGUFFile.maxStringLength), n <= UInt64(remaining) else {
            throw fail("string at byte \(at) claims \(n) bytes, more than the file holds")
        }
        let b = try bytes(Int(n))
        guard let s = String(validating: b, as: UTF8.self) else { throw fail("string at byte \(at) is not valid UTF-8") }
        return s
    }

    mutating func value(_ t: GGUFValueType, depth: Int, key: String) throws(GGUFError) -> GGUFValue {
        switch t {
        case .uint8: return .uint8(try int(UInt8.self))
        case .int8: return .int8(try int(Int8.self))
        case .uint16: return .uint16(try int(UInt16.self))
        case .int16: return .int16(try int(Int16.self))
        case .uint32: return .uint32(try u32())
        case .int32: return .int32(try int(Int32.self))
        case .float32: return .float32(Float(bitPattern: try u32()))
        case .bool:
            let b = try int(UInt8.self)
            guard b <= 1 else { throw fail("key \(quoted(key)): bool value \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case .string: return .string(try string())
        case .uint64: return .uint64(try u64())
        case .int64: return .int64(try int(Int64.self))
        case .float64: return .float64(Double(bitPattern: try u64()))
        case .array:
            guard depth < GGUFFile.maxArrayNesting else { throw fail("key \(quoted(key)): arrays nested too deeply") }
            let etRaw = try u32()
            guard let et = GGUFValueType(rawValue: etRaw) else { throw fail("key \(quoted(key)): unknown array element type \(etRaw)") }
            let n = try u64()
            // Every element takes at least one byte (strings eight), so the count is bounded by the file.
            let minSize = UInt64(et.fixedSize ?? (et == .string ? 8 : 12))
            guard n <= UInt64(remaining) / minSize else {
                throw fail("key \(quoted(key)): array of \(n) elements is larger than the file can hold")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { items.append(try value(et, depth: depth + 1, key: key)) }
            return .array(et, items)
        }
    }
}

/// A key or tensor name from the file as an error message quotes it: control characters escaped
/// and the length bounded, so the error stays one line whatever the file holds.
func quoted(_ s: String, limit: Int = 200) -> String {
    var out = "\""
    var n = 0
    for u in s.unicodeScalars {
        let piece = u.value < 0x20 || u.value == 0x7F || u == "\"" || u == "\\" || u == "\u{2028}" || u == "\u{2029}" || u == "\u{85}"
            ? (u == "\"" || u == "\\" ? "\\\(u)" : "\\u{\(String(u.value, radix: 16))}") : String(u)
        n += 1
        if n > limit { return out + "…\"" }
        out += piece
    }
    return out + "\""
}
