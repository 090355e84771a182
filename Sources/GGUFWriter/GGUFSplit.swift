import Foundation
import GGMLCore
import MappedIO

/// llama.cpp's split GGUF layout, as `llama-gguf-split --split` writes it: files
/// `PREFIX-00001-of-0000N.gguf`, the first holding every metadata key, each holding `split.no`,
/// `split.count` and `split.tensors.count`, and the tensors in order, cut where a limit is reached.
public struct GGUFSplitPlan: Sendable, Equatable {
    public enum Limit: Sendable, Equatable {
        /// At most this many tensors per file (`--split-max-tensors`).
        case tensors(Int)
        /// At most this many bytes of (padded) tensor data per file (`--split-max-size`); the
        /// metadata is not counted, as llama-gguf-split does not count it.
        case bytes(Int)
    }

    /// The tensor indices of each file, in order.
    public let ranges: [Range<Int>]

    /// - Throws: when the first tensor alone exceeds the size limit (llama-gguf-split's "one of
    ///   splits have 0 tensors").
    public init(tensors: [GGUFTensorInfo], limit: Limit, alignment: Int = GGUF.defaultAlignment, path: String) throws(GGUFError) {
        var ranges: [Range<Int>] = []
        var start = 0
        var current = 0
        for (i, t) in tensors.enumerated() {
            let n = GGUF.pad(t.byteCount, alignment)
            let next = current + n
            let cut: Bool
            switch limit {
            case .bytes(let max): cut = next > max
            case .tensors(let max): cut = i > 0 && i % max == 0
            }
            if cut {
                guard i > start else {
                    throw .cannotSplit(path: path, detail: "tensor \(t.name) (\(t.byteCount) bytes) is larger than the split size limit")
                }
                ranges.append(start..<i)
                start = i
                current = n
            } else {
                current = next
            }
        }
        ranges.append(start..<tensors.count)
        self.ranges = ranges
    }

    /// `PREFIX-00001-of-00003.gguf` for split 0 of 3 (llama.cpp's `llama_split_path`).
    public static func path(prefix: String, split: Int, count: Int) -> String {
        prefix + String(format: "-%05d-of-%05d.gguf", split + 1, count)
    }

    /// The prefix of an output name: `dir/Model-Q8_0.gguf` → `dir/Model-Q8_0`.
    public static func prefix(of outfile: String) -> String {
        outfile.lowercased().hasSuffix(".gguf") ? String(outfile.dropLast(5)) : outfile
    }

    /// Split `split`'s metadata: all of `base` in the first, then `split.no`, `split.tensors.count`
    /// and `split.count` — in that order, because gguf_set_val removes a key and appends it, and
    /// llama-gguf-split sets `split.count` last, once it knows it.
    public func metadata(split: Int, base: [(key: String, value: GGUFValue)], tensorCount: Int) -> [(key: String, value: GGUFValue)] {
        var out = split == 0 ? base.filter { !GGUFKey.Split.all.contains($0.key) } : []
        out.append((GGUFKey.Split.no, .uint16(UInt16(split))))
        out.append((GGUFKey.Split.tensorsCount, .int32(Int32(tensorCount))))
        out.append((GGUFKey.Split.count, .uint16(UInt16(ranges.count))))
        return out
    }
}

/// The place tensor data is written to: one GGUF, or the files of a split model.
public protocol GGUFTensorSink: AnyObject, Sendable {
    func writeTensorData(_ index: Int, _ bytes: UnsafeRawBufferPointer, byteOffset: Int) throws
}

extension GGUFTensorSink {
    public func writeTensorData(_ index: Int, _ bytes: UnsafeRawBufferPointer) throws {
        try writeTensorData(index, bytes, byteOffset: 0)
    }
}

extension GGUFFileWriter: GGUFTensorSink {}

/// Writes a model as llama.cpp's splits: every file kept under its temporary name until all are
/// complete, then each renamed into place; on any failure none is left, not even the ones already
/// renamed.
public final class GGUFSplitWriter: GGUFTensorSink, @unchecked Sendable {
    public let plan: GGUFSplitPlan
    public let paths: [String]
    private let writers: [GGUFFileWriter]
    /// Global tensor index → (file, index within it).
    private let place: [(file: Int, index: Int)]

    public init(metadata: [(key: String, value: GGUFValue)], tensors: [GGUFTensorInfo], limit: GGUFSplitPlan.Limit,
                prefix: String) throws(GGUFError) {
        let plan = try GGUFSplitPlan(tensors: tensors, limit: limit, path: prefix)
        self.plan = plan
        var writers: [GGUFFileWriter] = []
        var place: [(Int, Int)] = []
        for (s, r) in plan.ranges.enumerated() {
            let w = GGUFFileWriter()
            for (k, v) in plan.metadata(split: s, base: metadata, tensorCount: tensors.count) { w.add(k, v) }
            for i in r {
                place.append((s, w.addTensor(name: tensors[i].name, ne: tensors[i].ne, type: tensors[i].type)))
            }
            writers.append(w)
        }
        self.writers = writers
        self.place = place
        paths = plan.ranges.indices.map { GGUFSplitPlan.path(prefix: prefix, split: $0, count: plan.ranges.count) }
    }

    /// Creates every file (temporary names, sized); returns the bytes all of them take.
    public func begin() throws -> Int {
        var total = 0
        do {
            for (w, p) in zip(writers, paths) { total += try w.begin(path: p).totalSize }
        } catch {
            abort()
            throw error
        }
        return total
    }

    public func writeTensorData(_ index: Int, _ bytes: UnsafeRawBufferPointer, byteOffset: Int) throws {
        let (f, i) = place[index]
        try writers[f].writeTensorData(i, bytes, byteOffset: byteOffset)
    }

    public func commit() throws {
        for (k, w) in writers.enumerated() {
            do {
                try w.commit()
            } catch {
                for p in paths[..<k] { unlink(p) }
                for later in writers[(k + 1)...] { later.abort() }
                throw error
            }
        }
    }

    public func abort() {
        for w in writers { w.abort() }
    }
}

extension GGUFFile {
    /// The files of the model `path` names: that file alone, or — when it is split 1 of N, as
    /// llama-gguf-split and `--split-max-*` write them — all N, checked to belong together.
    /// Given another split than the first, says which file to give.
    public static func model(_ path: String) throws -> [GGUFFile] {
        let first = try GGUFFile(path: path)
        guard let countValue = first[GGUFKey.Split.count] else { return [first] }
        func bad(_ p: String, _ m: String) -> GGUFError { .badSplit(path: p, detail: m) }
        guard let count = countValue.intValue, (1...9999).contains(count),
              let no = first[GGUFKey.Split.no]?.intValue else {
            throw bad(path, "\(GGUFKey.Split.count) or \(GGUFKey.Split.no) is missing or out of range")
        }
        let suffix = GGUFSplitPlan.path(prefix: "", split: no, count: count)
        guard path.hasSuffix(suffix) else {
            throw bad(path, "is split \(no + 1) of \(count), but its name does not end in \(suffix)")
        }
        let prefix = String(path.dropLast(suffix.count))
        guard no == 0 else {
            throw bad(path, "is split \(no + 1) of \(count); give the first, \(displayName((GGUFSplitPlan.path(prefix: prefix, split: 0, count: count) as NSString).lastPathComponent))")
        }
        let total = first[GGUFKey.Split.tensorsCount]?.intValue
        var files = [first]
        var names = Set(first.tensors.map(\.name))
        for i in 1..<count {
            let p = GGUFSplitPlan.path(prefix: prefix, split: i, count: count)
            guard FileManager.default.fileExists(atPath: p) else { throw bad(p, "missing: split \(i + 1) of \(count) of \(displayName(path))") }
            let f = try GGUFFile(path: p)
            guard f[GGUFKey.Split.no]?.intValue == i, f[GGUFKey.Split.count]?.intValue == count else {
                throw bad(p, "is not split \(i + 1) of \(count) (its \(GGUFKey.Split.no)/\(GGUFKey.Split.count) say otherwise)")
            }
            for t in f.tensors where !names.insert(t.name).inserted {
                throw bad(p, "tensor \(displayName(t.name)) is also in an earlier split")
            }
            files.append(f)
        }
        if let total, total != names.count {
            throw bad(path, "\(GGUFKey.Split.tensorsCount) is \(total), but the \(count) splits hold \(names.count) tensors")
        }
        return files
    }

    /// The metadata a split model stands for: the first file's, without the split keys (what
    /// llama-quantize copies into a file it writes from splits).
    public static func modelMetadata(_ files: [GGUFFile]) -> [(key: String, value: GGUFValue)] {
        files[0].metadata.filter { !GGUFKey.Split.all.contains($0.key) }
    }
}
