import MappedIO

/// One PyTorch `.bin` checkpoint (what torch.save writes since torch 1.6: a zip holding the pickled
/// state dict and one stored entry per storage), read without executing anything.
///
/// Tensors come in the state dict's insertion order, the order convert_hf_to_gguf iterates
/// `model_part.keys()` after `torch.load(..., weights_only=True)`, each as the byte range of its
/// elements inside its storage's entry, so they are read through the mmap like safetensors.
public final class TorchFile: Sendable {
    public let path: String
    public let file: MappedFile
    public let zip: TorchZip
    /// The archive's top folder: "archive", or the stem of the name torch.save was given.
    public let prefix: String
    public let tensors: [SafetensorsTensor]
    private let byName: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(TorchError) {
        self.file = file
        let path = file.path
        self.path = path
        let all = file.all
        // torch.load's own test (_is_zipfile): anything else goes down its legacy path.
        guard all.count >= 4, all[0] == 0x50, all[1] == 0x4b, all[2] == 0x03, all[3] == 0x04 else {
            if all.count >= 2, all[0] == 0x80, (2...5).contains(all[1]) { throw .legacyFormat(path: path) }
            throw .notZip(path: path)
        }
        let zip = try TorchZip(file: file)
        self.zip = zip
        // torch.load takes the folder from the first entry, whatever the file is called now.
        guard let first = zip.entries.first, let slash = first.name.firstIndex(of: "/") else {
            throw .badZip(path: path, detail: "entry \"\(displayName(zip.entries.first?.name ?? ""))\" is not inside the archive's folder")
        }
        let prefix = String(first.name[..<slash])
        self.prefix = prefix
        guard let pickle = zip["\(prefix)/data.pkl"] else {
            throw .badZip(path: path, detail: "no \(displayName(prefix))/data.pkl entry")
        }
        if let order = zip["\(prefix)/byteorder"] {
            let b = file.bytes(order.range)
            guard b.elementsEqual("little".utf8) else {
                throw .byteOrder(path: path, found: String(decoding: b.prefix(16), as: UTF8.self))
            }
        }

        var unpickler = Unpickler(bytes: file.bytes(pickle.range), path: path)
        let root = try unpickler.load()
        guard case .dict(let dict) = root else { throw .notAStateDict(path: path, found: root.typeName) }
        if let k = dict.duplicate { throw .duplicateTensor(path: path, name: k.text) }

        var storageEntries: [String: TorchZip.Entry] = [:]
        func entry(for s: TorchStorage) throws(TorchError) -> TorchZip.Entry {
            if let e = storageEntries[s.key] { return e }
            let name = "\(prefix)/data/\(s.key)"
            guard let e = zip[name] else { throw .badStorage(path: path, key: s.key, detail: "no zip entry \(displayName(name))") }
            let (bytes, o) = s.numel.multipliedReportingOverflow(by: s.elementSize)
            guard !o, e.range.count == bytes else {
                throw .badStorage(path: path, key: s.key, detail: "entry holds \(e.range.count) bytes, but its persistent id says \(s.numel) elements of \(s.typeName)")
            }
            storageEntries[s.key] = e
            return e
        }

        var tensors: [SafetensorsTensor] = []
        var byName: [String: Int] = [:]
        tensors.reserveCapacity(dict.count)
        for (key, value) in Swift.zip(dict.keys, dict.values) {
            guard case .string(let name) = key else {
                throw .badPickle(path: path, detail: "state dict key \(key.text) is an int, not a tensor name")
            }
            guard case .tensor(let t) = value else { throw .notATensor(path: path, key: name, found: value.typeName) }
            let tensor = try Self.locate(t, name: name, storage: try entry(for: t.storage), path: path)
            byName[name] = tensors.count
            tensors.append(tensor)
        }
        self.tensors = tensors
        self.byName = byName
    }

    /// The byte range `_rebuild_tensor_v2` would view: storage_offset elements into the storage,
    /// elementCount elements long, which only a contiguous tensor occupies as one run.
    static func locate(_ t: TorchTensorRecord, name: String, storage: TorchZip.Entry, path: String) throws(TorchError) -> SafetensorsTensor {
        func bad(_ m: String) -> TorchError { .badTensor(path: path, name: name, detail: m) }
        if let bit = t.lazyBit {
            throw bad("has the \(bit) bit set, so its stored bytes are not its values; save it after .resolve_\(bit)()")
        }
        guard t.size.count == t.stride.count else { throw bad("size \(t.size) and stride \(t.stride) differ in rank") }
        guard t.storageOffset >= 0 else { throw bad("negative storage_offset \(t.storageOffset)") }
        var count = 1
        for d in t.size {
            guard d >= 0 else { throw bad("negative dimension in size \(t.size)") }
            let (c, o) = count.multipliedReportingOverflow(by: d)
            guard !o else { throw bad("element count of size \(t.size) overflows") }
            count = c
        }
        let elementSize = t.dtype.bits / 8
        guard count > 0 else {
            // An empty tensor views no bytes, whatever its offset and strides.
            return SafetensorsTensor(name: name, dtype: t.dtype, shape: t.size, elementCount: 0,
                                     range: storage.range.lowerBound..<storage.range.lowerBound)
        }
        var expected = 1
        for i in t.size.indices.reversed() {
            // A dimension of size 1 is never stepped over, so torch leaves its stride arbitrary.
            if t.size[i] != 1 && t.stride[i] != expected {
                throw .nonContiguous(path: path, name: name, shape: t.size, stride: t.stride)
            }
            expected *= t.size[i]
        }
        let (end, o1) = t.storageOffset.addingReportingOverflow(count)
        let (endBytes, o2) = end.multipliedReportingOverflow(by: elementSize)
        guard !o1, !o2, endBytes <= storage.range.count else {
            throw bad("storage_offset \(t.storageOffset) + \(count) elements of \(t.dtype.rawValue) run past its storage (\(storage.range.count) bytes)")
        }
        let start = storage.range.lowerBound + t.storageOffset * elementSize
        return SafetensorsTensor(name: name, dtype: t.dtype, shape: t.size, elementCount: count,
                                 range: start..<(storage.range.lowerBound + endBytes))
    }

    public subscript(name: String) -> SafetensorsTensor? { byName[name].map { tensors[$0] } }

    public func data(_ t: SafetensorsTensor) -> UnsafeRawBufferPointer { file.bytes(t.range) }
}
