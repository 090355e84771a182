import GGMLCore
import GGUFWriter
import MappedIO

/// The two files llama-imatrix writes (IMatrixCollector::save_imatrix / save_imatrix_legacy),
/// byte for byte. Both go through a temporary file renamed into place when complete.
extension ImportanceMatrix {
    public enum FileFormat: String, Sendable, CaseIterable {
        case gguf, dat
    }

    /// Entry names in llama-imatrix's order: `std::sort` on `std::string`, i.e. by bytes.
    public var sortedNames: [String] {
        entries.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The GGUF layout: KV `general.type`, `imatrix.datasets`, `imatrix.chunk_count`,
    /// `imatrix.chunk_size`, then per entry (sorted) `<name>.in_sum2` (f32, ne [ne0, nMat]) and
    /// `<name>.counts` (f32, ne [1, nMat]), each stored with ggml_n_dims dimensions (trailing 1s dropped).
    public func ggufWriter() -> GGUFFileWriter {
        let w = GGUFFileWriter()
        w.add(GGUFKey.General.type, .string("imatrix"))
        w.add(GGUFKey.Imatrix.datasets, .strings(datasets))
        w.add(GGUFKey.Imatrix.chunkCount, .uint32(UInt32(clamping: chunkCount)))
        w.add(GGUFKey.Imatrix.chunkSize, .uint32(UInt32(clamping: chunkSize)))
        for name in sortedNames {
            let e = entries[name]!
            guard e.nMat > 0, !e.sums.isEmpty else { continue }
            w.addTensor(name: name + ".in_sum2", ne: Self.ggmlDims([e.ne0, e.nMat]), type: .f32)
            w.addTensor(name: name + ".counts", ne: Self.ggmlDims([1, e.nMat]), type: .f32)
        }
        return w
    }

    /// ggml_n_dims: a tensor is written with as many dimensions as its last one above 1.
    static func ggmlDims(_ ne: [Int]) -> [Int] {
        var n = ne.count
        while n > 1 && ne[n - 1] == 1 { n -= 1 }
        return Array(ne[0..<n])
    }

    public func writeGGUF(to path: String) throws {
        let w = ggufWriter()
        try w.begin(path: path)
        do {
            var i = 0
            for name in sortedNames {
                let e = entries[name]!
                guard e.nMat > 0, !e.sums.isEmpty else { continue }
                try Self.write(e.sums, tensor: i, of: w)
                try Self.write(e.counts, tensor: i + 1, of: w)
                i += 2
            }
            try w.commit()
        } catch {
            w.abort()
            throw error
        }
    }

    private static func write(_ values: [Float], tensor: Int, of w: GGUFFileWriter) throws {
        // withUnsafeBytes rethrows untyped errors: carry the typed one out in a Result
        let r: Result<Void, any Error> = values.withUnsafeBytes { b in
            do { try w.writeTensorData(tensor, b); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    /// The legacy `.dat` file: entry count, then per entry (sorted; entries without any data left
    /// out) name, ncall = ⌈max count / chunk size⌉, and (Σx²/count)·ncall per value (1 where a
    /// matrix has no data); then the chunk count and the last dataset's name.
    public func legacyBytes() -> [UInt8] {
        var b: [UInt8] = []
        func i32(_ v: Int) { withUnsafeBytes(of: Int32(truncatingIfNeeded: v).littleEndian) { b.append(contentsOf: $0) } }
        let stored = sortedNames.filter { entries[$0]!.counts.contains { $0 != 0 } }
        i32(stored.count)
        for name in stored {
            let e = entries[name]!
            i32(name.utf8.count)
            b.append(contentsOf: name.utf8)
            let maxCount = Int(e.counts.max() ?? 0)
            let ncall = (maxCount + chunkSize - 1) / max(chunkSize, 1)
            i32(ncall)
            i32(e.sums.count)
            let perMat = e.sums.count / max(e.nMat, 1)
            for (j, s) in e.sums.enumerated() {
                var count = e.counts[j / perMat], value = s
                if count == 0 { value = 1; count = 1 }
                let v = (value / count) * Float(ncall)
                withUnsafeBytes(of: v.bitPattern.littleEndian) { b.append(contentsOf: $0) }
            }
        }
        i32(chunkCount)
        let dataset = datasets.last ?? ""
        i32(dataset.utf8.count)
        b.append(contentsOf: dataset.utf8)
        return b
    }

    public func writeLegacy(to path: String) throws {
        let bytes = legacyBytes()
        let out = try OutputFile(path: path)
        do {
            try out.setSize(bytes.count)
            try out.write(bytes, at: 0)
            try out.commit()
        } catch {
            out.abort()
            throw error
        }
    }

    public func write(to path: String, format: FileFormat) throws {
        switch format {
        case .gguf: try writeGGUF(to: path)
        case .dat: try writeLegacy(to: path)
        }
    }
}
