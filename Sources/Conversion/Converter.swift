import Dispatch
import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import Quantizers
import SafetensorsReader
import Workers

/// Executes a `ConversionPlan`: header first, then each tensor's rows converted in parallel and
/// written straight to their place in the file. Nothing larger than a chunk of rows is held.
public struct Converter {
    public struct Progress: Sendable {
        public let tensorIndex: Int
        public let tensorCount: Int
        public let name: String
        public let bytesWritten: Int
        public let totalBytes: Int
    }

    public struct Summary: Sendable {
        public let path: String
        /// Every file written: `path` alone, or the splits in order.
        public let paths: [String]
        public let fileSize: Int
        public let tensorCount: Int
        public let seconds: Double
        public let typeCounts: [(GGMLType, Int)]
    }

    public let plan: any OutputPlan
    public let threads: Int
    /// Output bytes per work item: large enough to amortise dispatch, small enough to balance.
    static let chunkBytes = 1 << 16

    /// Quantizes a whole tensor at once (all rows as f32, in output order) into `dst`, or returns
    /// false to leave it to the row-by-row quantizers: for methods that need every row together,
    /// like GPTQ's error compensation.
    public typealias TensorEncoder = @Sendable (_ tensor: PlannedTensor, _ rows: UnsafeBufferPointer<Float>,
                                                _ dst: UnsafeMutableRawBufferPointer) -> Bool
    public let encoder: TensorEncoder?

    public init(plan: any OutputPlan, threads: Int = ProcessInfo.processInfo.activeProcessorCount, encoder: TensorEncoder? = nil) {
        self.plan = plan
        self.threads = max(1, threads)
        self.encoder = encoder
    }

    /// - Parameter split: write llama.cpp's split files `PREFIX-0000i-of-0000N.gguf` (PREFIX is
    ///   `outfile` without `.gguf`), cut at this limit, instead of one file.
    public func run(outfile: String, split: GGUFSplitPlan.Limit? = nil, progress: ((Progress) -> Void)? = nil) throws -> Summary {
        let start = Date()
        let writer: any GGUFTensorSink
        let commit: () throws -> Void, abort: () -> Void
        let fileSize: Int, paths: [String]
        if let split {
            let w = try GGUFSplitWriter(metadata: plan.metadata, tensors: plan.tensors.map { GGUFTensorInfo(name: $0.name, ne: $0.ne, type: $0.type) },
                                        limit: split, prefix: GGUFSplitPlan.prefix(of: outfile))
            fileSize = try w.begin()
            (writer, commit, abort, paths) = (w, w.commit, w.abort, w.paths)
        } else {
            let w = GGUFFileWriter()
            for (k, v) in plan.metadata { w.add(k, v) }
            for t in plan.tensors { w.addTensor(name: t.name, ne: t.ne, type: t.type) }
            fileSize = try w.begin(path: outfile).totalSize
            (writer, commit, abort, paths) = (w, w.commit, w.abort, [outfile])
        }
        var done = 0
        let total = plan.tensors.reduce(0) { $0 + $1.byteCount }
        do {
            for (i, t) in plan.tensors.enumerated() {
                try convert(t, index: i, writer: writer, outfile: outfile)
                done += t.byteCount
                progress?(Progress(tensorIndex: i + 1, tensorCount: plan.tensors.count, name: t.name,
                                   bytesWritten: done, totalBytes: total))
            }
            try commit()
        } catch {
            abort()
            throw error
        }
        var counts: [GGMLType: Int] = [:]
        for t in plan.tensors { counts[t.type, default: 0] += 1 }
        return Summary(path: paths[0], paths: paths, fileSize: fileSize, tensorCount: plan.tensors.count,
                       seconds: Date().timeIntervalSince(start),
                       typeCounts: counts.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.key, $0.value) })
    }

    func convert(_ t: PlannedTensor, index: Int, writer: any GGUFTensorSink, outfile: String) throws {
        switch t.source {
        case .generated(let values):
            let r: Result<Void, any Error> = values.withUnsafeBytes { b in
                do { try writer.writeTensorData(index, b); return .success(()) } catch { return .failure(error) }
            }
            try r.get()
        case .gguf(let file, let info):
            let src = file.data(info)
            defer { file.file.adviseDone((file.dataStart + info.offset)..<(file.dataStart + info.offset + info.byteCount)) }
            if info.type == t.type {
                try writer.writeTensorData(index, src)
                return
            }
            try convertRows(t, index: index, src: src, reader: RowReader(type: info.type, rowLength: t.ne[0], permuteHeads: nil,
                                                                         rows: t.rows, path: file.path),
                            writer: writer, path: file.path)
        case .checkpoint(let file, let tensor, let permuteHeads):
            // a trimmed tensor (Gemma 3's embedding) is its first rows
            let src = UnsafeRawBufferPointer(rebasing: file.data(tensor).prefix(t.sourceByteCount))
            defer { file.file.adviseDone(tensor.range) }
            // Same type in and out, rows in place: the bytes are already what convert writes.
            if permuteHeads == nil, (t.sourceType == .f32 && t.type == .f32) || (t.sourceType == .f16 && t.type == .f16)
                || (t.sourceType == .bf16 && t.type == .bf16 && !Self.hasBF16NaN(src)) {
                try writer.writeTensorData(index, src)
                return
            }
            try convertRows(t, index: index, src: src, reader: RowReader(type: t.sourceType, rowLength: t.ne[0],
                                                                         permuteHeads: permuteHeads, rows: t.rows, path: file.path),
                            writer: writer, path: file.path)
        }
    }

    /// convert_hf_to_gguf takes bf16 through f32 and back, which keeps every value but quiets a
    /// NaN; a tensor without NaN is therefore written as it is stored.
    static func hasBF16NaN(_ src: UnsafeRawBufferPointer) -> Bool {
        // four values a word: |x| > 0x7F80 exactly when |x| + 0x7F reaches bit 15 (no carry
        // crosses lanes, |x| + 0x7F < 0x10000)
        let n = src.count / 2, words = n / 4
        var acc: UInt64 = 0
        for i in 0..<words {
            acc |= (src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self) & 0x7FFF_7FFF_7FFF_7FFF) &+ 0x007F_007F_007F_007F
        }
        for i in (4 * words)..<n {
            acc |= UInt64((src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7FFF) &+ 0x7F)
        }
        return acc & 0x8000_8000_8000_8000 != 0
    }

    func convertRows(_ t: PlannedTensor, index: Int, src: UnsafeRawBufferPointer, reader: RowReader,
                     writer: any GGUFTensorSink, path: String) throws {
        let rowLen = t.ne[0]
        let rows = t.rows
        guard let dstRow = t.type.rowSize(rowLen), let q = Quantizers.quantizer(for: t.type) else {
            throw ConversionError.unsupportedTensor(path: path, name: t.sourceName, detail: "cannot write type \(t.type.name)")
        }
        let reader = try reader.validated()
        let rowsPerMatrix = max(1, t.ne.count > 1 ? t.ne[1] : 1)
        if let w = t.importance, w.count < (rows / rowsPerMatrix) * rowLen {
            throw ConversionError.unsupportedTensor(path: path, name: t.sourceName, detail: "\(w.count) importance weights for \(rows / rowsPerMatrix) matrices of \(rowLen) columns")
        }
        if let encoder, t.type.isQuantized, try encodeWhole(t, index: index, src: src, reader: reader, writer: writer,
                                                            path: path, encoder: encoder) {
            return
        }
        let rowsPerChunk = max(1, Self.chunkBytes / max(dstRow, 1))
        let chunks = (rows + rowsPerChunk - 1) / rowsPerChunk
        let checkFinite = t.type.isQuantized
        let counter = ChunkCounter(chunks), failure = FirstError<any Error>()
        let base = SendablePointer(src.baseAddress!)

        DispatchQueue.concurrentPerform(iterations: min(threads, chunks)) { _ in
            let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: rowLen)
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: rowsPerChunk * dstRow, alignment: 64)
            defer { scratch.deallocate(); out.deallocate() }
            while let c = counter.next() {
                let r0 = c * rowsPerChunk
                let r1 = min(rows, r0 + rowsPerChunk)
                for r in r0..<r1 {
                    reader.read(row: r, from: base.p, into: scratch)
                    if checkFinite, !allFinite(scratch) {
                        failure.record(ConversionError.nonFiniteTensor(path: path, name: t.sourceName, row: reader.sourceRow(r), type: t.type))
                        counter.stop()
                        return
                    }
                    let dst = UnsafeMutableRawBufferPointer(rebasing: out[((r - r0) * dstRow)..<((r - r0 + 1) * dstRow)])
                    if let importance = t.importance {
                        // llama_tensor_quantize_impl: row r of matrix r / ne[1] takes that matrix's slice.
                        let w0 = r / rowsPerMatrix * rowLen
                        importance.withUnsafeBufferPointer { w in
                            q.quantizeRow(UnsafeBufferPointer(scratch), importance: UnsafeBufferPointer(rebasing: w[w0..<(w0 + rowLen)]), into: dst)
                        }
                    } else {
                        q.quantizeRow(UnsafeBufferPointer(scratch), into: dst)
                    }
                }
                do {
                    try writer.writeTensorData(index, UnsafeRawBufferPointer(rebasing: out[0..<((r1 - r0) * dstRow)]),
                                               byteOffset: r0 * dstRow)
                } catch {
                    failure.record(error)
                    counter.stop()
                    return
                }
            }
        }
        if let e = failure.error { throw e }
    }
}

extension Converter {
    /// The tensor through `encoder` if it takes it; memory is the tensor in f32 plus its output.
    func encodeWhole(_ t: PlannedTensor, index: Int, src: UnsafeRawBufferPointer, reader: RowReader, writer: any GGUFTensorSink,
                     path: String, encoder: TensorEncoder) throws -> Bool {
        let rowLen = t.ne[0], rows = t.rows
        let dstRow = t.type.rowSize(rowLen)!
        let all = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * rowLen)
        defer { all.deallocate() }
        for r in 0..<rows {
            let row = UnsafeMutableBufferPointer(rebasing: all[(r * rowLen)..<((r + 1) * rowLen)])
            reader.read(row: r, from: src.baseAddress!, into: row)
            if !allFinite(row) {
                throw ConversionError.nonFiniteTensor(path: path, name: t.sourceName, row: reader.sourceRow(r), type: t.type)
            }
        }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: rows * dstRow, alignment: 64)
        defer { out.deallocate() }
        guard encoder(t, UnsafeBufferPointer(all), out) else { return false }
        try writer.writeTensorData(index, UnsafeRawBufferPointer(out), byteOffset: 0)
        return true
    }
}

/// Turns row `r` of a source tensor (any type we can read, rows possibly permuted) into f32.
struct RowReader: Sendable {
    let type: GGMLType
    let rowLength: Int
    let permutation: RowPermutation
    let path: String
    private var dequantizer: (any BlockQuantizer.Type)?

    init(type: GGMLType, rowLength: Int, permuteHeads: Int?, rows: Int, path: String) {
        self.type = type
        self.rowLength = rowLength
        self.permutation = RowPermutation(rows: rows, heads: permuteHeads)
        self.path = path
    }

    func validated() throws -> RowReader {
        guard let d = Quantizers.quantizer(for: type) else {
            throw ConversionError.unreadableType(path: path, type: type)
        }
        var r = self
        r.dequantizer = d
        return r
    }

    var rowBytes: Int { type.rowSize(rowLength) ?? 0 }

    func sourceRow(_ r: Int) -> Int { permutation[r] }

    func read(row r: Int, from base: UnsafeRawPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        dequantizer!.dequantizeRow(UnsafeRawBufferPointer(start: base + permutation[r] * rowBytes, count: rowBytes), into: dst)
    }
}

/// convert_hf_to_gguf `LlamaModel.permute`: within each head, rows `[0, d/2)` and `[d/2, d)`
/// (HF's rotate-half layout) are interleaved into ggml's pairwise layout.
public struct RowPermutation: Sendable {
    public let rows: Int
    public let heads: Int?

    public init(rows: Int, heads: Int?) {
        self.rows = rows
        self.heads = heads
    }

    /// The source row of output row `r`.
    public subscript(r: Int) -> Int {
        guard let h = heads else { return r }
        let perHead = rows / h
        let half = perHead / 2
        let head = r / perHead
        let within = r % perHead
        return head * perHead + (within % 2) * half + within / 2
    }
}

@inline(__always)
func allFinite(_ b: UnsafeMutableBufferPointer<Float>) -> Bool {
    var ok = true
    for x in b where !x.isFinite { ok = false; break }
    return ok
}

