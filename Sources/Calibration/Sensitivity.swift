import CKernels
import Conversion
import Dispatch
import Foundation
import GGMLCore
import GGUFWriter
import Inference
import Quantizers
import Workers

/// How much each weight matrix matters, measured on calibration text: the basis of
/// `--target-size`.
///
/// For tensor t and candidate type T, the predicted loss is `gain_t · E(t, T)`, where
/// - `E(t, T) = Σ_rows Σ_j imp_j · (w_rj − q_rj)²` is the tensor's quantization error weighted by
///   the mean squared input activation of column j (the imatrix): the energy the error adds to
///   the matmul's output over the calibration tokens, with the rows quantized the way they will
///   be written (importance-weighted);
/// - where the file will be written with GPTQ (`--calibrate`'s second moments of t's input
///   exist and GPTQ can write T), E is scaled by GPTQ's output error over rounding's,
///   tr(ΔW H ΔWᵀ) of both, measured on a few sample rows: GPTQ gains more at fewer bits, and the
///   planner should know what the bytes will really buy;
/// - `gain_t` is measured: tensor t is quantized to a probe type, the model is run on the
///   calibration chunks, and the mean KL divergence of its next-token distributions from the
///   unquantized model's — t's part of it, where t's whole layer was quantized (`Probes.layer`) —
///   is divided by `E(t, probe)`. Layers before t's are not re-run (their residual stream is
///   cached).
public final class Sensitivity: @unchecked Sendable {
    public struct TensorInfo: Sendable {
        public let name: String
        public let rows: Int
        public let cols: Int
        /// Measured mean KLD with this tensor alone quantized to `probe`.
        public var probeKLD = 0.0
        public var probe: GGMLType = .q4_0
        /// Predicted-loss options per candidate type (bytes are the tensor's data bytes, padded to
        /// the GGUF alignment).
        public var options: [TypePlanner.Option] = []

        public init(name: String, rows: Int, cols: Int) {
            self.name = name
            self.rows = rows
            self.cols = cols
        }
    }

    public let reference: Model
    /// The weights the candidates' errors are measured against (the original ones).
    public let weights: [String: Weight]
    public let chunks: [[Int32]]
    public let threads: Int
    let forward: Forward
    /// Per chunk: residual stream entering each layer, and the reference log-probabilities of the
    /// scored positions (second half of the chunk, as perplexity scores).
    var states: [[Matrix]] = []
    /// Per chunk: the reference's next-token probabilities of the scored positions, and per row
    /// Σ p·log p, so that KL(p ‖ q) = Σ p·log p − Σ p·log q is one dot product per row.
    var refProbs: [Matrix] = []
    var refNegEntropy: [[Double]] = []
    let first: Int
    /// The second moments the file's GPTQ writes with, by weight name (a `HessianStream`, asked in
    /// layer order): with them a measured mix is quantized as the file will be, not rounded.
    public var hessians: ((String) -> Hessian?)?
    /// Factors of those second moments, made once for the analysis, the check and the mixes.
    let factors: FactorStore
    /// Mixes' tensors as `quantized` wrote them, for the mixes measured after the check.
    let mixTensors: QuantizedStore
    /// `QuantizedStore.hash` of each weight, made once: the weights do not change, and each
    /// phase would otherwise convert and hash all of them again.
    private var sourceHashes: [String: Int] = [:]
    /// `layerOutput`'s last layer and its outputs per chunk.
    private var baseOutputs: (Int, [Matrix])?

    func sourceHash(_ name: String, _ w: Weight) -> Int {
        if let h = sourceHashes[name] { return h }
        let h = QuantizedStore.hash(w)
        sourceHashes[name] = h
        return h
    }

    /// `reference` should hold f32 weights (what the errors are measured against); `chunks` are
    /// token chunks of equal length as `perplexity` makes them (BOS already applied). Positions
    /// from `scoredFrom` on are scored (at most half the chunk): perplexity scores the second
    /// half only so that every prediction has context, but a perturbation's effect is measured
    /// just as well with less, and every position scored costs only the output layer.
    /// `weights`: the original weight matrices, when `reference` holds an approximation of them
    /// to run faster (`Calibrate.q8Reference`); by default `reference`'s own.
    public init(reference: Model, weights: [String: Weight]? = nil, chunks: [[Int32]], threads: Int, scoredFrom: Int = 64) {
        self.reference = reference
        self.weights = weights ?? reference.weightMatrices
        self.chunks = chunks
        self.threads = max(1, threads)
        forward = Forward(model: reference, engine: GGMLEngine(threads: threads), threads: threads)
        let (bytes, overflow) = (HessianStream.bytesPerLayer(reference.hparams) ?? .max).multipliedReportingOverflow(by: max(1, reference.hparams.nLayer))
        factors = FactorStore(bytes: overflow ? .max : bytes)
        // about two mixes at 8 bits per weight (the weights are mapped, so their counts fit)
        mixTensors = QuantizedStore(bytes: 2 * self.weights.values.reduce(0) { $0 + $1.rows * $1.cols })
        first = min(scoredFrom, (chunks.first?.count ?? 2) / 2)
        for c in chunks {
            states.append(forward.hiddenStates(c))
            let l = forward.logits(fromLayer: reference.hparams.nLayer, hidden: states.last!.last!, outputsFrom: first)
            Self.logSoftmaxRows(l, threads: self.threads)
            // Σ p·log p summed exactly as klSum sums Σ p·log q, from the same stored p: for
            // logits equal to the reference's the two are then bit-identical and the divergence
            // is 0 on any CPU, not a residue of libm's and the f32 sums' rounding.
            var h = [Double](repeating: 0, count: l.rows)
            var lp = [Float](repeating: 0, count: l.cols)
            for r in 0..<l.rows {
                let p = l.row(r)
                for i in 0..<l.cols {
                    lp[i] = p[i]
                    p[i] = Float(exp(Double(p[i])))
                }
                h[r] = lp.withUnsafeBufferPointer { Self.crossSum(UnsafePointer(p), $0.baseAddress!, l.cols) }
            }
            refProbs.append(l)
            refNegEntropy.append(h)
        }
    }

    deinit {
        for s in states { for m in s { m.free() } }
        for m in refProbs { m.free() }
        baseOutputs.map { for m in $0.1 { m.free() } }
    }

    /// Rows of `m` replaced by their log-softmax (`ek_log_softmax_rows`: ggml's exp, sums in double).
    static func logSoftmaxRows(_ m: Matrix, threads: Int) {
        let workers = max(1, min(threads, m.rows))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let r0 = m.rows * w / workers, r1 = m.rows * (w + 1) / workers
            if r1 > r0 { ek_log_softmax_rows(m.row(r0), m.cols, Int64(r1 - r0), Int64(m.cols)) }
        }
    }

    /// The layer a tensor's change first affects (nil: the embedding, which needs a full run).
    func firstLayer(_ name: String) -> Int? {
        if let l = TensorName.blockParts(name)?.layer { return l }
        if name == TensorName.output { return reference.hparams.nLayer }
        return nil
    }

    /// Mean KL divergence from the reference of `variant` (the reference with tensor `name` changed).
    public func meanKLD(of variant: Model, changed name: String) -> Double {
        if let layer = firstLayer(name) { return meanKLD(of: variant, from: layer, states: states) }
        return meanKLD(of: variant) { fw, c in fw.logits(chunks[c], outputsFrom: first) }
    }

    /// Mean KL divergence from the reference of `variant`, whose logits for chunk c `logits` gives.
    private func meanKLD(of variant: Model, logits: (Forward, Int) -> Matrix) -> Double {
        measuredKLD(of: variant, logits: logits).mean
    }

    /// A divergence measured on the sensitivity chunks: the mean, and each scored position's
    /// (chunk after chunk), from which the mean's uncertainty follows.
    public struct Measured: Sendable {
        public var mean = 0.0
        public var rows: [Double] = []
    }

    private func measuredKLD(of variant: Model, logits: (Forward, Int) -> Matrix) -> Measured {
        let fw = Forward(model: variant, engine: GGMLEngine(threads: threads), threads: threads)
        var total = 0.0
        var rows: [Double] = []
        for c in chunks.indices {
            let l = logits(fw, c)
            defer { l.free() }
            total += klSum(l, c, rows: &rows).0
        }
        return Measured(mean: rows.isEmpty ? 0 : total / Double(rows.count), rows: rows)
    }

    /// Whether `b` measured lower than `a` (per position, the same positions) by more than the
    /// measurement can tell: the mean of the paired differences above twice its standard error.
    /// A mix that wins by less on one chunk is as likely to lose on other text.
    public static func measurablyLower(_ b: [Double], than a: [Double]) -> Bool {
        guard a.count == b.count, a.count > 1 else { return false }
        let n = Double(a.count)
        let d = zip(a, b).map { $0 - $1 }
        let mean = d.reduce(0, +) / n
        let variance = d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        return mean > 2 * (variance / n).squareRoot()
    }

    /// Σ over the scored rows of KL(reference ‖ logits) (`l` becomes its log-softmax), each row's
    /// divergence appended to `out`, and how many rows: the last position has no next token in
    /// the chunk, so perplexity does not score it.
    func klSum(_ l: Matrix, _ chunk: Int, rows out: inout [Double]) -> (Double, Int) {
        let ref = refProbs[chunk]
        let h = refNegEntropy[chunk]
        Self.logSoftmaxRows(l, threads: threads)
        let rows = l.rows - 1
        guard rows > 0 else { return (0, 0) }
        let parts = SendablePointer(UnsafeMutablePointer<Double>.allocate(capacity: rows))
        defer { parts.p.deallocate() }
        let n = l.cols
        let workers = max(1, min(threads, rows))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for r in (rows * w / workers)..<(rows * (w + 1) / workers) {
                parts.p[r] = h[r] - Self.crossSum(UnsafePointer(ref.row(r)), UnsafePointer(l.row(r)), n)
            }
        }
        var total = 0.0
        for r in 0..<rows {
            total += parts.p[r]
            out.append(parts.p[r])
        }
        return (total, rows)
    }

    /// Σ p[i]·q[i] in f32 partial sums over 64 entries, added in double: the rows are 10⁴–10⁵ long.
    @inline(__always)
    static func crossSum(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) -> Double {
        var cross = 0.0
        var i = 0
        while i < n {
            let end = min(n, i + 64)
            var s: Float = 0
            for j in i..<end { s += p[j] * q[j] }
            cross += Double(s)
            i = end
        }
        return cross
    }

    /// Candidate types for a tensor of `cols` columns: every standard type it can be stored in,
    /// from 1.56 (iq1_s) to 8.5 bits per weight. The types llama-quantize refuses without importance
    /// weights (`QuantizationPolicy.requiresImatrix`) are candidates only when the tensor has them.
    public static func candidates(cols: Int, name: String = "", hasImportance: Bool = true) -> [GGMLType] {
        var t: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl]
        if cols % 256 == 0 {
            t += [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq1_s, .iq1_m, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq4_xs]
        }
        return t.filter { cols % $0.blockSize == 0 && (hasImportance || !QuantizationPolicy.requiresImatrix(name: name, type: $0)) }
    }

    /// E(t, T) for each candidate, on a sample of at most `maxRows` rows scaled to the whole tensor;
    /// and the dequantized tensor quantized to `probe` (all rows), for measuring the gain.
    public static func errors(_ w: Weight, importance: [Float]?, types: [GGMLType], maxRows: Int = 256,
                              threads: Int) -> [GGMLType: Double] {
        let step = max(1, (w.rows + maxRows - 1) / maxRows)
        let sample = Array(stride(from: 0, to: w.rows, by: step))
        let imp = importance ?? [Float](repeating: 1, count: w.cols)
        let cols = w.cols
        let out = SendablePointer(UnsafeMutablePointer<Double>.allocate(capacity: types.count))
        defer { out.p.deallocate() }
        DispatchQueue.concurrentPerform(iterations: types.count) { ti in
            let type = types[ti]
            let q = Quantizers.quantizer(for: type)!
            let rb = type.rowSize(cols)!
            let src = UnsafeMutablePointer<Float>.allocate(capacity: cols)
            let deq = UnsafeMutablePointer<Float>.allocate(capacity: cols)
            let blocks = UnsafeMutableRawPointer.allocate(byteCount: rb, alignment: 16)
            defer { src.deallocate(); deq.deallocate(); blocks.deallocate() }
            var e = 0.0
            imp.withUnsafeBufferPointer { ip in
                for r in sample {
                    w.row(r, into: UnsafeMutableBufferPointer(start: src, count: cols))
                    q.quantizeRow(UnsafeBufferPointer(start: src, count: cols), importance: importance == nil ? nil : ip,
                                  into: UnsafeMutableRawBufferPointer(start: blocks, count: rb))
                    q.dequantizeRow(UnsafeRawBufferPointer(start: blocks, count: rb), into: UnsafeMutableBufferPointer(start: deq, count: cols))
                    for j in 0..<cols {
                        let d = Double(src[j] - deq[j])
                        e += Double(ip[j]) * d * d
                    }
                }
            }
            out.p[ti] = e * Double(w.rows) / Double(sample.count)
        }
        return Dictionary(uniqueKeysWithValues: types.enumerated().map { ($0.element, out.p[$0.offset]) })
    }

    /// `w` quantized to `type` (importance-weighted), kept in that type (see `gptqWeight`).
    public static func quantizedWeight(_ w: Weight, type: GGMLType, importance: [Float]?, threads: Int) -> (Weight, AnyObject) {
        let cols = w.cols
        let q = Quantizers.quantizer(for: type)!
        let rb = type.rowSize(cols)!
        let store = OwnedBuffer(byteCount: rb * w.rows)
        let raw = SendablePointer(store.raw.assumingMemoryBound(to: UInt8.self))
        let workers = max(1, min(threads, w.rows))
        (importance ?? []).withUnsafeBufferPointer { ip in
            let ipp = importance == nil ? nil : SendablePointer(UnsafeMutablePointer(mutating: ip.baseAddress!))
            DispatchQueue.concurrentPerform(iterations: workers) { k in
                let row = UnsafeMutablePointer<Float>.allocate(capacity: cols)
                defer { row.deallocate() }
                for r in (w.rows * k / workers)..<(w.rows * (k + 1) / workers) {
                    w.row(r, into: UnsafeMutableBufferPointer(start: row, count: cols))
                    q.quantizeRow(UnsafeBufferPointer(start: row, count: cols), importance: ipp.map { UnsafeBufferPointer(start: $0.p, count: cols) },
                                  into: UnsafeMutableRawBufferPointer(start: raw.p + r * rb, count: rb))
                }
            }
        }
        return (Weight(type: type, rows: w.rows, cols: cols, data: UnsafeRawPointer(store.raw), name: w.name), store)
    }

    /// Each candidate's output error tr(ΔW H ΔWᵀ) on `maxRows` rows spread over the tensor, with
    /// the rounding the file will use: GPTQ for the types it writes (a row where GPTQ loses is
    /// written rounded, and counted so), importance-weighted rounding for the others.
    public static func outputErrors(_ w: Weight, factor: GPTQ.Factor, importance: [Float], types: [GGMLType],
                                    maxRows: Int = 32, threads: Int) -> [GGMLType: Double] {
        guard importance.count == w.cols, factor.cols == w.cols else { return [:] }
        let step = max(1, (w.rows + maxRows - 1) / maxRows)
        let sample = Array(stride(from: 0, to: w.rows, by: step))
        let cols = w.cols, n = sample.count
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: n * cols)
        defer { rows.deallocate() }
        for (i, r) in sample.enumerated() { w.row(r, into: UnsafeMutableBufferPointer(start: rows + i * cols, count: cols)) }
        let src = SendablePointer(rows)
        let out = SendablePointer(UnsafeMutablePointer<Double>.allocate(capacity: types.count))
        defer { out.p.deallocate() }
        DispatchQueue.concurrentPerform(iterations: types.count) { ti in
            let type = types[ti]
            out.p[ti] = .nan
            guard let rb = type.rowSize(cols), cols % type.blockSize == 0, let q = Quantizers.quantizer(for: type) else { return }
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: rb * n, alignment: 16)
            let err = UnsafeMutablePointer<Float>.allocate(capacity: n * cols)
            defer { bytes.deallocate(); err.deallocate() }
            importance.withUnsafeBufferPointer { ip in
                // GPTQ measured its rows' errors (each row's, GPTQ's or rounding's, as written)
                if Quantizers.gridQuantizer(for: type) != nil,
                   let report = try? GPTQ.quantize(UnsafeBufferPointer(start: src.p, count: n * cols), cols: cols, type: type,
                                                   factor: factor, importance: ip, options: GPTQ.Options(threads: 1), into: bytes) {
                    out.p[ti] = report.error
                    return
                }
                for r in 0..<n {
                    let row = src.p + r * cols, deq = err + r * cols
                    let blocks = UnsafeMutableRawBufferPointer(rebasing: bytes[(r * rb)..<((r + 1) * rb)])
                    q.quantizeRow(UnsafeBufferPointer(start: row, count: cols), importance: ip, into: blocks)
                    q.dequantizeRow(UnsafeRawBufferPointer(blocks), into: UnsafeMutableBufferPointer(start: deq, count: cols))
                    for c in 0..<cols { deq[c] = row[c] - deq[c] }
                }
                // all rows against one pass over H
                var e = 0.0
                for q in factor.quadraticForms(err, rows: n) { e += q }
                out.p[ti] = e
            }
        }
        return Dictionary(uniqueKeysWithValues: types.enumerated().compactMap { out.p[$0.offset].isNaN ? nil : ($0.element, out.p[$0.offset]) })
    }

    /// `w` written as the file will write it — GPTQ with `factor` — as a weight of `type` (nil
    /// where GPTQ cannot write it). Kept in its own type, not dequantized: the model it goes into
    /// runs its other matrices through the quantized kernels (activations rounded to q8), and a
    /// single f32 matrix among them would differ from the reference by that rounding as well.
    static func gptqWeight(_ w: Weight, type: GGMLType, factor: GPTQ.Factor, importance: [Float], threads: Int) -> (Weight, AnyObject)? {
        guard Quantizers.gridQuantizer(for: type) != nil, let rb = type.rowSize(w.cols) else { return nil }
        let cols = w.cols
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: w.rows * cols)
        defer { rows.deallocate() }
        for r in 0..<w.rows { w.row(r, into: UnsafeMutableBufferPointer(start: rows + r * cols, count: cols)) }
        let store = OwnedBuffer(byteCount: rb * w.rows)
        let ok = importance.withUnsafeBufferPointer { ip in
            (try? GPTQ.quantize(UnsafeBufferPointer(start: rows, count: w.rows * cols), cols: cols, type: type, factor: factor,
                                importance: ip, options: GPTQ.Options(threads: threads),
                                into: UnsafeMutableRawBufferPointer(start: store.raw, count: rb * w.rows))) != nil
        }
        guard ok else { return nil }
        return (Weight(type: type, rows: w.rows, cols: cols, data: UnsafeRawPointer(store.raw), name: w.name), store)
    }

    /// Types whose blocks store a minimum beside the scale (x = d·q + m): they place a block's
    /// extremes exactly, where the symmetric types round them.
    static let blockMinimumTypes: Set<GGMLType> = [.q4_1, .q5_1, .q2_K, .q4_K, .q5_K]

    /// The type a second probe should measure when the block-minimum types' errors are far from
    /// the proportion bits give them against the probe's (q4_1 about 0.7 of q4_0: outside 1/4…4),
    /// nil when one gain serves all.
    static func offsetProbe(_ errors: [GGMLType: Double], probe: GGMLType) -> GGMLType? {
        guard probe == .q4_0, let e0 = errors[.q4_0], let e1 = errors[.q4_1], e0 > 0, e1 >= 0 else { return nil }
        return (0.25...4).contains(e1 / e0) ? nil : .q4_1
    }

    /// Each candidate's predicted loss, gain × error, the block-minimum types on `offsetGain`
    /// where a second probe measured one.
    static func losses(_ errors: [GGMLType: Double], gain: Double, offsetGain: Double?) -> [GGMLType: Double] {
        errors.reduce(into: [:]) { out, e in
            out[e.key] = (blockMinimumTypes.contains(e.key) ? offsetGain ?? gain : gain) * e.value
        }
    }

    /// Layer by layer (second moments are collected a layer at a time), and within a layer the
    /// tensors reading the same input next to each other, so that its factor is made once.
    static func order(_ name: String) -> (Int, String) {
        guard let p = TensorName.blockParts(name) else { return (-1, name) }
        let kind = String(p.rest.prefix { $0 != "." })
        let input = ["attn_q": "attn_k", "attn_v": "attn_k", "ffn_up": "ffn_gate"][kind] ?? kind
        return (p.layer, input + "/" + name)
    }

    /// Seconds the last `analyze` spent on the candidates' output errors and GPTQ's probe (the
    /// second moments collected on the way included), and on the probe's KL divergence.
    public struct Timings: Sendable { public var gptq = 0.0, kld = 0.0 }
    public private(set) var timings = Timings()

    /// How a matrix's gain is measured.
    /// - `tensor`: one probe per matrix, the model run from its layer on with it alone quantized.
    /// - `layer`: one probe per layer, with all its matrices quantized together, run from the
    ///   layer on; its KL divergence is shared among them in proportion to the change each makes
    ///   alone to the layer's output (`layerChange`), which costs one layer, not the rest of the
    ///   model. Seven times fewer runs to the end for a Llama layer. The split is rougher than
    ///   measuring each matrix (on grid-free SmolLM2: attn_q/attn_k get about half their measured
    ///   KLD, the rest 0.7–1×, layer 0 worst), but the check measures every layer's share of the
    ///   chosen mix and corrects the layer's sum, and the plans came out no worse (README).
    public enum Probes: String, Sendable, CaseIterable { case layer, tensor }

    /// Measures every weight matrix: candidate errors, then the probe KLD and so the gain.
    /// With `hessians` (the second moments GPTQ will write with), a matrix is measured with the
    /// rounding the file will use: the probe written by GPTQ, and every candidate's error its
    /// output error tr(ΔW H ΔWᵀ) (`outputErrors`) — in the metric GPTQ minimises, where a rounding
    /// error and GPTQ's differ most: on a matrix whose input has a massive activation (the
    /// attention sink's), GPTQ all but removes the error along it, which importance-weighted
    /// rounding leaves. Comparing GPTQ's error in that metric with rounding's in another would
    /// credit GPTQ with far more than the model shows (measured: plans that put q2_K on such a
    /// matrix). `progress(i, n, name)` is called after each tensor.
    public func analyze(importance: [String: [Float]], hessians: (String) -> Hessian? = { _ in nil }, probe: GGMLType = .q4_0,
                        probes: Probes = .layer, alignment: Int = 32,
                        progress: ((Int, Int, String) -> Void)? = nil) throws -> [TensorInfo] {
        let mats = weights.map { (Self.order($0.key), $0.key, $0.value) }.sorted { $0.0 < $1.0 }
        let nLayer = reference.hparams.nLayer
        var infos: [TensorInfo] = []
        var factor: (Hessian, GPTQ.Factor)?
        timings = Timings()
        /// A matrix measured whose gain waits for its layer's probe: its errors, its probe as
        /// quantized, and the change it (and its second probe's type) makes to the layer's output.
        struct Pending {
            var info: TensorInfo
            var types: [GGMLType]
            var errors: [GGMLType: Double]
            var probe: Weight
            var change: Double
            var second: (type: GGMLType, change: Double)?
        }
        var pending: [Pending] = []
        var held: [AnyObject] = []
        func finish(_ info: TensorInfo, types: [GGMLType], errors: [GGMLType: Double], gain: Double, offsetGain: Double?) {
            var info = info
            let losses = Self.losses(errors, gain: gain, offsetGain: offsetGain)
            info.options = types.map { t in
                let bytes = (t.rowSize(info.cols)! * info.rows + alignment - 1) / alignment * alignment
                return TypePlanner.Option(type: t, bytes: bytes, loss: losses[t]!)
            }
            infos.append(info)
        }
        // the layer's probe: its matrices quantized together, run from it to the end
        func flush() throws {
            guard let l = pending.first.flatMap({ firstLayer($0.info.name) }) else { return }
            let joint = try reference.replacing(Dictionary(uniqueKeysWithValues: pending.map { ($0.info.name, $0.probe) }), keepAlive: held)
            let kld = max(meanKLD(of: joint, from: l, states: states), 1e-12)
            let perChange = kld / max(pending.reduce(0) { $0 + $1.change }, 1e-30)
            for p in pending {
                var info = p.info
                info.probeKLD = max(perChange * p.change, 1e-12)
                let gain = info.probeKLD / max(p.errors[info.probe]!, 1e-30)
                let offsetGain = p.second.map { max(perChange * $0.change, 1e-12) / max(p.errors[$0.type]!, 1e-30) }
                finish(info, types: p.types, errors: p.errors, gain: gain, offsetGain: offsetGain)
            }
            pending = []
            held = []
        }
        for (i, (_, name, w)) in mats.enumerated() {
            let t0 = Date()
            let imp = importance[name]
            let types = Self.candidates(cols: w.cols, name: name, hasImportance: imp != nil)
            let probeType = types.contains(probe) ? probe : types[0]
            var outErrs: [GGMLType: Double] = [:]
            var gptqProbe: (Weight, AnyObject)?
            if let imp, Self.candidates(cols: w.cols).contains(where: { Quantizers.gridQuantizer(for: $0) != nil }),
               let h = hessians(name), h.cols == w.cols {
                if factor?.0 !== h { factor = factors.factor(h).map { (h, $0) } }
                if let f = factor?.1 {
                    outErrs = Self.outputErrors(w, factor: f, importance: imp, types: types, threads: threads)
                    gptqProbe = Self.gptqWeight(w, type: probeType, factor: f, importance: imp, threads: threads)
                    // as `quantized` would write it, for a mix (or the file) holding this type here
                    if let (qw, _) = gptqProbe {
                        mixTensors.keep(.init(name: name, type: probeType, hessian: h.fingerprint, importance: imp.map(\.bitPattern),
                                              source: sourceHash(name, w)), qw)
                    }
                }
            }
            let t2 = Date()
            // the probe as the file would hold it, and the candidates' errors in the same metric
            let useGPTQ = gptqProbe != nil && outErrs[probeType].map { $0 > 0 } == true && outErrs.count == types.count
            let (qw, keep) = useGPTQ ? gptqProbe! : Self.quantizedWeight(w, type: probeType, importance: imp, threads: threads)
            let errors = useGPTQ ? outErrs : Self.errors(w, importance: imp, types: types, threads: threads)
            // One gain serves every type while their errors keep the proportions bits give them
            // (q4_1's about 0.7 of q4_0's). Where the types with a block minimum are far off that
            // (SmolLM2 grid-free blk.11.ffn_down: q4_1 1/700 of q4_0, q2_K 1/45), their error is
            // made of other columns than the probe's, and the probe's KLD per unit of error says
            // nothing about it: the planner put q2_K there at a 6.6-bit budget. Those types get a
            // gain of their own, from a probe of their own.
            let second = Self.offsetProbe(errors, probe: probeType).flatMap { t in
                (useGPTQ ? factor.flatMap({ Self.gptqWeight(w, type: t, factor: $0.1, importance: imp!, threads: threads) })
                         : Self.quantizedWeight(w, type: t, importance: imp, threads: threads)).map { (t, $0) }
            }
            var info = TensorInfo(name: name, rows: w.rows, cols: w.cols)
            info.probe = probeType
            if probes == .layer, let l = firstLayer(name), l < nLayer {
                if let p = pending.first, firstLayer(p.info.name) != l { try flush() }
                let change = try layerChange(l, [name: qw], keepAlive: keep)
                let secondChange = try second.map { (type: $0.0, change: try layerChange(l, [name: $0.1.0], keepAlive: $0.1.1)) }
                pending.append(Pending(info: info, types: types, errors: errors, probe: qw, change: change, second: secondChange))
                held.append(keep)
            } else {
                try flush()
                let kld = max(meanKLD(of: try reference.replacing([name: qw], keepAlive: [keep]), changed: name), 1e-12)
                let offsetGain = try second.map { t, q in
                    max(meanKLD(of: try reference.replacing([name: q.0], keepAlive: [q.1]), changed: name), 1e-12) / max(errors[t]!, 1e-30)
                }
                info.probeKLD = kld
                finish(info, types: types, errors: errors, gain: kld / max(errors[probeType]!, 1e-30), offsetGain: offsetGain)
            }
            timings.gptq += t2.timeIntervalSince(t0)
            timings.kld += Date().timeIntervalSince(t2)
            progress?(i + 1, mats.count, name)
        }
        let t0 = Date()
        try flush()
        timings.kld += Date().timeIntervalSince(t0)
        return infos.sorted { $0.name < $1.name }
    }

    /// How much replacing `changed` (all in layer `l`) changes the layer's output on the
    /// sensitivity chunks: Σ over positions of |Δx|² / mean(x²) — the change relative to the
    /// position's scale, as the next layer's RMS norm sees it. Unnormalised, the positions that
    /// carry a massive activation (the attention sink's) would outweigh all the others.
    func layerChange(_ l: Int, _ changed: [String: Weight], keepAlive: AnyObject) throws -> Double {
        let variant = Forward(model: try reference.replacing(changed, keepAlive: [keepAlive]), engine: GGMLEngine(threads: threads), threads: threads)
        var total = 0.0
        for c in chunks.indices {
            let base = layerOutput(l, chunk: c)
            let x = states[c][l].copy()
            defer { x.free() }
            variant.applyLayer(l, to: x)
            for r in 0..<x.rows {
                let a = x.row(r), b = base.row(r)
                var d = 0.0, m = 0.0
                for j in 0..<x.cols {
                    let e = Double(a[j] - b[j])
                    d += e * e
                    m += Double(b[j]) * Double(b[j])
                }
                total += m > 0 ? d / (m / Double(x.cols)) : 0
            }
        }
        return total
    }

    /// Layer `l`'s output on chunk `c` as `layerChange`'s variants compute it (the same call on
    /// the same input), made once per layer: the states saved while walking the model were made
    /// in one pass, and a difference of rounding between the two would count as a change.
    func layerOutput(_ l: Int, chunk c: Int) -> Matrix {
        if let (layer, out) = baseOutputs, layer == l { return out[c] }
        baseOutputs.map { for m in $0.1 { m.free() } }
        let fw = Forward(model: reference, engine: GGMLEngine(threads: threads), threads: threads)
        let out = chunks.indices.map { c -> Matrix in
            let x = states[c][l].copy()
            fw.applyLayer(l, to: x)
            return x
        }
        baseOutputs = (l, out)
        return out[c]
    }
}

extension Sensitivity {
    /// What measuring a planned mix found: its mean KL divergence on the sensitivity chunks, the
    /// planner's prediction for it, and per tensor the factor its predicted losses are scaled by.
    public struct MixCheck: Sendable {
        public var measured = 0.0
        /// `measured` per scored position.
        public var rows: [Double] = []
        public var predicted = 0.0
        public var scale: [String: Double] = [:]
    }

    /// The mean KL divergence, on the sensitivity chunks, of each mix quantized as the file will
    /// be (`quantized`), in one walk over the layers: each chunk is taken through every
    /// mix a layer at a time, and a layer's quantized weights are freed once every mix has run it.
    /// So the memory is one layer's weights per mix, plus the tensors outside the layers (the
    /// embedding and output head: one copy per distinct type), not whole mixes.
    public func mixKLDs(_ mixes: [[String: GGMLType]], importance: [String: [Float]]) throws -> [Measured] {
        let nLayer = reference.hparams.nLayer
        let (layerNames, outside) = splitByLayer(Set(mixes.flatMap(\.keys)))
        var factor: (Hessian, GPTQ.Factor)?
        let (outer, outerKeep) = quantized(mixes, names: outside, importance: importance, factor: &factor)
        defer { withExtendedLifetime(outerKeep) {} }
        let bases = try outer.map { try reference.replacing($0, keepAlive: []) }
        // per mix and chunk, the residual stream entering the next layer
        let streams = bases.map { b in chunks.map { Forward(model: b, engine: GGMLEngine(threads: threads), threads: threads).embedded($0) } }
        defer { for s in streams { for m in s { m.free() } } }
        for l in 0..<nLayer {
            let (own, keep) = quantized(mixes, names: layerNames[l], importance: importance, factor: &factor)
            for (m, base) in bases.enumerated() {
                let fw = Forward(model: try base.replacing(own[m], keepAlive: []), engine: GGMLEngine(threads: threads), threads: threads)
                for x in streams[m] { fw.applyLayer(l, to: x) }
            }
            withExtendedLifetime(keep) {}
        }
        return bases.indices.map { m in measuredKLD(of: bases[m], head: streams[m]) }
    }

    /// Weight names by the layer they are in, and those outside the layers (embedding, output head).
    func splitByLayer(_ names: some Sequence<String>) -> (layers: [[String]], outside: [String]) {
        let nLayer = reference.hparams.nLayer
        var layers = [[String]](repeating: [], count: nLayer)
        var outside: [String] = []
        for n in names {
            if let l = firstLayer(n), l >= 0, l < nLayer { layers[l].append(n) } else { outside.append(n) }
        }
        return (layers, outside)
    }

    /// Mean KL divergence from the reference of `head`'s output layer on `streams` (per chunk, the
    /// residual stream leaving the last layer).
    func meanKLD(of head: Model, head streams: [Matrix]) -> Double {
        measuredKLD(of: head, head: streams).mean
    }

    func measuredKLD(of head: Model, head streams: [Matrix]) -> Measured {
        measuredKLD(of: head) { fw, c in fw.logits(fromLayer: self.reference.hparams.nLayer, hidden: streams[c], outputsFrom: self.first) }
    }

    /// Tensors `names` of each mix quantized as the file will write them — by GPTQ where
    /// `hessians` has the tensor's second moments and GPTQ writes the type, importance-weighted
    /// rounding otherwise — and the buffers they hold. A mix measured rounded while the file is
    /// written by GPTQ would be judged by errors it will not have, and GPTQ's gain grows as bits
    /// fall: mixes with low-bit tensors would lose to uniform ones they beat in the file. A tensor
    /// and type shared by several mixes is quantized once; tensors go in layer order, so the
    /// second moments are collected in one walk (`factor`: the last input's, carried over).
    func quantized(_ mixes: [[String: GGMLType]], names: [String], importance: [String: [Float]],
                   factor: inout (Hessian, GPTQ.Factor)?) -> ([[String: Weight]], [AnyObject]) {
        var replaced = [[String: Weight]](repeating: [:], count: mixes.count)
        var keep: [AnyObject] = []
        for name in names.sorted(by: { Self.order($0) < Self.order($1) }) {
            guard let w = weights[name] else { continue }
            let h = hessians?(name)
            let imp = importance[name]
            var made: [GGMLType: Weight] = [:]
            let source = sourceHash(name, w)
            for type in Set(mixes.compactMap { $0[name] }).sorted(by: { $0.rawValue < $1.rawValue }) {
                guard Quantizers.quantizer(for: type) != nil, type.rowSize(w.cols) != nil else { continue }
                let gptq = h.flatMap { h in h.cols == w.cols && imp?.count == w.cols ? h : nil }
                let key = QuantizedStore.Key(name: name, type: type, hessian: gptq?.fingerprint, importance: imp?.map(\.bitPattern), source: source)
                if let (qw, buf) = mixTensors.weight(key, like: w) {
                    made[type] = qw
                    keep.append(buf)
                    continue
                }
                var q: (Weight, AnyObject)?
                if let h = gptq, let imp {
                    if factor?.0 !== h { factor = factors.factor(h).map { (h, $0) } }
                    if let f = factor?.1 { q = Self.gptqWeight(w, type: type, factor: f, importance: imp, threads: threads) }
                }
                let (qw, buf) = q ?? Self.quantizedWeight(w, type: type, importance: imp, threads: threads)
                mixTensors.keep(key, qw)
                made[type] = qw
                keep.append(buf)
            }
            for i in mixes.indices { if let t = mixes[i][name], let qw = made[t] { replaced[i][name] = qw } }
        }
        return (replaced, keep)
    }

    /// Checks a plan against the model it makes. The planner adds per-tensor losses each measured
    /// with that tensor alone quantized, which misses how errors interact (a layer's input already
    /// carries every earlier layer's error) and how the loss bends at far larger errors than the
    /// probe's. So the whole mix, quantized as the file will be (`quantized`), is run once, and
    /// once per layer with that layer's tensors restored — from that layer on, over the mix's own
    /// residual stream — which gives each layer's share of the mix's real loss. A layer whose share
    /// differs from the sum of its tensors' predictions has those predictions scaled to match
    /// (within 1/4…4), ready for planning again.
    ///
    /// All these runs go through the layers together, so only one layer of the mix is quantized at
    /// a time (and the tensors outside the layers): the memory is a residual stream per run, not
    /// the mix.
    public func check(types: [String: GGMLType], predicted loss: [String: Double], importance: [String: [Float]]) throws -> MixCheck {
        let nLayer = reference.hparams.nLayer
        // layer → its planned tensors (nil: the embedding, whose change needs a full run; nLayer:
        // a separate output head)
        var byLayer: [Int?: [String]] = [:]
        for name in types.keys { byLayer[firstLayer(name), default: []].append(name) }
        let (layerNames, outside) = splitByLayer(types.keys)
        var factor: (Hessian, GPTQ.Factor)?
        let (outer, outerKeep) = quantized([types], names: outside, importance: importance, factor: &factor)
        defer { withExtendedLifetime(outerKeep) {} }
        // the mix outside the layers (whose layers are the reference's), and each outside group restored
        let mixBase = try reference.replacing(outer[0], keepAlive: [])
        func restoring(_ names: [String]) throws -> Model {
            try reference.replacing(outer[0].filter { !names.contains($0.key) }, keepAlive: [])
        }
        let engine = { GGMLEngine(threads: self.threads) }
        let mixStream = chunks.map { Forward(model: mixBase, engine: engine(), threads: threads).embedded($0) }
        // per restored group: its head and, per chunk, its residual stream
        var runs: [Int?: (head: Model, stream: [Matrix])] = [:]
        defer {
            for m in mixStream { m.free() }
            for r in runs.values { for m in r.stream { m.free() } }
        }
        if let names = byLayer[nil] {
            let b = try restoring(names)
            runs[nil] = (b, chunks.map { Forward(model: b, engine: engine(), threads: threads).embedded($0) })
        }
        let referenceLayers = Forward(model: mixBase, engine: engine(), threads: threads)
        for l in 0..<nLayer {
            if byLayer[l] != nil {
                // restored: this layer as it was, on the mix's stream entering it
                let copies = mixStream.map { x -> Matrix in
                    let c = x.copy()
                    referenceLayers.applyLayer(l, to: c)
                    return c
                }
                runs[l] = (mixBase, copies)
            }
            let (own, keep) = quantized([types], names: layerNames[l], importance: importance, factor: &factor)
            let mixLayer = Forward(model: try mixBase.replacing(own[0], keepAlive: []), engine: engine(), threads: threads)
            for x in mixStream { mixLayer.applyLayer(l, to: x) }
            for (r, run) in runs where r.map({ $0 < l }) ?? true { for x in run.stream { mixLayer.applyLayer(l, to: x) } }
            withExtendedLifetime(keep) {}
        }
        var result = MixCheck()
        let mix = measuredKLD(of: mixBase, head: mixStream)
        result.measured = mix.mean
        result.rows = mix.rows
        result.predicted = types.keys.reduce(0) { $0 + (loss[$1] ?? 0) }
        for (layer, names) in byLayer {
            let without: Double
            if let run = runs[layer] { without = meanKLD(of: run.head, head: run.stream) }
            else { without = meanKLD(of: try restoring(names), head: mixStream) } // the output head: the mix's stream, its own head
            let share = result.measured - without
            let predicted = names.reduce(0) { $0 + (loss[$1] ?? 0) }
            let factor = predicted > 0 && share > 0 ? min(4, max(0.25, share / predicted)) : 1
            for n in names { result.scale[n] = factor }
        }
        return result
    }

    /// Mean KL divergence from the reference of `variant` run from layer `first` over `states`
    /// (per chunk, the residual stream entering each layer).
    func meanKLD(of variant: Model, from layer: Int, states: [[Matrix]]) -> Double {
        meanKLD(of: variant) { fw, c in fw.logits(fromLayer: layer, hidden: states[c][layer], outputsFrom: first) }
    }
}
