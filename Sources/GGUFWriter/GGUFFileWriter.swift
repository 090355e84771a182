import GGMLCore
import MappedIO

/// Writes a GGUF v3 file the way gguf-py's GGUFWriter lays it out: header, KV pairs in insertion
/// order, tensor infos in insertion order, zero padding to the alignment, then each tensor's data
/// at its aligned offset. The layout is fixed before any data is written, so tensors can be
/// streamed in one at a time (even in parallel) with `pwrite`, and memory never holds the model.
/// Set-up (`add`, `addTensor`, `begin`) is single-threaded; after `begin`, `writeTensorData` may be
/// called concurrently for disjoint ranges (it is a `pwrite`).
public final class GGUFFileWriter: @unchecked Sendable {
    public private(set) var metadata: [(key: String, value: GGUFValue)] = []
    public private(set) var tensors: [GGUFTensorInfo] = []
    public let alignment: Int
    private var keys: Set<String> = []
    private var names: Set<String> = []
    private var out: OutputFile?
    public private(set) var dataStart = 0
    public private(set) var totalSize = 0

    public init(alignment: Int = GGUF.defaultAlignment) {
        self.alignment = alignment
    }

    /// Sets a key. As in gguf-py (a dict), setting a key again replaces its value in place.
    public func add(_ key: String, _ value: GGUFValue) {
        if keys.contains(key), let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
            return
        }
        keys.insert(key)
        metadata.append((key, value))
    }

    public func value(_ key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    /// Adds a tensor; returns its index. Offsets are assigned by `layout()`.
    @discardableResult
    public func addTensor(name: String, ne: [Int], type: GGMLType) -> Int {
        precondition(!names.contains(name), "duplicate tensor \(name)")
        names.insert(name)
        tensors.append(GGUFTensorInfo(name: name, ne: ne, type: type))
        return tensors.count - 1
    }

    /// Header, KV and tensor-info bytes, with offsets assigned.
    public func headerBytes() -> [UInt8] {
        var off = 0
        for i in tensors.indices {
            tensors[i].offset = off
            off += GGUF.pad(tensors[i].byteCount, alignment)
        }
        var b: [UInt8] = []
        b.reserveCapacity(1 << 16)
        b.append(contentsOf: GGUF.magic)
        appendLE(GGUF.version, &b)
        appendLE(UInt64(tensors.count), &b)
        appendLE(UInt64(metadata.count), &b)
        for (k, v) in metadata {
            GGUFValue.encodeString(k, into: &b)
            appendLE(v.type.rawValue, &b)
            v.encode(into: &b)
        }
        for t in tensors {
            GGUFValue.encodeString(t.name, into: &b)
            appendLE(UInt32(t.ne.count), &b)
            for d in t.ne { appendLE(UInt64(d), &b) }
            appendLE(t.type.rawValue, &b)
            appendLE(UInt64(t.offset), &b)
        }
        dataStart = GGUF.pad(b.count, alignment)
        totalSize = dataStart + off
        return b
    }

    /// Creates the temporary output, writes everything but tensor data, and sizes the file.
    public func begin(path: String) throws(FileError) {
        let header = headerBytes()
        let o = try OutputFile(path: path)
        try o.setSize(totalSize)
        try o.write(header, at: 0)
        out = o
    }

    /// Writes tensor `index`'s data, or part of it starting `byteOffset` bytes into the tensor.
    /// Safe to call from several threads for disjoint ranges.
    public func writeTensorData(_ index: Int, _ bytes: UnsafeRawBufferPointer, byteOffset: Int = 0) throws(FileError) {
        let t = tensors[index]
        precondition(byteOffset + bytes.count <= t.byteCount, "tensor \(t.name): write past its size")
        try out!.write(bytes, at: dataStart + t.offset + byteOffset)
    }

    public func commit() throws(FileError) {
        try out!.commit()
        out = nil
    }

    public func abort() {
        out?.abort()
        out = nil
    }
}
