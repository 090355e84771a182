import GGMLCore
import GGUFWriter
import MappedIO

/// Reads llama.cpp's imatrix files as `common_imatrix_load` does: the GGUF format llama-imatrix
/// writes by default (`general.type = imatrix`, `<name>.in_sum2` and `<name>.counts` tensors) and
/// the legacy `.dat` format (`--output-format dat`). Every length is checked against the file
/// before it is used, so a hostile file gives one error naming the file, never a crash.
public enum ImatrixReader {
    /// `requireMetadata`: llama-quantize's `load_imatrix` refuses a GGUF imatrix without
    /// `imatrix.datasets`, `imatrix.chunk_count` and `imatrix.chunk_size`; so do we by default.
    public static func read(path: String, requireMetadata: Bool = true) throws -> ImportanceMatrix {
        do {
            let file = try MappedFile(path: path)
            // llama.cpp tries GGUF first and falls back to the legacy reader on any GGUF error; a file
            // that starts with the GGUF magic is never a valid legacy file (that would be 1.2e9
            // entries), so the GGUF reader's more precise error is the one worth reporting.
            if file.size >= 4, Array(file.bytes(0..<4)) == GGUF.magic {
                return try readGGUF(try GGUFFile(file: file), requireMetadata: requireMetadata)
            }
            return try readLegacy(file)
        } catch let e as CalibrationError {
            throw e
        } catch let e as any FileFault {
            throw CalibrationError.imatrix(path: e.path, detail: e.fault)
        }
    }

    static func readGGUF(_ f: GGUFFile, requireMetadata: Bool) throws -> ImportanceMatrix {
        func fail(_ m: String) -> CalibrationError { .imatrix(path: f.path, detail: m) }
        guard !f.tensors.isEmpty else { throw fail("no data in imatrix file (no tensors)") }
        let datasetsValue = f[GGUFKey.Imatrix.datasets]
        let chunkCountValue = f[GGUFKey.Imatrix.chunkCount]
        let chunkSizeValue = f[GGUFKey.Imatrix.chunkSize]
        if requireMetadata, datasetsValue == nil || chunkCountValue == nil || chunkSizeValue == nil {
            throw fail("missing imatrix metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size); not an imatrix file?")
        }
        var datasets: [String] = []
        // A datasets key of another type counts as present but holds no names, as in llama.cpp.
        if case .array(.string, let items)? = datasetsValue {
            datasets = items.compactMap(\.stringValue)
        }
        // gguf_get_val_u32 aborts on another type; read into llama.cpp's int32_t fields.
        func u32(_ key: String, _ v: GGUFValue?) throws -> Int {
            guard let v else { return 0 }
            guard case .uint32(let u) = v else { throw fail("\(key) must be a uint32") }
            return Int(Int32(truncatingIfNeeded: u))
        }
        let chunkCount = try u32(GGUFKey.Imatrix.chunkCount, chunkCountValue)
        let chunkSize = try u32(GGUFKey.Imatrix.chunkSize, chunkSizeValue)

        var pairs: [String: (sums: GGUFTensorInfo?, counts: GGUFTensorInfo?)] = [:]
        for t in f.tensors where !t.name.isEmpty {
            if t.name.hasSuffix(".in_sum2") {
                pairs[String(t.name.dropLast(8)), default: (nil, nil)].sums = t
            } else if t.name.hasSuffix(".counts") {
                pairs[String(t.name.dropLast(7)), default: (nil, nil)].counts = t
            }
        }
        var entries: [String: ImportanceMatrix.Entry] = [:]
        for name in pairs.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let (s, c) = pairs[name]!
            guard let s, let c else { throw fail("mismatched sums and counts for \(name)") }
            guard s.type == .f32, c.type == .f32 else { throw fail("sums and counts for \(name) must be F32") }
            // Every entry divides its sums among its counts; an empty counts tensor would be a
            // division by zero in llama.cpp.
            guard c.elementCount > 0 else { throw fail("counts for \(name) are empty") }
            entries[name] = .init(sums: floats(f.data(s)), counts: floats(f.data(c)))
        }
        return ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: chunkCount, chunkSize: chunkSize)
    }

    static func readLegacy(_ file: MappedFile) throws -> ImportanceMatrix {
        var c = LegacyCursor(buf: file.all)
        func fail(_ m: String) -> CalibrationError { .imatrix(path: file.path, detail: m) }
        guard let nEntries = c.i32(), nEntries >= 1 else {
            throw fail("no data in imatrix file (neither GGUF nor a legacy .dat with entries)")
        }
        var entries: [String: ImportanceMatrix.Entry] = [:]
        for i in 1...Int(nEntries) {
            guard let len = c.i32(), len >= 0, let nameBytes = c.bytes(Int(len)) else {
                throw fail("failed reading name for entry \(i) (legacy imatrix truncated or corrupt\(i == 1 ? "; not an imatrix file?" : ""))")
            }
            // std::string from a char buffer ends at the first NUL.
            let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
            guard let ncall = c.i32(), let nval = c.i32(), nval >= 1 else {
                throw fail("failed reading number of values for entry \(i) (\"\(name)\")")
            }
            guard let data = c.bytes(Int(nval) * 4) else {
                throw fail("failed reading data for entry \(i) (\"\(name)\"): \(nval) values run past the end of the file")
            }
            // A repeated name replaces the earlier entry, as std::map's operator[] does.
            entries[name] = .init(sums: floats(data), counts: [Float(ncall)])
        }
        // The trailing chunk count and dataset name are optional; a short read keeps what it got,
        // as istream::read leaves the bytes it did read.
        var chunkCount = 0
        var datasets: [String] = []
        if c.remaining > 0 {
            let (n, complete) = c.partialI32()
            chunkCount = Int(n)
            if complete, let len = c.i32(), len > 0, let d = c.bytes(Int(len)) {
                datasets.append(String(decoding: d.prefix { $0 != 0 }, as: UTF8.self))
            }
        }
        return ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: chunkCount, chunkSize: 0, isLegacy: true)
    }

    static func floats(_ b: UnsafeRawBufferPointer) -> [Float] {
        (0..<(b.count / 4)).map { Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
    }
}

private struct LegacyCursor {
    let buf: UnsafeRawBufferPointer
    var pos = 0
    var remaining: Int { buf.count - pos }

    mutating func bytes(_ n: Int) -> UnsafeRawBufferPointer? {
        guard n >= 0, n <= remaining else { return nil }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: buf[pos..<(pos + n)])
    }

    mutating func i32() -> Int32? {
        bytes(4).map { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) }
    }

    /// What `in.read(&int32, 4)` leaves in a zeroed int32 when fewer than 4 bytes remain.
    mutating func partialI32() -> (Int32, complete: Bool) {
        let n = min(4, remaining)
        var v: UInt32 = 0
        for (i, b) in bytes(n)!.enumerated() { v |= UInt32(b) << (8 * i) }
        return (Int32(bitPattern: v), n == 4)
    }
}

extension ImportanceMatrix {
    /// What llama-quantize's `load_imatrix` hands to the quantizer for one weight tensor, or nil
    /// when the file has no entry for it. GGUF: each matrix's sums divided by its token count
    /// (counts rounded with `lround` first, as common_imatrix_load stores them as int64), 1 for a
    /// matrix that saw no tokens. Legacy: the sums already hold mean·ncall, so sums / ncall.
    public func quantWeights(for tensorName: String) -> [Float]? {
        entries[tensorName].map { quantWeights($0) }
    }

    /// `quantWeights(for:)` of every entry, keyed by tensor name (llama-quantize's `imatrix_data`).
    public func allQuantWeights() -> [String: [Float]] {
        entries.mapValues { quantWeights($0) }
    }

    func quantWeights(_ entry: Entry) -> [Float] {
        var e = [Float](repeating: 0, count: entry.sums.count)
        if isLegacy {
            let ncall = entry.counts.first ?? 0
            for i in e.indices { e[i] = ncall > 0 ? entry.sums[i] / ncall : entry.sums[i] }
            return e
        }
        let nCounts = entry.counts.count
        guard nCounts > 0 else { return e }
        // Integer division: when sums do not split evenly, llama.cpp leaves the tail at 0.
        let ne0 = entry.sums.count / nCounts
        for j in 0..<nCounts {
            let count = Float(Self.lround(entry.counts[j]))
            for i in 0..<ne0 { e[j * ne0 + i] = count > 0 ? entry.sums[j * ne0 + i] / count : 1 }
        }
        return e
    }

    /// C's `lround` on x86-64 glibc: half away from zero; NaN and out-of-range give LONG_MIN.
    static func lround(_ x: Float) -> Int64 {
        let r = x.rounded(.toNearestOrAwayFromZero)
        guard r.isFinite, r >= -0x1p63, r < 0x1p63 else { return Int64.min }
        return Int64(r)
    }
}
