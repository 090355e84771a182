import StrictJSON
import MappedIO

/// Element types a safetensors header may name. Only F32/F16/BF16 are convertible; the others are
/// known so that the error can say "unsupported" rather than "invalid".
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    case f64 = "F64", i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8"
    case u16 = "U16", u32 = "U32", u64 = "U64", bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2", f8e8m0 = "F8_E8M0", f4 = "F4", f6e2m3 = "F6_E2M3", f6e3m2 = "F6_E3M2"

    /// Bits per element (sub-byte types exist since safetensors 0.6).
    public var bits: Int {
        switch self {
        case .f64, .i64, .u64: 64
        case .f32, .i32, .u32: 32
        case .f16, .bf16, .i16, .u16: 16
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2, .f8e8m0: 8
        case .f6e2m3, .f6e3m2: 6
        case .f4: 4
        }
    }

    public var isFloatSupported: Bool { self == .f32 || self == .f16 || self == .bf16 }
}

public struct SafetensorsTensor: Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    /// Row-major shape as the header gives it (outermost first; GGUF's `ne` is the reverse).
    public let shape: [Int]
    public let elementCount: Int
    /// Absolute byte range in the file.
    public let range: Range<Int>
}

/// One `.safetensors` file: validated header, tensors in header order, data through the mmap.
public final class SafetensorsFile: @unchecked Sendable {
    /// The format's own limit on the JSON header, which also bounds what a hostile file makes us parse.
    public static let maxHeaderSize = 100_000_000

    public let path: String
    public let file: MappedFile
    public let metadata: [(key: String, value: String)]
    public let tensors: [SafetensorsTensor]
    public let headerSize: Int
    private let byName: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        self.path = file.path
        func fail(_ m: String) -> SafetensorsError { .malformed(path: file.path, detail: m) }

        guard file.size >= 8 else { throw fail("truncated: \(file.size) bytes, too short for the 8-byte header length") }
        let lenBytes = file.bytes(0..<8)
        var n: UInt64 = 0
        for i in (0..<8).reversed() { n = n << 8 | UInt64(lenBytes[i]) }
        guard n <= UInt64(SafetensorsFile.maxHeaderSize) else {
            throw fail("header length \(n) exceeds the 100 MB limit")
        }
        let hlen = Int(n)
        guard hlen >= 2 else { throw fail("header length \(hlen) is too small for a JSON object") }
        guard 8 + hlen <= file.size else {
            throw fail("header length \(hlen) runs past the end of the file (\(file.size) bytes)")
        }
        headerSize = hlen
        let headerBytes = file.bytes(8..<(8 + hlen))
        guard headerBytes[0] == UInt8(ascii: "{") else { throw fail("header does not start with '{'") }
        let root: JSONValue
        do { root = try JSONParser.parse(headerBytes) } catch {
            if error.message.hasPrefix("duplicate key") {
                throw fail("invalid header: duplicate tensor name \(error.message.dropFirst("duplicate key ".count))")
            }
            throw fail("invalid JSON header: \(error)")
        }
        guard let obj = root.objectValue else { throw fail("header is not a JSON object") }

        let dataStart = 8 + hlen
        let dataSize = file.size - dataStart
        var meta: [(String, String)] = []
        var tensors: [SafetensorsTensor] = []
        tensors.reserveCapacity(obj.count)
        for (name, v) in obj.entries {
            if name == "__metadata__" {
                guard let m = v.objectValue else { throw fail("__metadata__ is not an object") }
                for (k, mv) in m.entries {
                    guard let s = mv.stringValue else { throw fail("__metadata__[\"\(k)\"] is not a string") }
                    meta.append((k, s))
                }
                continue
            }
            guard let t = v.objectValue else { throw fail("tensor \"\(name)\": entry is not an object") }
            guard let ds = t["dtype"]?.stringValue else { throw fail("tensor \"\(name)\": missing dtype") }
            guard let dtype = SafetensorsDType(rawValue: ds) else {
                throw fail("tensor \"\(name)\": unknown dtype \"\(ds)\"")
            }
            guard let shapeArr = t["shape"]?.arrayValue else { throw fail("tensor \"\(name)\": missing shape") }
            var shape: [Int] = []
            var count = 1
            for d in shapeArr {
                guard let dim = d.intValue, dim >= 0, case .int = d else {
                    throw fail("tensor \"\(name)\": shape entries must be non-negative integers")
                }
                shape.append(dim)
                let (c, o) = count.multipliedReportingOverflow(by: dim)
                guard !o else { throw fail("tensor \"\(name)\": element count overflows") }
                count = c
            }
            guard let offs = t["data_offsets"]?.arrayValue, offs.count == 2,
                  case .int(let begin) = offs[0], case .int(let end) = offs[1]
            else { throw fail("tensor \"\(name)\": data_offsets must be two integers") }
            guard begin >= 0, end >= begin else { throw fail("tensor \"\(name)\": data_offsets [\(begin), \(end)] are reversed or negative") }
            let (bitsTotal, o) = count.multipliedReportingOverflow(by: dtype.bits)
            guard !o else { throw fail("tensor \"\(name)\": byte count overflows") }
            guard bitsTotal % 8 == 0 else { throw fail("tensor \"\(name)\": \(count) elements of \(ds) are not a whole number of bytes") }
            guard end - begin == bitsTotal / 8 else {
                throw fail("tensor \"\(name)\": data_offsets [\(begin), \(end)] hold \(end - begin) bytes, but shape \(shape) of \(ds) needs \(bitsTotal / 8)")
            }
            guard end <= dataSize else {
                throw fail("tensor \"\(name)\": data_offsets [\(begin), \(end)] run past the end of the data (\(dataSize) bytes)")
            }
            tensors.append(SafetensorsTensor(name: name, dtype: dtype, shape: shape, elementCount: count,
                                             range: (dataStart + begin)..<(dataStart + end)))
        }
        // The format requires the data to be covered exactly: no holes, no overlaps.
        let sorted = tensors.sorted { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var cursor = dataStart
        for t in sorted {
            if t.range.lowerBound < cursor {
                throw fail("tensor \"\(t.name)\": data_offsets overlap the previous tensor")
            }
            if t.range.lowerBound > cursor {
                throw fail("tensor \"\(t.name)\": gap of \(t.range.lowerBound - cursor) bytes before its data (offsets not contiguous)")
            }
            cursor = t.range.upperBound
        }
        if cursor != file.size {
            throw fail("data section has \(file.size - cursor) bytes not covered by any tensor")
        }
        self.metadata = meta
        self.tensors = tensors
        var idx: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { idx[t.name] = i }
        byName = idx
    }

    public subscript(name: String) -> SafetensorsTensor? { byName[name].map { tensors[$0] } }

    public func data(_ t: SafetensorsTensor) -> UnsafeRawBufferPointer { file.bytes(t.range) }
}
