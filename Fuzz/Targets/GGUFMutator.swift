/// A structure-aware mutation for GGUF inputs (the model and gguf targets' custom mutator): byte
/// mutation rarely turns `llama.attention.head_count` into 0 or 2³²−1 while keeping the file
/// parseable, so this walks the header, metadata and tensor table and overwrites one numeric field
/// in place (a hyper-parameter, an array length, a tensor dimension, type or offset) with a value
/// that breaks naive size arithmetic. Fields keep their width, so the rest of the file still parses.
public enum GGUFMutator {
    /// (offset, width in bytes) of each numeric field in `data`, as far as it parses.
    public static func numericFields(_ data: UnsafeRawBufferPointer) -> [(offset: Int, width: Int)] {
        var fields: [(offset: Int, width: Int)] = []
        var pos = 0
        func u(_ w: Int) -> UInt64? {
            guard pos >= 0, w <= data.count - pos else { return nil }
            var v: UInt64 = 0
            for i in 0..<w { v |= UInt64(data[pos + i]) << (8 * UInt64(i)) }
            pos += w
            return v
        }
        func field(_ w: Int) -> UInt64? {
            let at = pos
            guard let v = u(w) else { return nil }
            fields.append((at, w))
            return v
        }
        func skipString() -> Bool {
            guard let n = u(8), n <= UInt64(data.count - pos) else { return false }
            pos += Int(n)
            return true
        }
        let widths: [UInt64: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]
        func value(_ t: UInt64, depth: Int) -> Bool {
            if let w = widths[t] { return field(w) != nil }
            if t == 8 { return skipString() }
            guard t == 9, depth < 2, let et = u(4), let n = field(8) else { return false }
            if let w = widths[et] {  // the elements are skipped: the count is the field worth changing
                guard n <= UInt64((data.count - pos) / w) else { return false }
                pos += Int(n) * w
                return true
            }
            // each element takes at least 8 bytes, so this ends within the data
            for _ in 0..<n where !value(et, depth: depth + 1) { return false }
            return true
        }
        guard u(4) == 0x4655_4747, field(4) != nil, let nT = field(8), let nKV = field(8) else { return fields }
        for _ in 0..<min(nKV, 4096) {
            guard skipString(), let t = field(4), value(t, depth: 0) else { return fields }
        }
        for _ in 0..<min(nT, 4096) {
            guard skipString(), let nd = field(4), nd <= 4 else { return fields }
            for _ in 0..<nd where field(8) == nil { return fields }
            guard field(4) != nil, field(8) != nil else { return fields }
        }
        return fields
    }

    static let interesting: [UInt64] = [0, 1, 2, 3, 4, 7, 8, 16, 31, 32, 64, 255, 256, 4095, 4096, 65535, 65536,
                                        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, UInt64.max]

    /// Overwrites one numeric field of `data[0..<size]`; returns false if none was found.
    public static func mutate(_ data: UnsafeMutableRawBufferPointer, size: Int, seed: UInt32) -> Bool {
        guard size <= data.count else { return false }
        let fields = numericFields(UnsafeRawBufferPointer(rebasing: data[0..<size]))
        guard !fields.isEmpty else { return false }
        var rng = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
        let f = fields[Int(next() % UInt64(fields.count))]
        var old: UInt64 = 0
        for i in 0..<f.width { old |= UInt64(data[f.offset + i]) << (8 * UInt64(i)) }
        let v: UInt64
        switch next() % 4 {
        case 0: v = old &+ 1
        case 1: v = old &- 1
        case 2: v = old &* 2
        default: v = interesting[Int(next() % UInt64(interesting.count))]
        }
        for i in 0..<f.width { data[f.offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        return true
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerMutate")
func libFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

extension GGUFMutator {
    /// The body of a GGUF target's `LLVMFuzzerCustomMutator`: half the mutations are libFuzzer's
    /// own, half overwrite one numeric GGUF field (hyper-parameters, array lengths and tensor shapes
    /// that byte flips rarely reach intact).
    public static func customMutator(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
        if seed % 2 == 0, mutate(UnsafeMutableRawBufferPointer(start: data, count: maxSize), size: size, seed: seed) {
            return size
        }
        return libFuzzerMutate(data, size, maxSize)
    }
}
#endif
