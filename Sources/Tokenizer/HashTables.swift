/// Open-addressing hash table from byte strings to `Int32`, with the keys in one arena, so that a
/// lookup by a slice of the input costs no allocation.
struct ByteKeyTable: Sendable {
    private(set) var arena: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLen: [Int32] = []
    private(set) var values: [Int32] = []
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int = 16) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [Int32](repeating: -1, count: n)
        mask = n - 1
    }

    var count: Int { values.count }

    @inline(__always)
    static func hash(_ p: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ (UInt64(p.count) &* 0xC2B2_AE3D_27D4_EB4F)
        var i = 0
        let n = p.count
        while i + 8 <= n {
            let v = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ v) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 29
            i += 8
        }
        if i < n {
            var v: UInt64 = 0
            var s: UInt64 = 0
            while i < n {
                v |= UInt64(p[i]) << s
                s += 8
                i += 1
            }
            h = (h ^ v) &* 0xFF51_AFD7_ED55_8CCD
        }
        h ^= h >> 32
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 29
        return h
    }

    @inline(__always)
    private func equal(_ e: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let n = Int(keyLen[e])
        guard n == key.count else { return false }
        if n == 0 { return true }
        return arena.withUnsafeBytes { a in
            memcmpBytes(a.baseAddress! + Int(keyStart[e]), key.baseAddress!, n)
        }
    }

    /// The entry index of `key`, or nil.
    @inline(__always)
    func entry(_ key: UnsafeRawBufferPointer) -> Int? {
        var i = Int(truncatingIfNeeded: Self.hash(key)) & mask
        return slots.withUnsafeBufferPointer { s in
            while true {
                let e = Int(s[i])
                if e < 0 { return nil }
                if equal(e, key) { return e }
                i = (i + 1) & mask
            }
        }
    }

    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer) -> Int32? {
        entry(key).map { values[$0] }
    }

    func find(_ key: [UInt8]) -> Int32? {
        key.withUnsafeBytes { find($0) }
    }

    func key(at e: Int) -> ArraySlice<UInt8> {
        arena[Int(keyStart[e])..<Int(keyStart[e] + keyLen[e])]
    }

    /// Inserts or (when `overwrite`) replaces; returns the entry index.
    @discardableResult
    mutating func insert(_ key: UnsafeRawBufferPointer, value: Int32, overwrite: Bool = true) -> Int {
        if let e = entry(key) {
            if overwrite { values[e] = value }
            return e
        }
        if (values.count + 1) * 2 > slots.count { grow() }
        let e = values.count
        keyStart.append(Int32(arena.count))
        keyLen.append(Int32(key.count))
        arena.append(contentsOf: key)
        values.append(value)
        var i = Int(truncatingIfNeeded: Self.hash(key)) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = Int32(e)
        return e
    }

    @discardableResult
    mutating func insert(_ key: [UInt8], value: Int32, overwrite: Bool = true) -> Int {
        key.withUnsafeBytes { insert($0, value: value, overwrite: overwrite) }
    }

    private mutating func grow() {
        let n = slots.count * 2
        slots = [Int32](repeating: -1, count: n)
        mask = n - 1
        arena.withUnsafeBytes { a in
            for e in 0..<values.count {
                let k = UnsafeRawBufferPointer(rebasing: a[Int(keyStart[e])..<Int(keyStart[e] + keyLen[e])])
                var i = Int(truncatingIfNeeded: Self.hash(k)) & mask
                while slots[i] >= 0 { i = (i + 1) & mask }
                slots[i] = Int32(e)
            }
        }
    }
}

@inline(__always)
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}

/// Open-addressing map from a pair of symbol ids to a merge (rank, result id).
struct PairMap: Sendable {
    private var keys: [UInt64]
    private var vals: [UInt64]
    private var mask: Int
    private(set) var count = 0
    private static let empty = UInt64.max

    init(capacity: Int) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: n)
        vals = [UInt64](repeating: 0, count: n)
        mask = n - 1
    }

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    @inline(__always)
    static func slot(_ k: UInt64, _ mask: Int) -> Int {
        var h = k &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 31
        return Int(truncatingIfNeeded: h) & mask
    }

    /// Inserts unless present (llama.cpp's `bpe_ranks.emplace` keeps the first rank of a pair).
    mutating func insertIfAbsent(_ k: UInt64, _ v: UInt64) {
        if (count + 1) * 2 > keys.count { grow() }
        var i = Self.slot(k, mask)
        while keys[i] != Self.empty {
            if keys[i] == k { return }
            i = (i + 1) & mask
        }
        keys[i] = k
        vals[i] = v
        count += 1
    }

    @inline(__always)
    func find(_ k: UInt64) -> UInt64? {
        keys.withUnsafeBufferPointer { ks in
            var i = Self.slot(k, mask)
            while true {
                let x = ks[i]
                if x == k { return vals[i] }
                if x == Self.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }

    private mutating func grow() {
        let oldK = keys, oldV = vals
        let n = keys.count * 2
        keys = [UInt64](repeating: Self.empty, count: n)
        vals = [UInt64](repeating: 0, count: n)
        mask = n - 1
        for j in 0..<oldK.count where oldK[j] != Self.empty {
            var i = Self.slot(oldK[j], mask)
            while keys[i] != Self.empty { i = (i + 1) & mask }
            keys[i] = oldK[j]
            vals[i] = oldV[j]
        }
    }
}
