import MappedIO

/// The zip container torch.save writes (through miniz): stored entries only, located through the
/// central directory, with Zip64 records (miniz writes them even for small files) honoured so that
/// checkpoints over 4 GB read the same way.
///
/// Nothing is decompressed, so every entry's data is a plain byte range of the mapped file.
public struct TorchZip: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        /// Absolute byte range of the entry's (stored) data in the file.
        public let range: Range<Int>
    }

    /// torch writes a handful of records plus one per storage; a million is far past any real
    /// checkpoint and keeps a hostile count from sizing our allocations.
    public static let maxEntries = 1 << 20

    public let path: String
    /// In central-directory order (the order torch wrote them).
    public let entries: [Entry]
    private let byName: [String: Int]

    public subscript(name: String) -> Entry? { byName[name].map { entries[$0] } }

    static let localSignature: UInt32 = 0x0403_4b50
    static let centralSignature: UInt32 = 0x0201_4b50
    static let endSignature: UInt32 = 0x0605_4b50
    static let zip64EndSignature: UInt32 = 0x0606_4b50
    static let zip64LocatorSignature: UInt32 = 0x0706_4b50

    public init(file: MappedFile) throws(TorchError) {
        let filePath = file.path
        path = filePath
        func fail(_ m: String) -> TorchError { .badZip(path: filePath, detail: m) }
        let bytes = LEReader(file.all)
        let size = file.size

        // The end-of-central-directory record is 22 bytes plus a comment of up to 65535; the
        // comment must end exactly at the end of the file, which also catches truncation.
        guard size >= 22 else { throw fail("truncated: \(size) bytes, too short for an end-of-central-directory record") }
        var eocd = -1
        var pos = size - 22
        let lowest = max(0, size - 22 - 0xFFFF)
        while pos >= lowest {
            if bytes.u32(pos) == Self.endSignature && bytes.u16(pos + 20) == size - pos - 22 {
                eocd = pos
                break
            }
            pos -= 1
        }
        guard eocd >= 0 else { throw fail("no end-of-central-directory record (truncated, or not a zip archive)") }

        var disk = UInt64(bytes.u16(eocd + 4))
        var cdDisk = UInt64(bytes.u16(eocd + 6))
        var diskEntries = UInt64(bytes.u16(eocd + 8))
        var totalEntries = UInt64(bytes.u16(eocd + 10))
        var cdSize = UInt64(bytes.u32(eocd + 12))
        var cdOffset = UInt64(bytes.u32(eocd + 16))
        // Where the central directory must end: the Zip64 record if there is one, else the EOCD.
        var cdLimit = UInt64(eocd)

        if eocd >= 20 && bytes.u32(eocd - 20) == Self.zip64LocatorSignature {
            let locator = eocd - 20
            let recordDisk = bytes.u32(locator + 4)
            let recordOffset = bytes.u64(locator + 8)
            let disks = bytes.u32(locator + 16)
            guard recordDisk == 0, disks <= 1 else { throw fail("multi-disk (split) archives are not supported") }
            guard recordOffset <= UInt64(locator), UInt64(locator) - recordOffset >= 56 else {
                throw fail("Zip64 end-of-central-directory offset \(recordOffset) does not leave room for the record before its locator")
            }
            let r = Int(recordOffset)
            guard bytes.u32(r) == Self.zip64EndSignature else {
                throw fail("no Zip64 end-of-central-directory record at offset \(r)")
            }
            let recordSize = bytes.u64(r + 4)
            guard recordSize >= 44, recordSize <= UInt64(locator - r - 12) else {
                throw fail("Zip64 end-of-central-directory record size \(recordSize) is inconsistent")
            }
            // The 16/32-bit fields are either saturated (the value lives here) or must agree.
            func merge(_ short: UInt64, _ saturated: UInt64, _ wide: UInt64, _ what: String) throws(TorchError) -> UInt64 {
                guard short == saturated || short == wide else {
                    throw fail("\(what): end-of-central-directory says \(short), its Zip64 record \(wide)")
                }
                return wide
            }
            disk = try merge(disk, 0xFFFF, UInt64(bytes.u32(r + 16)), "disk number")
            cdDisk = try merge(cdDisk, 0xFFFF, UInt64(bytes.u32(r + 20)), "central directory disk")
            diskEntries = try merge(diskEntries, 0xFFFF, bytes.u64(r + 24), "entries on this disk")
            totalEntries = try merge(totalEntries, 0xFFFF, bytes.u64(r + 32), "entry count")
            cdSize = try merge(cdSize, 0xFFFF_FFFF, bytes.u64(r + 40), "central directory size")
            cdOffset = try merge(cdOffset, 0xFFFF_FFFF, bytes.u64(r + 48), "central directory offset")
            cdLimit = recordOffset
        }
        guard disk == 0, cdDisk == 0, diskEntries == totalEntries else {
            throw fail("multi-disk (split) archives are not supported")
        }
        guard totalEntries <= UInt64(Self.maxEntries) else {
            throw fail("\(totalEntries) entries exceed the limit of \(Self.maxEntries)")
        }
        guard cdOffset <= cdLimit, cdSize <= cdLimit - cdOffset else {
            throw fail("central directory (offset \(cdOffset), \(cdSize) bytes) runs past its end record")
        }
        guard totalEntries * 46 <= cdSize else {
            throw fail("central directory of \(cdSize) bytes cannot hold \(totalEntries) entries")
        }
        let cdStart = Int(cdOffset)
        let cdEnd = cdStart + Int(cdSize)

        var entries: [Entry] = []
        var byName: [String: Int] = [:]
        var spans: [(range: Range<Int>, index: Int)] = []
        entries.reserveCapacity(Int(totalEntries))
        var cursor = cdStart
        for i in 0..<Int(totalEntries) {
            let at = "central directory entry \(i) (offset \(cursor))"
            guard cdEnd - cursor >= 46 else { throw fail("\(at) runs past the central directory") }
            guard bytes.u32(cursor) == Self.centralSignature else { throw fail("\(at) has no central-directory signature") }
            let flags = bytes.u16(cursor + 8)
            let method = bytes.u16(cursor + 10)
            var compressed = UInt64(bytes.u32(cursor + 20))
            var uncompressed = UInt64(bytes.u32(cursor + 24))
            let nameLength = bytes.u16(cursor + 28)
            let extraLength = bytes.u16(cursor + 30)
            let commentLength = bytes.u16(cursor + 32)
            var startDisk = UInt64(bytes.u16(cursor + 34))
            var localOffset = UInt64(bytes.u32(cursor + 42))
            let variable = nameLength + extraLength + commentLength
            guard cdEnd - cursor - 46 >= variable else { throw fail("\(at): name and extra fields run past the central directory") }
            let nameStart = cursor + 46
            let nameBytes = bytes.slice(nameStart, nameLength)
            guard nameLength > 0, let name = String(validating: nameBytes, as: UTF8.self) else {
                throw fail("\(at): entry name is empty or not valid UTF-8")
            }
            if flags & 0x41 != 0 { throw .compressedEntry(path: filePath, entry: name, method: -1) }
            if method != 0 { throw .compressedEntry(path: filePath, entry: name, method: method) }

            // Zip64 extended information: present exactly for the saturated fields, in this order.
            var extra = nameStart + nameLength
            let extraEnd = extra + extraLength
            while extra < extraEnd {
                guard extraEnd - extra >= 4 else { throw fail("entry \"\(name)\": truncated extra field") }
                let id = bytes.u16(extra), length = bytes.u16(extra + 2)
                guard extraEnd - extra - 4 >= length else { throw fail("entry \"\(name)\": extra field runs past its entry") }
                if id == 0x0001 {
                    var field = extra + 4
                    let fieldEnd = field + length
                    func wide(_ v: inout UInt64, _ saturated: UInt64) throws(TorchError) {
                        guard v == saturated else { return }
                        guard fieldEnd - field >= 8 else { throw fail("entry \"\(name)\": Zip64 extra field is too short") }
                        v = bytes.u64(field)
                        field += 8
                    }
                    try wide(&uncompressed, 0xFFFF_FFFF)
                    try wide(&compressed, 0xFFFF_FFFF)
                    try wide(&localOffset, 0xFFFF_FFFF)
                    if startDisk == 0xFFFF {
                        guard fieldEnd - field >= 4 else { throw fail("entry \"\(name)\": Zip64 extra field is too short") }
                        startDisk = UInt64(bytes.u32(field))
                    }
                }
                extra += 4 + length
            }
            guard startDisk == 0 else { throw fail("entry \"\(name)\" lies on another disk") }
            guard compressed == uncompressed else {
                throw fail("entry \"\(name)\" is stored but its sizes differ (\(compressed) vs \(uncompressed))")
            }

            // The local header's name and extra lengths may differ from the central directory's
            // (torch pads the local extra field to align data to 64 bytes), so data starts after them.
            guard localOffset < cdOffset, cdOffset - localOffset >= 30 else {
                throw fail("entry \"\(name)\": local header offset \(localOffset) is not before the central directory")
            }
            let local = Int(localOffset)
            guard bytes.u32(local) == Self.localSignature else { throw fail("entry \"\(name)\": no local header at offset \(local)") }
            guard bytes.u16(local + 8) == 0 else {
                throw fail("entry \"\(name)\": local header says compression method \(bytes.u16(local + 8)), the central directory 0")
            }
            let localNameLength = bytes.u16(local + 26)
            let localExtraLength = bytes.u16(local + 28)
            let dataStart = local + 30 + localNameLength + localExtraLength
            guard dataStart <= cdStart, UInt64(cdStart - dataStart) >= uncompressed else {
                throw fail("entry \"\(name)\": data (\(uncompressed) bytes at offset \(dataStart)) runs past the central directory")
            }
            guard localNameLength == nameLength, bytes.slice(local + 30, localNameLength).elementsEqual(nameBytes) else {
                throw fail("entry \"\(name)\": local header names a different entry")
            }
            guard byName[name] == nil else { throw fail("entry \"\(name)\" appears twice") }
            let range = dataStart..<(dataStart + Int(uncompressed))
            byName[name] = entries.count
            spans.append((local..<range.upperBound, entries.count))
            entries.append(Entry(name: name, range: range))
            cursor = nameStart + variable
        }
        guard cursor == cdEnd else { throw fail("central directory has \(cdEnd - cursor) bytes after its \(totalEntries) entries") }

        // Entries sharing bytes would let one storage alias another (or a zip bomb reuse data).
        spans.sort { $0.range.lowerBound < $1.range.lowerBound }
        for k in spans.indices.dropFirst() where spans[k].range.lowerBound < spans[k - 1].range.upperBound {
            throw fail("entries \"\(entries[spans[k - 1].index].name)\" and \"\(entries[spans[k].index].name)\" overlap")
        }
        self.entries = entries
        self.byName = byName
    }
}

/// Little-endian reads of a mapped buffer; callers check offsets against the buffer first.
struct LEReader {
    let buffer: UnsafeRawBufferPointer
    init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    func u16(_ at: Int) -> Int {
        precondition(at >= 0 && at + 2 <= buffer.count)
        return Int(UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
    }
    func u32(_ at: Int) -> UInt32 {
        precondition(at >= 0 && at + 4 <= buffer.count)
        return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
    func u64(_ at: Int) -> UInt64 {
        precondition(at >= 0 && at + 8 <= buffer.count)
        return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }
    func slice(_ at: Int, _ count: Int) -> UnsafeRawBufferPointer {
        precondition(at >= 0 && count >= 0 && at + count <= buffer.count)
        return UnsafeRawBufferPointer(rebasing: buffer[at..<(at + count)])
    }
}
