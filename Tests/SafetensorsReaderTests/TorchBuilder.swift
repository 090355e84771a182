import Crypto
import Foundation

/// Builds pickles opcode by opcode, as torch.save writes them or deliberately hostile. Nothing
/// here ever runs a pickle: hostile globals are just bytes.
struct PickleBuilder {
    var bytes: [UInt8] = [0x80, 2]

    mutating func op(_ b: UInt8...) { bytes += b }

    mutating func global(_ module: String, _ name: String) {
        bytes.append(0x63)
        bytes += Array("\(module)\n\(name)\n".utf8)
    }

    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        bytes.append(0x58)
        withUnsafeBytes(of: UInt32(u.count).littleEndian) { bytes += $0 }
        bytes += u
    }

    /// The smallest encoding, as pickle chooses it (BININT1/BININT2/BININT/LONG1).
    mutating func int(_ i: Int) {
        switch i {
        case 0...0xFF: op(0x4b, UInt8(i))
        case 0x100...0xFFFF: op(0x4d, UInt8(i & 0xFF), UInt8(i >> 8))
        case Int(Int32.min)...Int(Int32.max):
            bytes.append(0x4a)
            withUnsafeBytes(of: Int32(i).littleEndian) { bytes += $0 }
        default: long1(i)
        }
    }

    mutating func long1(_ i: Int) {
        var b = withUnsafeBytes(of: Int64(i).littleEndian, Array.init)
        // Minimal two's complement, as pickle.encode_long writes it.
        while b.count > 1, (b[b.count - 1] == 0 && b[b.count - 2] & 0x80 == 0) || (b[b.count - 1] == 0xFF && b[b.count - 2] & 0x80 != 0) {
            b.removeLast()
        }
        if i == 0 { b = [] }
        op(0x8a, UInt8(b.count))
        bytes += b
    }

    mutating func intTuple(_ v: [Int]) {
        switch v.count {
        case 0: op(0x29)
        case 1...3:
            for x in v { int(x) }
            op([0x85, 0x86, 0x87][v.count - 1])
        default:
            op(0x28)
            for x in v { int(x) }
            op(0x74)
        }
    }

    /// `_rebuild_tensor_v2((storage persistent id), storage_offset, size, stride, False, OrderedDict())`
    /// followed by an optional metadata dict, exactly as torch.save lays it out.
    mutating func tensor(storage: String = "FloatStorage", key: String, numel: Int, offset: Int = 0, size: [Int], stride: [Int]? = nil,
                         metadata: [(String, Bool)]? = nil) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28, 0x28) // MARK MARK
        string("storage")
        global("torch", storage)
        string(key)
        string("cpu")
        int(numel)
        op(0x74, 0x51) // TUPLE BINPERSID
        int(offset)
        intTuple(size)
        var s: [Int] = []
        var acc = 1
        for d in size.reversed() { s.insert(acc, at: 0); acc &*= d }
        intTuple(stride ?? s)
        op(0x89) // NEWFALSE
        global("collections", "OrderedDict")
        op(0x29, 0x52) // EMPTY_TUPLE REDUCE
        if let metadata {
            op(0x7d, 0x28)
            for (k, v) in metadata { string(k); op(v ? 0x88 : 0x89) }
            op(0x75)
        }
        op(0x74, 0x52) // TUPLE REDUCE
    }

    /// A plain-dict state dict of the given tensors (each written by `body`).
    static func stateDict(_ items: [(String, (inout PickleBuilder) -> Void)]) -> [UInt8] {
        var p = PickleBuilder()
        p.op(0x7d, 0x28) // EMPTY_DICT MARK
        for (name, body) in items {
            p.string(name)
            body(&p)
        }
        p.op(0x75, 0x2e) // SETITEMS STOP
        return p.bytes
    }

    /// A whole pickle from raw opcodes after PROTO 2.
    static func raw(_ b: [UInt8]) -> [UInt8] { [0x80, 2] + b }
}

/// Writes zip archives laid out like torch.save's (miniz) ones, optionally with every size and
/// offset moved into Zip64 extra fields, or with deliberate damage.
struct ZipBuilder {
    struct Entry {
        var name: String
        var data: [UInt8]
        var method: UInt16 = 0
        /// A size to claim in the central directory instead of the real one.
        var claimedSize: Int?
    }

    var entries: [Entry] = []
    var zip64 = false

    mutating func add(_ name: String, _ data: [UInt8], method: UInt16 = 0, claimedSize: Int? = nil) {
        entries.append(Entry(name: name, data: data, method: method, claimedSize: claimedSize))
    }

    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { out += $0 } }
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        func u64(_ v: Int) { withUnsafeBytes(of: UInt64(v).littleEndian) { out += $0 } }
        var offsets: [Int] = []
        for e in entries {
            offsets.append(out.count)
            let name = Array(e.name.utf8)
            // torch pads the local extra field ("FB") so that data starts on a 64-byte boundary.
            let pad = (64 - (out.count + 30 + name.count + 4) % 64) % 64
            u32(0x0403_4b50); u16(20); u16(0x0800); u16(Int(e.method)); u16(0); u16(0)
            u32(Int(crc32(e.data))); u32(e.data.count); u32(e.data.count)
            u16(name.count); u16(4 + pad)
            out += name
            u16(0x4246); u16(pad); out += [UInt8](repeating: 0x5a, count: pad)
            out += e.data
        }
        let cdStart = out.count
        for (e, off) in zip(entries, offsets) {
            let name = Array(e.name.utf8)
            let size = e.claimedSize ?? e.data.count
            u32(0x0201_4b50); u16(0x031e); u16(zip64 ? 45 : 20); u16(0x0800); u16(Int(e.method)); u16(0); u16(0)
            u32(Int(crc32(e.data)))
            u32(zip64 ? 0xFFFF_FFFF : size); u32(zip64 ? 0xFFFF_FFFF : size)
            u16(name.count); u16(zip64 ? 28 : 0); u16(0); u16(0); u16(0); u32(0)
            u32(zip64 ? 0xFFFF_FFFF : off)
            out += name
            if zip64 { u16(1); u16(24); u64(size); u64(size); u64(off) }
        }
        let cdSize = out.count - cdStart
        if zip64 {
            let record = out.count
            u32(0x0606_4b50); u64(44); u16(0x031e); u16(45); u32(0); u32(0)
            u64(entries.count); u64(entries.count); u64(cdSize); u64(cdStart)
            u32(0x0706_4b50); u32(0); u64(record); u32(1)
        }
        u32(0x0605_4b50); u16(0); u16(0)
        u16(zip64 ? 0xFFFF : entries.count); u16(zip64 ? 0xFFFF : entries.count)
        u32(zip64 ? 0xFFFF_FFFF : cdSize); u32(zip64 ? 0xFFFF_FFFF : cdStart); u16(0)
        return out
    }

    /// A torch.save-like archive: data.pkl, byteorder, the storages, version.
    static func torch(pickle: [UInt8], storages: [(String, [UInt8])], prefix: String = "archive",
                      byteorder: String? = "little", zip64: Bool = false) -> [UInt8] {
        var z = ZipBuilder()
        z.zip64 = zip64
        z.add("\(prefix)/data.pkl", pickle)
        if let byteorder { z.add("\(prefix)/byteorder", Array(byteorder.utf8)) }
        for (key, data) in storages { z.add("\(prefix)/data/\(key)", data) }
        z.add("\(prefix)/version", Array("3\n".utf8))
        return z.bytes()
    }
}

func crc32(_ data: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in data {
        c ^= UInt32(b)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
    }
    return ~c
}

/// SHA-256 of a byte buffer, hex.
func sha256Hex(_ data: UnsafeRawBufferPointer) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}
