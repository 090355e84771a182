import GGMLCore
import MappedIO

/// Constants of the GGUF container (ggml/docs/gguf.md, gguf-py `constants.py`).
public enum GGUF {
    public static let magic: [UInt8] = Array("GGUF".utf8)

    /// Whether `path` is a regular file that starts with the GGUF magic (a FIFO or device: no).
    public static func hasMagic(_ path: String) -> Bool {
        (try? InputFile.readPrefix(path, count: magic.count)) == magic
    }
    public static let version: UInt32 = 3
    public static let defaultAlignment = 32
    /// ggml's GGML_MAX_DIMS: a tensor has at most 4 dimensions.
    public static let maxDims = 4

    public static func pad(_ n: Int, _ align: Int) -> Int { (n + align - 1) / align * align }
}

/// `gguf_type`: how a metadata value is encoded.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Encoded size of a scalar, nil for string and array.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }
}

/// A metadata value. Arrays carry their element type so that an empty array still encodes it.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        case .array: .array
        }
    }

    public static func strings(_ s: [String]) -> GGUFValue { .array(.string, s.map { .string($0) }) }
    public static func float32s(_ f: [Float]) -> GGUFValue { .array(.float32, f.map { .float32($0) }) }
    public static func int32s(_ i: [Int32]) -> GGUFValue { .array(.int32, i.map { .int32($0) }) }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var arrayValue: [GGUFValue]? { if case .array(_, let a) = self { a } else { nil } }

    /// Any integer kind widened to Int (nil if it does not fit or is not an integer).
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .float32(let f): Double(f)
        case .float64(let d): d
        default: intValue.map(Double.init)
        }
    }

    /// Appends the little-endian encoding (without the leading type tag).
    public func encode(into out: inout [UInt8]) {
        switch self {
        case .uint8(let v): out.append(v)
        case .int8(let v): out.append(UInt8(bitPattern: v))
        case .uint16(let v): appendLE(v, &out)
        case .int16(let v): appendLE(UInt16(bitPattern: v), &out)
        case .uint32(let v): appendLE(v, &out)
        case .int32(let v): appendLE(UInt32(bitPattern: v), &out)
        case .float32(let v): appendLE(v.bitPattern, &out)
        case .bool(let v): out.append(v ? 1 : 0)
        case .string(let s): GGUFValue.encodeString(s, into: &out)
        case .uint64(let v): appendLE(v, &out)
        case .int64(let v): appendLE(UInt64(bitPattern: v), &out)
        case .float64(let v): appendLE(v.bitPattern, &out)
        case .array(let t, let items):
            appendLE(t.rawValue, &out)
            appendLE(UInt64(items.count), &out)
            for i in items { i.encode(into: &out) }
        }
    }

    public static func encodeString(_ s: String, into out: inout [UInt8]) {
        let u = s.utf8
        appendLE(UInt64(u.count), &out)
        out.append(contentsOf: u)
    }
}

@inline(__always)
func appendLE<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
    withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}

/// A tensor as GGUF describes it. `ne[0]` is the innermost (contiguous) dimension.
public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    public var ne: [Int]
    public var type: GGMLType
    /// Offset from the start of the data section.
    public var offset: Int

    public init(name: String, ne: [Int], type: GGMLType, offset: Int = 0) {
        self.name = name
        self.ne = ne
        self.type = type
        self.offset = offset
    }

    public var elementCount: Int { ne.reduce(1, *) }
    /// Data bytes; callers validated `ne[0]` against the block size.
    public var byteCount: Int { (type.rowSize(ne.first ?? 1) ?? 0) * ne.dropFirst().reduce(1, *) }
}
