import CKernels
import Dispatch
import Foundation
import GGMLCore
import Inference
import Quantizers
import Workers

/// Calibrated rounding into ggml's block types: GPTQ (Frantar et al. 2022, "Accurate
/// Post-Training Quantization for Generative Pre-trained Transformers") with ggml's own scales.
///
/// Round-to-nearest, even importance-weighted as llama-quantize does it, rounds every weight on
/// its own and so minimises Σ_j imp_j·Δw_j², which only sees diag(H) of H = Σ_tokens x xᵀ. The
/// error a product actually makes on the calibration inputs is tr(ΔW H ΔWᵀ), whose off-diagonal
/// terms let a column's rounding error be compensated by the columns after it. GPTQ rounds the
/// columns in order and, after each, moves its error onto the not-yet-rounded columns along the
/// upper Cholesky factor U of H⁻¹: w_k −= (w_j − q_j)·U[j,k]/U[j,j] for k > j.
///
/// ggml ties its grid to blocks along a row: 32 columns share a scale (legacy types, iq4_nl), or
/// 256 share a super-block scale and 6-bit sub-block scales (k-quants). When rounding reaches the
/// first column of such a group, the group's scales are chosen by ggml's importance-weighted
/// search (the bytes llama-quantize `--imatrix` would write for those values) on the group's
/// *current* weights, which already carry the error of the columns before it; the group's columns
/// are then rounded one by one to the nearest value of that fixed grid (the quantized sub-block
/// scales, the min or offset, the clamp to the type's levels). The output is ordinary blocks.
///
/// Rows are independent (each row's error only moves along that row), so they are split between
/// threads. Within a row the update is done lazily as in the paper: inside a batch of 128 columns
/// column by column, then once per batch for all later columns as a product (CKernels' GEMM).
/// Work is O(rows · cols²) per matrix plus O(cols³) once per distinct input (the factor).
public enum GPTQ {
    public struct Options: Sendable {
        /// λ: H + λ·mean(diag H)·I is inverted. Keeps the inverse stable where inputs are nearly
        /// collinear; larger values move GPTQ towards plain rounding. Raised tenfold (up to 1) when
        /// the damped matrix is still not positive definite in double precision.
        public var dampening: Double
        /// Columns per lazy update batch (rounded to be compatible with the type's group size).
        public var blockSize: Int
        public var threads: Int
        /// Keep llama-quantize's rounding for a row where it gives the lower Δw H Δwᵀ. GPTQ is
        /// greedy and can lose to rounding, notably on weights that already lie on a grid the
        /// type can reproduce (a model dequantized from a quantized release); rows are
        /// independent in tr(ΔW H ΔWᵀ), so choosing per row never does worse than either.
        public var fallbackToRounding: Bool

        public init(dampening: Double = 0.01, blockSize: Int = 128, threads: Int = 2, fallbackToRounding: Bool = true) {
            self.dampening = dampening
            self.blockSize = blockSize
            self.threads = max(1, threads)
            self.fallbackToRounding = fallbackToRounding
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        /// H + λ·mean(diag)·I is not positive definite even with λ = 1 (H holds NaN or infinity).
        case notPositiveDefinite(cols: Int)
        case unsupportedType(GGMLType)
        /// cols is not a multiple of the type's block size.
        case badShape(cols: Int, type: GGMLType)

        public var description: String {
            switch self {
            case .notPositiveDefinite(let c): "GPTQ: the \(c)×\(c) input second-moment matrix is not positive definite"
            case .unsupportedType(let t): "GPTQ: no block grid for type \(t.name)"
            case .badShape(let c, let t): "GPTQ: rows of \(c) are not a multiple of \(t.name)'s block size"
            }
        }
    }

    /// The output error of one quantized matrix, tr(ΔW H ΔWᵀ) in the units of the H the factor
    /// was made from (a collected `Hessian`'s sums: divide by its tokens for a per-token value).
    public struct Report: Sendable {
        public var rows = 0
        /// With the rows as written.
        public var error = 0.0
        /// With llama-quantize's importance-weighted rounding for every row (nil when
        /// `fallbackToRounding` is off, as it is not computed then).
        public var roundingError: Double?
        /// Rows written as llama-quantize rounds them, GPTQ's being worse there.
        public var roundedRows = 0
    }

    /// What a column's rounding error is spread with: the upper Cholesky factor U of
    /// (H + λ·mean(diag H)·I)⁻¹, each row divided by its diagonal, in f32 (the update loops) and
    /// also transposed (the batched update reads it by columns), and H in f32. One per distinct
    /// input: the weights that multiply the same activations share it. 3·cols² floats.
    public final class Factor: @unchecked Sendable {
        public let cols: Int
        /// The λ used: the requested one, or more when that was not enough.
        public let dampening: Double
        /// Ũ[j][k] = U[j][k] / U[j][j] for k > j, 0 for k ≤ j; row-major.
        let rows: UnsafeMutablePointer<Float>
        /// Ũ transposed: `columns[k·cols + j]` = Ũ[j][k].
        let columns: UnsafeMutablePointer<Float>
        /// H itself (undamped), for comparing rows' output errors.
        let hessian: UnsafeMutablePointer<Float>
        /// H packed once for the products of `rowErrors` (`panelRows` rows a panel), which would
        /// otherwise pack it for every task: a third of the products' time for 32 sample rows.
        let hessianPanels: UnsafeMutablePointer<Float>
        let panelRows: Int32

        /// Packs `hessian` for this thread's level (a worker on another level packs on each call).
        private static func panels(_ h: UnsafePointer<Float>, _ n: Int) -> (UnsafeMutablePointer<Float>, Int32) {
            let mr = ek_float_panel_rows()
            let p = UnsafeMutablePointer<Float>.allocate(capacity: (n + Int(mr) - 1) / Int(mr) * Int(mr) * n)
            ek_pack_float_panels(h, Int64(n), Int64(n), mr, p)
            return (p, mr)
        }

        /// `hessian`: cols × cols, symmetric, row-major (Σ x xᵀ; its scale does not matter).
        public init(hessian: UnsafePointer<Double>, cols: Int, dampening: Double = 0.01) throws(Failure) {
            precondition(cols > 0)
            let n = cols
            self.cols = n
            var lambda = dampening
            var u: UnsafeMutablePointer<Double>?
            while u == nil {
                u = GPTQ.inverseCholeskyUpper(hessian, n: n, dampening: lambda)
                if u == nil {
                    guard lambda < 1 else { throw .notPositiveDefinite(cols: n) }
                    lambda = lambda > 0 ? min(1, lambda * 10) : 1e-4
                }
            }
            self.dampening = lambda
            let U = u!
            defer { U.deallocate() }
            rows = .allocate(capacity: n * n)
            columns = .allocate(capacity: n * n)
            self.hessian = .allocate(capacity: n * n)
            for i in 0..<(n * n) { self.hessian[i] = Float(hessian[i]) }
            (hessianPanels, panelRows) = Self.panels(self.hessian, n)
            rows.initialize(repeating: 0, count: n * n)
            columns.initialize(repeating: 0, count: n * n)
            for j in 0..<n {
                let inv = 1 / U[j * n + j]
                for k in (j + 1)..<max(j + 1, n) {
                    let v = Float(U[j * n + k] * inv)
                    rows[j * n + k] = v
                    columns[k * n + j] = v
                }
            }
        }

        /// dᵀ H d for one row's error `d` (H as the factor was made from, undamped).
        public func quadraticForm(_ d: UnsafePointer<Float>) -> Double {
            quadraticForms(d, rows: 1)[0]
        }

        /// dᵀ H d for each of `rows` rows' errors at `d` (row-major, `cols` apart): H·d in f32
        /// (`ek_symv_rows`: each element summed in column order, H's rows read as vectors), then
        /// Σ dᵢ·(Hd)ᵢ in double over the nonzero dᵢ.
        public func quadraticForms(_ d: UnsafePointer<Float>, rows: Int) -> [Double] {
            guard rows > 0 else { return [] }
            let n = cols
            let hd = UnsafeMutablePointer<Float>.allocate(capacity: rows * n)
            defer { hd.deallocate() }
            ek_symv_rows(hessian, Int64(n), d, Int64(rows), hd)
            return (0..<rows).map { r in
                let dr = d + r * n, yr = hd + r * n
                var total = 0.0
                for i in 0..<n where dr[i] != 0 { total += Double(dr[i]) * Double(yr[i]) }
                return total
            }
        }

        /// From a collected `Hessian`.
        public convenience init(_ h: Hessian, dampening: Double = 0.01) throws(Failure) {
            try self.init(hessian: h.values, cols: h.cols, dampening: dampening)
        }

        /// A factor made before, from its `rows` (Ũ, as `write` stored them) and the `Hessian` it
        /// was made from: the same values as making it again, without the O(cols³) factorisation.
        init(rows stored: UnsafePointer<Float>, dampening: Double, of h: Hessian) {
            let n = h.cols
            cols = n
            self.dampening = dampening
            rows = .allocate(capacity: n * n)
            rows.update(from: stored, count: n * n)
            columns = .allocate(capacity: n * n)
            for j in 0..<n { for k in 0..<n { columns[k * n + j] = rows[j * n + k] } }
            hessian = .allocate(capacity: n * n)
            let v = h.values
            for i in 0..<(n * n) { hessian[i] = Float(v[i]) }
            (hessianPanels, panelRows) = Self.panels(hessian, n)
        }

        /// Ũ's bytes (cols² floats), what `init(rows:dampening:of:)` needs beside the Hessian.
        var rowBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: rows, count: cols * cols * 4) }

        deinit {
            rows.deallocate()
            columns.deallocate()
            hessian.deallocate()
            hessianPanels.deallocate()
        }
    }

    /// U with Uᵀ U = (H + λ·mean(diag H)·I)⁻¹, upper triangular, row-major (the caller
    /// deallocates), or nil when the damped matrix is not positive definite.
    ///
    /// Computed without forming the inverse: with J the reversal permutation, if J H' J = L Lᵀ
    /// (Cholesky, L lower) then H' = V Vᵀ for the upper triangular V = J L J, so
    /// H'⁻¹ = V⁻ᵀ V⁻¹ and U = V⁻¹ = J L⁻¹ J. Two triangular O(n³/6) passes in double.
    /// A column never seen (diag 0) gets 1 on the diagonal first, as in the paper's code, so it
    /// neither receives nor passes on error. `threads` (at most 2) share the inverse's columns.
    static func inverseCholeskyUpper(_ h: UnsafePointer<Double>, n: Int, dampening: Double, threads: Int = 2) -> UnsafeMutablePointer<Double>? {
        var meanDiag = 0.0
        for i in 0..<n { meanDiag += h[i * n + i] }
        meanDiag /= Double(n)
        if !(meanDiag > 0) { meanDiag = 1 }
        let damp = dampening * meanDiag
        // A = J H' J, lower half, row-major.
        let a = UnsafeMutablePointer<Double>.allocate(capacity: n * n)
        defer { a.deallocate() }
        for i in 0..<n {
            let hi = n - 1 - i
            for j in 0...i {
                let hj = n - 1 - j
                var v = h[hi * n + hj]
                if i == j {
                    if v == 0 { v = 1 }
                    v += damp
                }
                a[i * n + j] = v
            }
        }
        // In place: Cholesky–Banachiewicz, row by row; dots over contiguous row prefixes
        // (`ek_cholesky_lower`: eight rows at a time against each finished row, the same sums).
        guard ek_cholesky_lower(a, Int64(n)) != 0 else { return nil }
        // M = L⁻¹, one column per task: L m = e_c by forward substitution, each step a dot
        // with a row of L. M's column c holds U[n−1−i][n−1−c] at i.
        let u = UnsafeMutablePointer<Double>.allocate(capacity: n * n)
        u.initialize(repeating: 0, count: n * n)
        let lp = SendablePointer(a), up = SendablePointer(u)
        let workers = max(1, min(threads, 2, n))
        // Column c costs (n−c)²: interleaved so both threads get a share of the long ones.
        if workers == 1 {
            ek_lower_inverse_columns(lp.p, Int64(n), 0, 1, up.p)
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { t in
                ek_lower_inverse_columns(lp.p, Int64(n), Int64(t), Int64(workers), up.p)
            }
        }
        return u
    }

    /// Σ a[i]·b[i] in double with four running sums.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var i = 0
        while i + 4 <= n {
            s0 += a[i] * b[i]
            s1 += a[i + 1] * b[i + 1]
            s2 += a[i + 2] * b[i + 2]
            s3 += a[i + 3] * b[i + 3]
            i += 4
        }
        while i < n { s0 += a[i] * b[i]; i += 1 }
        return (s0 + s1) + (s2 + s3)
    }

    /// Quantizes `weights` (rows of `cols` floats, row-major) to `type` with GPTQ, writing the
    /// rows' blocks to `dst` (`rows · type.rowSize(cols)` bytes). `importance` holds one value
    /// per column for ggml's scale search: llama-imatrix's Σx²/count, i.e. diag(H)/tokens.
    @discardableResult
    public static func quantize(
        _ weights: UnsafeBufferPointer<Float>, cols: Int, type: GGMLType, factor: Factor,
        importance: UnsafeBufferPointer<Float>, options: Options = Options(), into dst: UnsafeMutableRawBufferPointer
    ) throws(Failure) -> Report {
        guard let q = Quantizers.gridQuantizer(for: type) else { throw .unsupportedType(type) }
        guard cols > 0, cols % q.groupSize == 0, weights.count % cols == 0 else { throw .badShape(cols: cols, type: type) }
        precondition(factor.cols == cols, "factor of \(factor.cols) columns for rows of \(cols)")
        precondition(importance.count == cols, "importance must hold one value per column")
        let rows = weights.count / cols
        precondition(dst.count >= rows * type.rowSize(cols)!, "dst too small")
        guard rows > 0 else { return Report() }
        return run(q, weights.baseAddress!, rows: rows, cols: cols, factor: factor, importance: importance.baseAddress!,
                   options: options, dst: dst.baseAddress!)
    }

    /// `quantize` with a collected `Hessian`: its factor (λ from `options`) and diag(H)/tokens
    /// as the importance unless `importance` is given (an imatrix from elsewhere). The factor is
    /// the expensive part for a single matrix; call the other form with one `Factor` for the
    /// weights that share an input.
    public static func quantize(_ weights: UnsafeBufferPointer<Float>, cols: Int, type: GGMLType, hessian: Hessian,
                                importance: [Float]? = nil, options: Options = Options()) throws(Failure) -> (bytes: [UInt8], report: Report) {
        guard let q = Quantizers.gridQuantizer(for: type) else { throw .unsupportedType(type) }
        guard cols > 0, cols % q.groupSize == 0, weights.count % cols == 0 else { throw .badShape(cols: cols, type: type) }
        precondition(hessian.cols == cols, "Hessian of \(hessian.cols) columns for rows of \(cols)")
        let factor = try Factor(hessian, dampening: options.dampening)
        let imp = importance ?? hessian.importance
        precondition(imp.count == cols, "importance must hold one value per column")
        let rows = weights.count / cols
        var out = [UInt8](repeating: 0, count: rows * type.rowSize(cols)!)
        guard rows > 0 else { return (out, Report()) }
        let report = imp.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBytes { o in
                run(q, weights.baseAddress!, rows: rows, cols: cols, factor: factor, importance: i.baseAddress!,
                    options: options, dst: o.baseAddress!)
            }
        }
        return (out, report)
    }

    /// tr(ΔW H ΔWᵀ) = Σ_rows Δw H Δwᵀ: the summed squared error the weight error `delta` (rows of
    /// `cols`) adds to the product's outputs over the tokens H was collected on. In double.
    public static func outputError(_ delta: UnsafeBufferPointer<Float>, cols: Int, hessian: UnsafePointer<Double>,
                                   threads: Int = 2) -> Double {
        let rows = delta.count / cols
        guard rows > 0 else { return 0 }
        let dp = SendablePointer(UnsafeMutablePointer(mutating: delta.baseAddress!))
        let hp = SendablePointer(UnsafeMutablePointer(mutating: hessian))
        let workers = max(1, min(threads, rows))
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: workers)
        defer { partial.deallocate() }
        let pp = SendablePointer(partial)
        DispatchQueue.concurrentPerform(iterations: workers) { t in
            let d = UnsafeMutablePointer<Double>.allocate(capacity: cols)
            defer { d.deallocate() }
            var total = 0.0
            for r in stride(from: t, to: rows, by: workers) {
                let row = dp.p + r * cols
                for c in 0..<cols { d[c] = Double(row[c]) }
                for i in 0..<cols where d[i] != 0 {
                    total += d[i] * dot(hp.p + i * cols, d, cols)
                }
            }
            pp.p[t] = total
        }
        var sum = 0.0
        for t in 0..<workers { sum += partial[t] }
        return sum
    }

    /// `outputError` of a collected `Hessian`, as the mean per token (Σ over tokens / tokens).
    public static func outputError(_ delta: UnsafeBufferPointer<Float>, cols: Int, hessian: Hessian, threads: Int = 2) -> Double {
        outputError(delta, cols: cols, hessian: hessian.values, threads: threads) / Double(max(1, hessian.tokens))
    }

    // MARK: the rounding loop

    static func run<Q: GridQuantizer>(
        _: Q.Type, _ weights: UnsafePointer<Float>, rows: Int, cols: Int, factor: Factor,
        importance: UnsafePointer<Float>, options: Options, dst: UnsafeMutableRawPointer
    ) -> Report {
        let g = Q.groupSize
        // A group's scales are chosen when its first column comes up; all its columns must hold
        // every update by then. That holds when groups tile batches (32 | 128) or batches tile
        // groups (128 | 256, a group then starting a batch).
        let bs = g % options.blockSize == 0 ? options.blockSize : max(g, options.blockSize / g * g)
        let grid = Grid(Q.levelValues)
        let rowBytes = Q.type.rowSize(cols)!
        let gb = Q.groupBytes
        // Up to 256 rows per task, in a multiple of `threads` tasks of nearly equal size. Each
        // task packs the factor and H for its products once: at 64 rows that packing took a
        // third as long as the products themselves. (Rows are independent: the bytes do not
        // depend on the split.)
        let perRound = options.threads * 256
        let tasksWanted = options.threads * ((rows + perRound - 1) / perRound)
        let rowsPerTask = (rows + tasksWanted - 1) / tasksWanted
        let tasks = (rows + rowsPerTask - 1) / rowsPerTask
        let counter = ChunkCounter(tasks)
        let wp = SendablePointer(UnsafeMutablePointer(mutating: weights))
        let ip = SendablePointer(UnsafeMutablePointer(mutating: importance))
        let dp = SendablePointer(dst)
        let total = ReportAccumulator(rows: rows, rounding: options.fallbackToRounding)
        DispatchQueue.concurrentPerform(iterations: min(options.threads, tasks)) { _ in
            let R = rowsPerTask
            let w = UnsafeMutablePointer<Float>.allocate(capacity: R * cols)      // working rows
            let t = UnsafeMutablePointer<Float>.allocate(capacity: R * cols)      // batched update
            let e = UnsafeMutablePointer<Float>.allocate(capacity: R * bs)        // errors of a batch
            let scale = UnsafeMutablePointer<Float>.allocate(capacity: R * g)     // current groups' grids
            let offset = UnsafeMutablePointer<Float>.allocate(capacity: R * g)
            let levels = UnsafeMutablePointer<UInt8>.allocate(capacity: R * cols)
            let sigma2 = UnsafeMutablePointer<Float>.allocate(capacity: R)
            let rounded = UnsafeMutableRawPointer.allocate(byteCount: R * rowBytes, alignment: 16)
            defer {
                w.deallocate(); t.deallocate(); e.deallocate(); scale.deallocate(); offset.deallocate()
                levels.deallocate(); sigma2.deallocate(); rounded.deallocate()
            }
            while let task = counter.next() {
                let r0 = task * R, nr = min(R, rows - r0)
                w.update(from: wp.p + r0 * cols, count: nr * cols)
                for r in 0..<nr {
                    // ggml's σ² for the legacy types is the row's mean square; the original row's.
                    var s: Float = 0
                    let row = w + r * cols
                    for c in 0..<cols { s += row[c] * row[c] }
                    sigma2[r] = s / Float(cols)
                }
                var i1 = 0
                while i1 < cols {
                    let i2 = min(i1 + bs, cols)
                    for j in i1..<i2 {
                        let jg = j % g
                        if jg == 0 {
                            for r in 0..<nr {
                                let block = dp.p + (r0 + r) * rowBytes + (j / g) * gb
                                Q.quantizeGroup(w + r * cols + j, importance: ip.p + j, rowMeanSquare: sigma2[r], into: block)
                                Q.grid(of: UnsafeRawPointer(block), scale: scale + r * g, offset: offset + r * g)
                            }
                        }
                        let u = factor.rows + j * cols
                        let rest = i2 - j - 1
                        for r in 0..<nr {
                            let row = w + r * cols
                            let x = row[j]
                            let (l, q) = grid.nearest(x, scale: scale[r * g + jg], offset: offset[r * g + jg])
                            levels[r * cols + j] = l
                            let err = x - q
                            e[r * bs + (j - i1)] = err
                            if err != 0 && rest > 0 { axpy(row + j + 1, u + j + 1, -err, rest) }
                        }
                    }
                    if i2 < cols {
                        // Later columns at once: t[r][c] = Σ_{j in batch} e[r][j]·Ũ[j][c], c ≥ i2.
                        ek_gemm_float(EK_W_F32, factor.columns + i1, cols * 4, Int64(i2), Int64(cols),
                                      e, bs, Int64(nr), Int64(i2 - i1), t, cols)
                        for r in 0..<nr { subtract(w + r * cols + i2, t + r * cols + i2, cols - i2) }
                    }
                    i1 = i2
                }
                for r in 0..<nr {
                    for gi in 0..<(cols / g) {
                        Q.storeLevels(levels + r * cols + gi * g, into: dp.p + (r0 + r) * rowBytes + gi * gb)
                    }
                }
                // The rows' errors, GPTQ's and (with the fallback) rounding's; w and t are free now.
                let out = dp.p + r0 * rowBytes
                let eGPTQ = rowErrors(Q.self, wp.p + r0 * cols, out, rows: nr, cols: cols, factor: factor, delta: w, product: t)
                var eRounded: [Double] = []
                if options.fallbackToRounding {
                    for r in 0..<nr {
                        Q.quantizeRow(UnsafeBufferPointer(start: wp.p + (r0 + r) * cols, count: cols),
                                      importance: UnsafeBufferPointer(start: ip.p, count: cols),
                                      into: UnsafeMutableRawBufferPointer(start: rounded + r * rowBytes, count: rowBytes))
                    }
                    eRounded = rowErrors(Q.self, wp.p + r0 * cols, rounded, rows: nr, cols: cols, factor: factor, delta: w, product: t)
                }
                var kept = 0.0, roundedRows = 0
                for r in 0..<nr {
                    if options.fallbackToRounding && eRounded[r] < eGPTQ[r] {
                        (out + r * rowBytes).copyMemory(from: rounded + r * rowBytes, byteCount: rowBytes)
                        kept += eRounded[r]
                        roundedRows += 1
                    } else {
                        kept += eGPTQ[r]
                    }
                }
                total.add(error: kept, rounding: eRounded.reduce(0, +), roundedRows: roundedRows)
            }
        }
        return total.report
    }

    /// Δw H Δwᵀ for `rows` rows of `cols` weights at `w` written as blocks at `blocks`;
    /// `delta` and `product` are scratch of rows·cols floats.
    static func rowErrors<Q: GridQuantizer>(
        _: Q.Type, _ w: UnsafePointer<Float>, _ blocks: UnsafeRawPointer, rows: Int, cols: Int, factor: Factor,
        delta: UnsafeMutablePointer<Float>, product: UnsafeMutablePointer<Float>
    ) -> [Double] {
        let rowBytes = Q.type.rowSize(cols)!
        for r in 0..<rows {
            let d = delta + r * cols
            Q.dequantizeRow(UnsafeRawBufferPointer(start: blocks + r * rowBytes, count: rowBytes),
                            into: UnsafeMutableBufferPointer(start: d, count: cols))
            let src = w + r * cols
            for c in 0..<cols { d[c] = src[c] - d[c] }
        }
        // product[r][c] = Σ_k H[c][k]·Δ[r][k] (H is symmetric)
        if ek_float_panel_rows() == factor.panelRows {
            ek_gemm_float_panels(factor.hessianPanels, factor.panelRows, 0, Int64(cols), delta, cols, Int64(rows), Int64(cols), product, cols)
        } else {
            ek_gemm_float(EK_W_F32, factor.hessian, cols * 4, 0, Int64(cols), delta, cols, Int64(rows), Int64(cols), product, cols)
        }
        return (0..<rows).map { r in
            var s = 0.0
            let d = delta + r * cols, p = product + r * cols
            for c in 0..<cols { s += Double(d[c] * p[c]) }
            return s
        }
    }

    @inline(__always)
    static func axpy(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ a: Float, _ n: Int) {
        for k in 0..<n { y[k] += a * x[k] }
    }

    @inline(__always)
    static func subtract(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        for k in 0..<n { y[k] -= x[k] }
    }

    /// The levels of a type, and the nearest one to a value under an element's scale and offset,
    /// with ggml's rounding (`nearest_int` of (x − offset)/scale, ties to even, then clamped), so
    /// that with no error to carry the levels are those ggml's requantization picks.
    struct Grid {
        let values: [Float]
        let uniform: Bool
        let low: Float
        /// Between neighbouring values, for the non-uniform codebook (iq4_nl); a value on a
        /// midpoint goes up, as ggml's best_index_int8 does.
        let midpoints: [Float]

        init(_ values: [Float]) {
            self.values = values
            uniform = values.indices.allSatisfy { values[$0] == values[0] + Float($0) }
            low = values[0]
            midpoints = zip(values, values.dropFirst()).map { ($0 + $1) / 2 }
        }

        /// (level index, its value scale·values[l] + offset as the dequantizer computes it).
        @inline(__always)
        func nearest(_ x: Float, scale: Float, offset: Float) -> (UInt8, Float) {
            let n = values.count
            var v = scale != 0 ? (x - offset) / scale : 0
            if v.isNaN { v = 0 }
            var l: Int
            if uniform {
                // Clamp first so that the 1.5·2²³ rounding trick is exact (and NaN goes low).
                let c = Swift.min(Swift.max(v, low - 1), low + Float(n))
                let r = (c + 12_582_912) - 12_582_912
                l = Swift.min(Swift.max(Int(r - low), 0), n - 1)
            } else {
                l = 0
                for m in midpoints where v >= m { l += 1 }
            }
            return (UInt8(truncatingIfNeeded: l), scale * values[l] + offset)
        }
    }
}

/// Sums the workers' parts of a `GPTQ.Report`.
final class ReportAccumulator: @unchecked Sendable {
    private let lock = NSLock()
    private var r: GPTQ.Report
    init(rows: Int, rounding: Bool) {
        r = GPTQ.Report()
        r.rows = rows
        r.roundingError = rounding ? 0 : nil
    }
    func add(error: Double, rounding: Double, roundedRows: Int) {
        lock.lock(); defer { lock.unlock() }
        r.error += error
        r.roundingError? += rounding
        r.roundedRows += roundedRows
    }
    var report: GPTQ.Report {
        lock.lock(); defer { lock.unlock() }
        return r
    }
}

