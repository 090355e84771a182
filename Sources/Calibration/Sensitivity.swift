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
/// - `gain_t` is measured: tensor t alone is quantized to a probe type, the model is run on the
///   calibration chunks, and the mean KL divergence of its next-token distributions from the
///   unquantized model's is divided by `E(t, probe)`. Layers before t's are not re-run (their
///   residual stream is cached).
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
    public let chunks: [[Int32]]
    public let threads: Int
    let forward: Forward
    /// Per chunk: residual stream entering each layer, and the reference log-probabilities of the
    /// scored positions (second half of the chunk, as perplexity scores).
    var states: [[Matrix]] = []
    var refLogProbs: [Matrix] = []
    let first: Int

    /// `reference` should hold f32 weights (what the errors are measured against); `chunks` are
    /// token chunks of equal length as `perplexity` makes them (BOS already applied).
    public init(reference: Model, chunks: [[Int32]], threads: Int) {
        self.reference = reference
        self.chunks = chunks
        self.threads = max(1, threads)
        forward = Forward(model: reference, engine: GGMLEngine(threads: threads), threads: threads)
        first = (chunks.first?.count ?? 2) / 2
        for c in chunks {
            states.append(forward.hiddenStates(c))
            let l = forward.logits(fromLayer: reference.hparams.nLayer, hidden: states.last!.last!, outputsFrom: first)
            Self.logSoftmaxRows(l, threads: self.threads)
            refLogProbs.append(l)
        }
    }

    deinit {
        for s in states { for m in s { m.free() } }
        for m in refLogProbs { m.free() }
    }

    /// Rows of `m` replaced by their log-softmax (max subtracted, sum in double).
    static func logSoftmaxRows(_ m: Matrix, threads: Int) {
        let n = m.cols
        let workers = max(1, min(threads, m.rows))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for r in (m.rows * w / workers)..<(m.rows * (w + 1) / workers) {
                let p = m.row(r)
                var mx = p[0]
                for i in 1..<n { mx = max(mx, p[i]) }
                var sum = 0.0
                for i in 0..<n { sum += Double(expf(p[i] - mx)) }
                let lse = mx + Float(log(sum))
                for i in 0..<n { p[i] -= lse }
            }
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
        let fw = Forward(model: variant, engine: GGMLEngine(threads: threads), threads: threads)
        var total = 0.0, count = 0
        for (c, chunk) in chunks.enumerated() {
            let l: Matrix
            if let layer = firstLayer(name) {
                l = fw.logits(fromLayer: layer, hidden: states[c][layer], outputsFrom: first)
            } else {
                l = fw.logits(chunk, outputsFrom: first)
            }
            Self.logSoftmaxRows(l, threads: threads)
            let ref = refLogProbs[c]
            // the last position has no next token in the chunk: perplexity does not score it
            let rows = l.rows - 1
            let parts = SendablePointer(UnsafeMutablePointer<Double>.allocate(capacity: rows))
            defer { parts.p.deallocate() }
            let n = l.cols
            let workers = max(1, min(threads, rows))
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                for r in (rows * w / workers)..<(rows * (w + 1) / workers) {
                    let p = ref.row(r), q = l.row(r)
                    var kl = 0.0
                    for i in 0..<n {
                        let lp = Double(p[i])
                        kl += exp(lp) * (lp - Double(q[i]))
                    }
                    parts.p[r] = kl
                }
            }
            for r in 0..<rows { total += parts.p[r] }
            count += rows
            l.free()
        }
        return count > 0 ? total / Double(count) : 0
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
    public static func errors(_ w: Weight, importance: [Float]?, types: [GGMLType], maxRows: Int = 512,
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

    /// `w` quantized to `type` (importance-weighted) and dequantized, as an f32 weight.
    public static func quantizedCopy(_ w: Weight, type: GGMLType, importance: [Float]?, threads: Int) -> (Weight, AnyObject) {
        let cols = w.cols
        let store = OwnedBuffer(floats: w.rows * cols)
        let q = Quantizers.quantizer(for: type)!
        let rb = type.rowSize(cols)!
        let workers = max(1, min(threads, w.rows))
        let p = SendablePointer(store.floats)
        (importance ?? []).withUnsafeBufferPointer { ip in
            let ipp = importance == nil ? nil : SendablePointer(UnsafeMutablePointer(mutating: ip.baseAddress!))
            DispatchQueue.concurrentPerform(iterations: workers) { k in
                let blocks = UnsafeMutableRawPointer.allocate(byteCount: rb, alignment: 16)
                defer { blocks.deallocate() }
                for r in (w.rows * k / workers)..<(w.rows * (k + 1) / workers) {
                    let row = p.p + r * cols
                    w.row(r, into: UnsafeMutableBufferPointer(start: row, count: cols))
                    q.quantizeRow(UnsafeBufferPointer(start: row, count: cols), importance: ipp.map { UnsafeBufferPointer(start: $0.p, count: cols) },
                                  into: UnsafeMutableRawBufferPointer(start: blocks, count: rb))
                    q.dequantizeRow(UnsafeRawBufferPointer(start: blocks, count: rb), into: UnsafeMutableBufferPointer(start: row, count: cols))
                }
            }
        }
        return (Weight(type: .f32, rows: w.rows, cols: cols, data: UnsafeRawPointer(p.p), name: w.name), store)
    }

    /// Measures every weight matrix: candidate errors, then the probe KLD and so the gain.
    /// `progress(i, n, name)` is called after each tensor.
    public func analyze(importance: [String: [Float]], probe: GGMLType = .q4_0, alignment: Int = 32,
                        progress: ((Int, Int, String) -> Void)? = nil) throws -> [TensorInfo] {
        let mats = reference.weightMatrices.sorted { $0.key < $1.key }
        var infos: [TensorInfo] = []
        for (i, (name, w)) in mats.enumerated() {
            let imp = importance[name]
            let types = Self.candidates(cols: w.cols, name: name, hasImportance: imp != nil)
            let probeType = types.contains(probe) ? probe : types[0]
            let errs = Self.errors(w, importance: imp, types: types, threads: threads)
            let (qw, keep) = Self.quantizedCopy(w, type: probeType, importance: imp, threads: threads)
            let variant = try reference.replacing([name: qw], keepAlive: [keep])
            let kld = max(meanKLD(of: variant, changed: name), 1e-12)
            let gain = kld / max(errs[probeType]!, 1e-30)
            var info = TensorInfo(name: name, rows: w.rows, cols: w.cols)
            info.probe = probeType
            info.probeKLD = kld
            info.options = types.map { t in
                let bytes = (t.rowSize(w.cols)! * w.rows + alignment - 1) / alignment * alignment
                return TypePlanner.Option(type: t, bytes: bytes, loss: gain * errs[t]!)
            }
            infos.append(info)
            progress?(i + 1, mats.count, name)
        }
        return infos
    }
}
