import Foundation
import GGMLCore
import Inference
import Workers

/// Byte strings kept by key in a temporary file unlinked as soon as it is made
/// (`HessianSpill.unlinkedFile`): the page cache holds them, not the process, and nothing is left
/// behind whatever ends it. Without room for the file it keeps nothing. `HessianSpill`, the
/// factors and the measured tensors each keep theirs in one.
final class SpillStore<Key: Hashable>: @unchecked Sendable {
    private let fd: Int32?
    private var end = 0
    private var stored: [Key: (offset: Int, count: Int, value: Double)] = [:]
    private let lock = NSLock()
    private var found = 0

    /// How many reads found what they asked for.
    var hits: Int {
        lock.lock()
        defer { lock.unlock() }
        return found
    }

    /// `bytes`: about what will be stored (the file system must have twice that and 1 GiB more).
    init(_ prefix: String, room bytes: Int) { fd = HessianSpill.unlinkedFile(prefix, room: bytes) }

    deinit { if let fd { close(fd) } }

    /// Whether it has a file to keep anything in.
    var isOpen: Bool { fd != nil }

    /// How many keys hold bytes.
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return stored.count
    }

    /// Reads what was stored under `key` into `p` if it is `count` bytes; its `value`, or nil.
    func read(_ key: Key, count: Int, into p: UnsafeMutableRawPointer) -> Double? {
        lock.lock()
        defer { lock.unlock() }
        guard let fd, let e = stored[key], e.count == count,
              fullIO(p, count, e.offset, { pread(fd, $0, $1, off_t($2)) }) else { return nil }
        found += 1
        return e.value
    }

    /// Stores `bytes` (and a `value` beside them) under `key`, unless something is stored there;
    /// false when nothing could be stored (no file, or it took fewer bytes).
    @discardableResult
    func write(_ key: Key, _ bytes: UnsafeRawBufferPointer, value: Double = 0) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if stored[key] != nil { return true }
        guard let fd, let base = bytes.baseAddress,
              fullIO(UnsafeMutableRawPointer(mutating: base), bytes.count, end, { pwrite(fd, $0, $1, off_t($2)) }) else { return false }
        stored[key] = (end, bytes.count, value)
        end += bytes.count
        return true
    }
}

/// GPTQ factors kept between the walks that use the same second moments. The sensitivities, the
/// check and the mixes each walk the layers with the prediction chunks' Hessians, and each made
/// every input's factor again: an O(cols³) factorisation, a tenth of a first plan's CPU time.
/// Ũ is kept and comes back with the Hessian it was made from, recognised by its contents.
final class FactorStore: @unchecked Sendable {
    private let spill: SpillStore<Int>

    /// `bytes`: about what every factor will take (4·cols² per distinct input).
    init(bytes: Int) { spill = SpillStore("edgequant-factors", room: bytes) }

    /// The factor of `h` (default dampening), read back if this store made it before.
    func factor(_ h: Hessian) -> GPTQ.Factor? {
        let n = h.cols, key = h.fingerprint
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { buf.deallocate() }
        if let dampening = spill.read(key, count: n * n * 4, into: buf) { return GPTQ.Factor(rows: buf, dampening: dampening, of: h) }
        guard let f = try? GPTQ.Factor(h) else { return nil }
        spill.write(key, f.rowBytes, value: f.dampening)
        return f
    }
}

/// Weights as `Sensitivity.quantized` wrote them, by name, type, source rows, the second moments
/// GPTQ used and the importance: the check's mix and the mixes measured after it (the plan
/// planned again, a llama-quantize mix) share most of their tensors and types, and the writer
/// writes one of them with the same second moments; GPTQ made each again.
final class QuantizedStore: @unchecked Sendable {
    struct Key: Hashable {
        var name: String
        var type: GGMLType
        var hessian: Int?
        var importance: [UInt32]?
        /// `hash` of the f32 rows quantized.
        var source: Int
    }
    private let spill: SpillStore<Key>

    init(bytes: Int) { spill = SpillStore("edgequant-mixes", room: bytes) }

    /// Tensors read back so far.
    var hits: Int { spill.hits }

    /// The f32 rows' bits (`cols` floats each), hashed row by row.
    static func hash(_ rows: UnsafeBufferPointer<Float>, cols: Int) -> Int {
        var hasher = Hasher()
        hasher.combine(rows.count)
        hasher.combine(cols)
        guard cols > 0, let base = rows.baseAddress else { return hasher.finalize() }
        for r in 0..<(rows.count / cols) { hasher.combine(bytes: UnsafeRawBufferPointer(start: base + r * cols, count: cols * 4)) }
        return hasher.finalize()
    }

    /// `w` with its rows converted to f32, as the writer sees them, hashed as `hash(_:cols:)`
    /// hashes them (one row in memory at a time).
    static func hash(_ w: Weight) -> Int {
        var hasher = Hasher()
        hasher.combine(w.rows * w.cols)
        hasher.combine(w.cols)
        let row = UnsafeMutablePointer<Float>.allocate(capacity: w.cols)
        defer { row.deallocate() }
        for r in 0..<w.rows {
            w.row(r, into: UnsafeMutableBufferPointer(start: row, count: w.cols))
            hasher.combine(bytes: UnsafeRawBufferPointer(start: row, count: w.cols * 4))
        }
        return hasher.finalize()
    }

    func weight(_ key: Key, like w: Weight) -> (Weight, AnyObject)? {
        guard let rb = key.type.rowSize(w.cols) else { return nil }
        let store = OwnedBuffer(byteCount: rb * w.rows)
        guard spill.read(key, count: rb * w.rows, into: store.raw) != nil else { return nil }
        return (Weight(type: key.type, rows: w.rows, cols: w.cols, data: UnsafeRawPointer(store.raw), name: w.name), store)
    }

    /// The stored bytes under `key` into `dst` (exactly its size); false where none are stored.
    func read(_ key: Key, into dst: UnsafeMutableRawBufferPointer) -> Bool {
        guard let base = dst.baseAddress else { return false }
        return spill.read(key, count: dst.count, into: base) != nil
    }

    func keep(_ key: Key, _ q: Weight) {
        guard let rb = q.type.rowSize(q.cols) else { return }
        spill.write(key, UnsafeRawBufferPointer(start: q.data, count: rb * q.rows))
    }
}
