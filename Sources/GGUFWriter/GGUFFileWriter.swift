import GGMLCore
import MappedIO

/// Where everything goes in a GGUF v3 file, as gguf-py's GGUFWriter lays it out: header, KV pairs
/// in insertion order, tensor infos in insertion order, zero padding to the alignment, then each
/// tensor's data at its aligned offset. A pure function of the metadata and the tensor list, so a
/// plan's file size is known without a writer.
public struct GGUFLayout: Sendable {
    /// Header, KV and tensor-info bytes.
    public let headerBytes: [UInt8]
    /// Each tensor's offset from `dataStart`.
    public let tensorOffsets: [Int]
    public let dataStart: Int
    public let totalSize: Int

    public init(metadata: [(key: String, value: GGUFValue)], tensors: [GGUFTensorInfo], alignment: Int = GGUF.defaultAlignment) {
        var offsets: [Int] = []
        offsets.reserveCapacity(tensors.count)
        var off = 0
        for t in tensors {
            offsets.append(off)
            off += GGUF.pad(t.byteCount, alignment)
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
        for (t, o) in zip(tensors, offsets) {
            GGUFValue.encodeString(t.name, into: &b)
            appendLE(UInt32(t.ne.count), &b)
            for d in t.ne { appendLE(UInt64(d), &b) }
            appendLE(t.type.rawValue, &b)
            appendLE(UInt64(o), &b)
        }
        headerBytes = b
        tensorOffsets = offsets
        dataStart = GGUF.pad(b.count, alignment)
        totalSize = dataStart + off
    }
}

/// Writes a GGUF v3 file laid out by `GGUFLayout`. The layout is fixed before any data is
/// written, so tensors can be streamed in one at a time (even in parallel) with `pwrite`, and
/// memory never holds the model. The writer moves through explicit states: building (`add`,
/// `addTensor`; single-threaded) → open (`begin`: header written, file sized; `writeTensorData`
/// may then be called concurrently for disjoint ranges) → committed or aborted.
public final class GGUFFileWriter: @unchecked Sendable {
    enum State {
        case building
        case open(OutputFile, GGUFLayout)
        case closed
    }

    public private(set) var metadata: [(key: String, value: GGUFValue)] = []
    public private(set) var tensors: [GGUFTensorInfo] = []
    public let alignment: Int
    private var keys: Set<String> = []
    private var names: Set<String> = []
    private var state = State.building

    public init(alignment: Int = GGUF.defaultAlignment) {
        self.alignment = alignment
    }

    /// Sets a key. As in gguf-py (a dict), setting a key again replaces its value in place.
    public func add(_ key: String, _ value: GGUFValue) {
        guard case .building = state else { preconditionFailure("GGUFFileWriter.add after begin") }
        if keys.contains(key), let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
            return
        }
        keys.insert(key)
        metadata.append((key, value))
    }

    public func value(_ key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    /// Adds a tensor; returns its index. Its offset comes from the layout.
    @discardableResult
    public func addTensor(name: String, ne: [Int], type: GGMLType) -> Int {
        guard case .building = state else { preconditionFailure("GGUFFileWriter.addTensor after begin") }
        precondition(!names.contains(name), "duplicate tensor \(name)")
        names.insert(name)
        tensors.append(GGUFTensorInfo(name: name, ne: ne, type: type))
        return tensors.count - 1
    }

    /// The layout of what has been added so far.
    public var layout: GGUFLayout { GGUFLayout(metadata: metadata, tensors: tensors, alignment: alignment) }

    /// Creates the temporary output, writes everything but tensor data, and sizes the file.
    /// Returns the layout written.
    @discardableResult
    public func begin(path: String) throws -> GGUFLayout {
        guard case .building = state else { preconditionFailure("GGUFFileWriter.begin twice") }
        let l = layout
        for i in tensors.indices { tensors[i].offset = l.tensorOffsets[i] }
        let o = try OutputFile(path: path)
        do {
            try o.setSize(l.totalSize)
            try o.write(l.headerBytes, at: 0)
        } catch {
            o.abort()
            throw error
        }
        state = .open(o, l)
        return l
    }

    /// Writes tensor `index`'s data, or part of it starting `byteOffset` bytes into the tensor.
    /// Safe to call from several threads for disjoint ranges.
    public func writeTensorData(_ index: Int, _ bytes: UnsafeRawBufferPointer, byteOffset: Int = 0) throws {
        guard case .open(let o, let l) = state else { preconditionFailure("GGUFFileWriter.writeTensorData outside begin…commit") }
        let t = tensors[index]
        precondition(byteOffset + bytes.count <= t.byteCount, "tensor \(t.name): write past its size")
        try o.write(bytes, at: l.dataStart + l.tensorOffsets[index] + byteOffset)
    }

    public func commit() throws {
        guard case .open(let o, _) = state else { preconditionFailure("GGUFFileWriter.commit without begin") }
        state = .closed
        try o.commit()
    }

    public func abort() {
        if case .open(let o, _) = state { o.abort() }
        state = .closed
    }
}
