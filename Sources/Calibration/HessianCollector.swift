import CKernels
import Dispatch
import Foundation
import GGUFWriter
import Inference
import MappedIO
import Workers

/// H = Σ_tokens x xᵀ for one matmul input (cols × cols), and how many tokens were summed: the
/// second moments GPTQ needs. diag(H)/tokens is llama-imatrix's importance for the same tokens.
///
/// Each product's XᵀX is computed from x rounded to bf16 — the values a bf16 weight's product
/// multiplies (ggml's vec_dot type for bf16) — with exact products summed in f32 (`ek_gemm_bf16`,
/// twice an f32 product's speed where the CPU has AVX512-BF16): each x is off by at most 2⁻⁹ of
/// itself, ties to even, so an entry of H moves by far less than it varies between calibration
/// texts, and far less than the dampening GPTQ adds before factorising (1% of the mean diagonal).
/// The products' XᵀX are added into f32 sums (32 chunks add 32). Sums in double would double the
/// memory, which all layers' Hessians dominate:
/// 4·cols² bytes per distinct input; for SmolLM2-135M (n_embd 576, n_ff 1536) the four inputs of
/// a layer (attention norm → q/k/v, attention → output, ffn norm → gate/up, SwiGLU → down) take
/// 3·576²·4 + 1536²·4 = 13.4 MB, 402 MB for its 30 layers. The factorisation reads them as double.
public final class Hessian: @unchecked Sendable {
    public let cols: Int
    public private(set) var tokens: Int = 0
    /// Upper triangle (row ≤ column) while accumulating; both halves once `values` is read.
    private let sums: UnsafeMutablePointer<Float>
    private var mirrored = true
    /// Σx² per column with every token counted once (the sums may weigh some rows more), summed
    /// as llama-imatrix (and `ImatrixRecorder`) sums it: f32, one row after another — so the
    /// importance matrix can be read off the same pass (`HessianStream.collectAll`).
    public private(set) var squares: [Float]

    public init(cols: Int) {
        precondition(cols > 0)
        self.cols = cols
        sums = .allocate(capacity: cols * cols)
        sums.initialize(repeating: 0, count: cols * cols)
        squares = [Float](repeating: 0, count: cols)
    }

    deinit { sums.deallocate() }

    /// The sums' bytes, as `HessianSpill` keeps them.
    fileprivate var sumBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: sums, count: cols * cols * 4) }

    /// A Hessian whose sums `read(into)` fills (false: it could not, and there is none).
    fileprivate init?(cols: Int, tokens: Int, squares: [Float], mirrored: Bool, reading read: (UnsafeMutableRawPointer) -> Bool) {
        self.cols = cols
        self.tokens = tokens
        self.squares = squares
        self.mirrored = mirrored
        sums = .allocate(capacity: cols * cols)
        guard read(UnsafeMutableRawPointer(sums)) else {
            sums.deallocate()
            return nil
        }
    }

    fileprivate var state: (tokens: Int, squares: [Float], mirrored: Bool) { (tokens, squares, mirrored) }

    /// Σ x xᵀ, cols × cols, row-major, symmetric, as a double copy (for the factorisation; the
    /// caller's for as long as it needs it). Not to be read while `add` runs.
    public var values: [Double] {
        if !mirrored {
            let n = cols
            for i in 0..<n { for j in 0..<i { sums[i * n + j] = sums[j * n + i] } }
            mirrored = true
        }
        return (0..<(cols * cols)).map { Double(sums[$0]) }
    }

    /// A hash of the sums (the upper triangle, the same mirrored or not) and the token count:
    /// what tells a Hessian read back from a spill apart from another input's. Kept once made;
    /// like `values`, read from one thread at a time and not while `add` runs.
    var fingerprint: Int {
        if let f = cachedFingerprint { return f }
        var hasher = Hasher()
        hasher.combine(cols)
        hasher.combine(tokens)
        for i in 0..<cols {
            UnsafeRawBufferPointer(start: sums + i * cols + i, count: (cols - i) * 4).withMemoryRebound(to: UInt8.self) {
                hasher.combine(bytes: UnsafeRawBufferPointer($0))
            }
        }
        let f = hasher.finalize()
        cachedFingerprint = f
        return f
    }
    private var cachedFingerprint: Int?

    /// Σx²/tokens per column, every token counted once: llama-imatrix's importance for the same
    /// tokens (0 before any token).
    public var importance: [Float] {
        let t = Float(max(tokens, 1))
        return squares.map { $0 / t }
    }

    /// Adds xᵀx for `rows` rows of `cols` floats at `x` (row-major, `ld` floats apart), the first
    /// row weighted by `firstRowWeight` (see `HessianCollector.sinkWeight`).
    public func add(_ x: UnsafePointer<Float>, rows: Int, ld: Int? = nil, firstRowWeight: Double = 1, threads: Int = 2) {
        guard rows > 0 else { return }
        let n = cols, ld = ld ?? cols
        // The GEMM's "weights" are the columns of x (token-contiguous rows), and so are its
        // "tokens": G[j][i] = Σ_t x[t][i]·x[t][j], in bf16 (see the type's comment).
        let xt = UnsafeMutablePointer<UInt16>.allocate(capacity: n * rows)
        let g = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { xt.deallocate(); g.deallocate() }
        ek_transpose_bf16(x, ld, Int64(rows), Int64(n), Float(firstRowWeight.squareRoot()), xt)
        squares.withUnsafeMutableBufferPointer { ek_add_squares(x, ld, Int64(rows), Int64(n), $0.baseAddress!) }
        // Column blocks [i0, i1) need rows j < i1 only (the upper triangle of G, j ≤ i); block b
        // costs ∝ i1, so the last blocks go first.
        let blockCols = 64
        let blocks = (n + blockCols - 1) / blockCols
        let counter = ChunkCounter(blocks)
        let xp = SendablePointer(xt), gp = SendablePointer(g), sp = SendablePointer(sums)
        DispatchQueue.concurrentPerform(iterations: max(1, min(threads, blocks))) { _ in
            while let k = counter.next() {
                let b = blocks - 1 - k
                let i0 = b * blockCols, i1 = min(n, i0 + blockCols)
                ek_gemm_bf16(xp.p, rows * 2, Int64(i0), Int64(i1), xp.p, rows, Int64(i1), Int64(rows), gp.p, n)
                ek_add_upper_block(gp.p, sp.p, Int64(n), Int64(i0), Int64(i1))
            }
        }
        tokens += rows
        mirrored = false
        cachedFingerprint = nil
    }
}

/// A `MatMulEngine` that passes every product to `inner` and first adds the input's XᵀX to the
/// Hessian of the weight (by GGUF name; by default the `blk.*` weights, as llama-imatrix).
///
/// Weights multiplying the same activations share one `Hessian`, computed once per product: a
/// product whose input is byte for byte the previous product's input (q, k and v read the
/// attention norm's output; gate and up the FFN norm's) is mapped to the previous weight's Hessian
/// on first sight and skipped afterwards. This needs no knowledge of the architecture: the forward
/// pass runs those products back to back. The forward pass calls `multiply` from one thread at a
/// time; the XᵀX product itself uses `threads`.
public final class HessianCollector: MatMulEngine, @unchecked Sendable {
    public let inner: any MatMulEngine
    public let threads: Int
    /// How much the first row of each product (the chunk's first position) counts in H.
    ///
    /// The first position becomes the attention sink: most heads put most of their weight on
    /// its key, and its value is added into every later position. An error in its K or V (or in
    /// the layers that make its residual stream) is therefore paid at every position, while in
    /// Σ x xᵀ it is one token of the chunk. Its input also points in a direction of its own, so
    /// GPTQ, left alone, moves rounding error there: on SmolLM2 q4_0 with weight 1 cut the
    /// layers' errors by 60% yet made the first position's k/v errors 6× larger, and the model's
    /// mean KL divergence (wiki-eval, 8 chunks of 512) was 4% worse than importance-weighted
    /// rounding's. With weight 16, 64, 128, 512, 4096 it was 41.6, 42.4, 41.3, 34.4 and 2.9%
    /// better: hence `defaultSinkWeight`. The imatrix (`Hessian.importance`) is not weighted.
    public let sinkWeight: Double
    public static let defaultSinkWeight = 64.0
    let collects: @Sendable (String) -> Bool
    /// Weight name → its input's Hessian (the same object for weights sharing an input).
    public private(set) var hessians: [String: Hessian] = [:]
    /// The first weight a Hessian was created for: a weight mapped to another's Hessian must keep
    /// seeing that weight's input, or the counts would mix.
    private var owner: [ObjectIdentifier: String] = [:]
    /// Each Hessian's first weight, in the order the products first met them.
    public private(set) var inputOrder: [String] = []
    private var last: (hessian: Hessian, rows: Int, cols: Int)?
    private var lastInput: UnsafeMutablePointer<Float>?
    private var lastCapacity = 0

    /// The first row of each product must be the chunk's first position (as in
    /// `Forward.logits` without a cache, whose products cover every position from 0).
    public init(inner: any MatMulEngine, threads: Int = 2, sinkWeight: Double = HessianCollector.defaultSinkWeight,
                collects: @escaping @Sendable (String) -> Bool = { TensorName.isBlock($0) }) {
        self.inner = inner
        self.threads = max(1, threads)
        self.sinkWeight = sinkWeight
        self.collects = collects
    }

    deinit { lastInput?.deallocate() }

    public func multiply(_ w: Weight, _ x: Matrix, into out: Matrix) {
        if collects(w.name) { record(w.name, x) }
        inner.multiply(w, x, into: out)
    }

    /// Weight names grouped by the input they share, each group in first-seen order, groups
    /// ordered by their first weight's name.
    public var sharedInputs: [[String]] {
        var groups: [ObjectIdentifier: [String]] = [:]
        for (name, h) in hessians { groups[ObjectIdentifier(h), default: []].append(name) }
        return groups.map { id, names in
            let first = owner[id]!
            return [first] + names.filter { $0 != first }.sorted()
        }.sorted { $0[0] < $1[0] }
    }

    private func record(_ name: String, _ x: Matrix) {
        let count = x.rows * x.cols
        if let l = last, l.rows == x.rows, l.cols == x.cols, let prev = lastInput,
           memcmp(prev, x.data, count * 4) == 0 {
            if let h = hessians[name] {
                if h === l.hessian { return }
            } else {
                hessians[name] = l.hessian
                return
            }
        }
        let h: Hessian
        if let existing = hessians[name] {
            precondition(owner[ObjectIdentifier(existing)] == name,
                         "\(name) shared its input with \(owner[ObjectIdentifier(existing)]!) before, but not now")
            precondition(existing.cols == x.cols, "\(name): input of \(x.cols) columns, earlier \(existing.cols)")
            h = existing
        } else {
            h = Hessian(cols: x.cols)
            hessians[name] = h
            owner[ObjectIdentifier(h)] = name
            inputOrder.append(name)
        }
        h.add(x.data, rows: x.rows, firstRowWeight: sinkWeight, threads: threads)
        if lastCapacity < count {
            lastInput?.deallocate()
            lastInput = .allocate(capacity: count)
            lastCapacity = count
        }
        lastInput!.update(from: x.data, count: count)
        last = (h, x.rows, x.cols)
    }

    /// The bytes the second moments of `model` take (4·cols² per distinct input: the attention
    /// norm's output shared by q/k/v, the attention's output, the ffn norm's output shared by
    /// gate/up, and SwiGLU's output), nil when the figure overflows.
    public static func bytesNeeded(_ layout: ModelDims, output: Bool = false) -> Int? {
        let q = layout.nHead * layout.headDim
        return checkedSum(checkedProduct(4, layout.nLayer, 2 * layout.nEmbd * layout.nEmbd + q * q + layout.nFF * layout.nFF),
                          output ? checkedProduct(4, layout.nEmbd, layout.nEmbd) : 0)
    }

    /// Refuses GPTQ on a model whose second moments would not fit in this machine's memory, with
    /// the figure (they grow with the square of the widths, which a hostile file can set).
    public static func checkMemory(_ model: Model, output: Bool = false) throws {
        try Model.checkFits(bytesNeeded(model.hparams, output: output), path: model.path, what: "GPTQ's second moments",
                            why: "(4 bytes × width² per input of each layer); use --gptq-chunks 0")
    }

    /// Runs `model` over `chunks` (token chunks as `perplexity` makes them: BOS already in place)
    /// and collects the Hessians of its `blk.*` weights (and `output.weight` with `output`).
    /// `progress` gets the chunks done and the seconds spent.
    public static func collect(model: Model, chunks: [[Int32]], threads: Int = 2, sinkWeight: Double = HessianCollector.defaultSinkWeight,
                               output: Bool = false, progress: ((Int, Double) -> Void)? = nil) -> HessianCollector {
        let collector = HessianCollector(inner: GGMLEngine(threads: threads), threads: threads, sinkWeight: sinkWeight,
                                         collects: { TensorName.isBlock($0) || (output && $0 == TensorName.output) })
        let forward = Forward(model: model, engine: collector, threads: threads)
        let start = Date()
        for (i, chunk) in chunks.enumerated() where !chunk.isEmpty {
            // Only the output layer's input needs every position, and only when it is collected.
            let logits = forward.logits(chunk, outputsFrom: output ? 0 : chunk.count - 1)
            logits.free()
            progress?(i + 1, Date().timeIntervalSince(start))
        }
        return collector
    }
}

/// `count` bytes at `p` moved by `io(pointer, count, offset)` (pread/pwrite) until done; false on
/// an error or end of file.
func fullIO(_ p: UnsafeMutableRawPointer, _ count: Int, _ offset: Int, _ io: (UnsafeMutableRawPointer, Int, Int) -> Int) -> Bool {
    var done = 0
    while done < count {
        let n = io(p + done, count - done, offset + done)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return false }
        done += n
    }
    return true
}

/// Layers' Hessians kept in a temporary file, removed from the directory as soon as it is created
/// (so nothing is left behind, whatever ends the process), read back a layer at a time: the
/// planner's check and mix measurements walk the layers again with the same second moments, which
/// would otherwise be collected again by running the chunks through every layer. The page cache,
/// not the process, holds them: peak memory stays one layer's.
final class HessianSpill {
    private let file: SpillStore<Int>
    /// Per layer: each distinct Hessian's weight names, its state and its key in `file`.
    private var layers: [Int: [(names: [String], cols: Int, tokens: Int, squares: [Float], mirrored: Bool, id: Int)]] = [:]

    /// In `$TMPDIR`, else /var/tmp (kept on disk by convention, where /tmp is often memory); nil
    /// where no file can be made there or it lacks room for `bytes` with room to spare (twice as
    /// much and 1 GiB more: the GGUF being written must not run out of disk because of it). The
    /// stream then collects again, as without one.
    init?(bytes: Int) {
        file = SpillStore("edgequant-hessians", room: bytes)
        guard file.isOpen else { return nil }
    }

    static var directory: String {
        let env = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 }
        return env ?? (FileManager.default.isWritableFile(atPath: "/var/tmp") ? "/var/tmp" : FileManager.default.temporaryDirectory.path)
    }

    /// A new file in `directory`, already unlinked, open for reading and writing; nil where none
    /// can be made or the file system lacks twice `room` bytes and 1 GiB more.
    static func unlinkedFile(_ prefix: String, room bytes: Int) -> Int32? {
        let dir = directory
        var fs = statvfs()
        guard statvfs(dir, &fs) == 0 else { return nil }
        let available = Double(fs.f_bavail) * Double(fs.f_frsize)
        guard available >= 2 * Double(bytes) + Double(1 << 30) else { return nil }
        var template = Array((dir + "/" + prefix + "-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return fd
    }

    func has(_ layer: Int) -> Bool { layers[layer] != nil }

    /// Stores `hessians` (weight name → Hessian, shared where inputs are) as layer `layer`'s; false
    /// (and nothing stored for the layer) if the file cannot take them.
    func store(_ layer: Int, _ hessians: [String: Hessian]) -> Bool {
        var groups: [ObjectIdentifier: (Hessian, [String])] = [:]
        for (name, h) in hessians { groups[ObjectIdentifier(h), default: (h, [])].1.append(name) }
        var entries: [(names: [String], cols: Int, tokens: Int, squares: [Float], mirrored: Bool, id: Int)] = []
        for (h, names) in groups.values.sorted(by: { $0.1.min()! < $1.1.min()! }) {
            let id = file.count
            guard file.write(id, h.sumBytes) else { return false }
            let s = h.state
            entries.append((names, h.cols, s.tokens, s.squares, s.mirrored, id))
        }
        layers[layer] = entries
        return true
    }

    /// Layer `layer`'s Hessians as stored (one object per shared input), nil if not stored or unreadable.
    func load(_ layer: Int) -> [String: Hessian]? {
        guard let entries = layers[layer] else { return nil }
        var out: [String: Hessian] = [:]
        for e in entries {
            guard let h = Hessian(cols: e.cols, tokens: e.tokens, squares: e.squares, mirrored: e.mirrored,
                                  reading: { self.file.read(e.id, count: e.cols * e.cols * 4, into: $0) != nil }) else {
                return nil
            }
            for n in e.names { out[n] = h }
        }
        return out
    }
}

/// The second moments of one layer's inputs at a time, for consumers that visit the weights in
/// layer order (the planner's GPTQ predictions, the writer's GPTQ): the calibration chunks' residual
/// stream is kept at the current layer, and asking for a weight of a later layer runs the layers
/// in between, collecting the asked layer's products as `HessianCollector` does (same chunks, same
/// sums, so the same GPTQ bytes as collecting every layer in one pass). Memory is the chunks'
/// residual stream plus one layer's Hessians — for SmolLM2 19 MB + 13 MB instead of 402 MB for all
/// 30 layers; for a 7B Llama (4096 wide, 11008 FFN) 134 MB + 686 MB, whatever its depth.
/// Asking for an earlier layer starts over from the embedding (a second file written from the
/// same calibration), unless the stream was made `spilling`: then it reads that layer back.
public final class HessianStream: @unchecked Sendable {
    public let model: Model
    public let chunks: [[Int32]]
    public let threads: Int
    public let sinkWeight: Double
    private let lock = NSLock()
    private var residual: [Matrix] = []
    /// The layer `residual` enters next.
    private var next = 0
    private var current: [String: Hessian] = [:]
    private var currentLayer = -1
    /// Seconds spent running layers and collecting (for the caller's report).
    public private(set) var seconds = 0.0
    /// Layers run over the chunks (with or without collecting) since the start.
    private(set) var layersRun = 0
    /// Layers collected so far, for walks that come back (`spilling`).
    private let spill: HessianSpill?

    /// `spilling`: keep every collected layer in a temporary file, so that asking for an earlier
    /// layer reads it back instead of running the chunks from the embedding again (for a stream
    /// walked several times, as the planner's predictions, check and mixes walk theirs).
    public init(model: Model, chunks: [[Int32]], threads: Int = 2, sinkWeight: Double = HessianCollector.defaultSinkWeight,
                spilling: Bool = false) {
        self.model = model
        self.chunks = chunks.filter { !$0.isEmpty }
        self.threads = max(1, threads)
        self.sinkWeight = sinkWeight
        let layers = max(1, model.hparams.nLayer)
        let bytes = Self.bytesPerLayer(model.hparams).flatMap { b -> Int? in
            let (p, overflow) = b.multipliedReportingOverflow(by: layers)
            return overflow ? nil : p
        }
        spill = spilling ? HessianSpill(bytes: bytes ?? .max) : nil
    }

    deinit { for m in residual { m.free() } }

    /// Refuses GPTQ where one layer's second moments and the chunks' residual stream would not fit
    /// in this machine's memory (the widths, which a hostile file can set, enter squared).
    public static func checkMemory(_ model: Model, chunks: Int, ctx: Int) throws {
        let d = model.hparams
        try Model.checkFits(checkedSum(bytesPerLayer(d), checkedProduct(4, chunks, ctx * d.nEmbd)), path: model.path,
                            what: "GPTQ's second moments", why: "(4 bytes × width² per input of a layer); use --gptq-chunks 0")
    }

    /// Bytes one layer's Hessians take (4·cols² per distinct input), nil on overflow.
    public static func bytesPerLayer(_ layout: ModelDims) -> Int? {
        let q = layout.nHead * layout.headDim
        return checkedProduct(4, 1, 2 * layout.nEmbd * layout.nEmbd + q * q + layout.nFF * layout.nFF)
    }

    /// Walks every layer once, collecting each layer's second moments over all chunks into this
    /// stream's file and, for `prefix`, a stream of this one's first chunks, those of its chunks
    /// into its file (the sums after that many chunks are what it would collect); returns Σx² and
    /// the token count per weight, llama-imatrix's sums (`Hessian.squares`). Both streams then read
    /// their layers back instead of running the chunks again (or run them again if their file
    /// could not take them). `nonFinite(tensor, chunk)` is thrown for the first input of a layer
    /// that stops being finite.
    public func collectAll(prefix: HessianStream? = nil, progress: (Int, Int) -> Void = { _, _ in },
                           nonFinite: (String, Int) -> any Error) throws -> [String: (sums: [Float], tokens: Int)] {
        lock.lock()
        defer { lock.unlock() }
        if let prefix { precondition(prefix !== self && prefix.chunks.count <= chunks.count && zip(prefix.chunks, chunks).allSatisfy { $0 == $1 }) }
        let start = Date()
        defer { seconds += Date().timeIntervalSince(start) }
        for m in residual { m.free() }
        let plain = Forward(model: model, engine: GGMLEngine(threads: threads), threads: threads)
        residual = chunks.map { plain.embedded($0) }
        var sums: [String: (sums: [Float], tokens: Int)] = [:]
        let nLayer = model.hparams.nLayer
        for l in 0..<nLayer {
            let collector = HessianCollector(inner: GGMLEngine(threads: threads), threads: threads, sinkWeight: sinkWeight)
            let fw = Forward(model: model, engine: collector, threads: threads)
            for (c, x) in residual.enumerated() {
                fw.applyLayer(l, to: x)
                for name in collector.inputOrder where !collector.hessians[name]!.squares.allSatisfy(\.isFinite) {
                    for m in residual { m.free() }
                    residual = []
                    next = 0
                    throw nonFinite(name, c)
                }
                if let prefix, c + 1 == prefix.chunks.count, let spill = prefix.spill { _ = spill.store(l, collector.hessians) }
            }
            if let spill { _ = spill.store(l, collector.hessians) }
            for (name, h) in collector.hessians { sums[name] = (h.squares, h.tokens) }
            layersRun += 1
            progress(l + 1, nLayer)
        }
        // every layer is now in the files (or will be collected again where a file failed)
        walkedAll()
        if let prefix {
            prefix.lock.lock()
            prefix.walkedAll()
            prefix.lock.unlock()
        }
        return sums
    }

    /// After a walk over every layer: no residual stream kept, and any layer asked for comes from
    /// the file (or a new walk from the embedding). The caller holds `lock`.
    private func walkedAll() {
        for m in residual { m.free() }
        residual = []
        next = model.hparams.nLayer
        current = [:]
        currentLayer = -1
    }

    /// The Hessian of the input of block weight `name`, nil for a weight outside the blocks or one
    /// no product of the layer multiplied.
    public func hessian(for name: String) -> Hessian? {
        guard let l = TensorName.blockParts(name)?.layer, l >= 0, l < model.hparams.nLayer else { return nil }
        lock.lock()
        defer { lock.unlock() }
        if l != currentLayer { advance(to: l) }
        return current[name]
    }

    private func advance(to l: Int) {
        let start = Date()
        defer { seconds += Date().timeIntervalSince(start) }
        if l < next, let stored = spill?.load(l) {
            current = stored
            currentLayer = l
            return
        }
        if l < next {
            for m in residual { m.free() }
            residual = []
            next = 0
        }
        let plain = Forward(model: model, engine: GGMLEngine(threads: threads), threads: threads)
        if residual.isEmpty { residual = chunks.map { plain.embedded($0) } }
        current = [:]
        while next <= l {
            if next == l {
                let collector = HessianCollector(inner: GGMLEngine(threads: threads), threads: threads, sinkWeight: sinkWeight)
                let fw = Forward(model: model, engine: collector, threads: threads)
                for x in residual { fw.applyLayer(next, to: x) }
                current = collector.hessians
                if let spill, !spill.has(next) { _ = spill.store(next, current) }
            } else {
                for x in residual { plain.applyLayer(next, to: x) }
            }
            layersRun += 1
            next += 1
        }
        currentLayer = l
    }
}
