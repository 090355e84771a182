import CKernels
import Dispatch
import GGMLCore
import Workers

/// CPU matrix products computed the way ggml-cpu computes them, so that perplexity and KL
/// divergence measured with them match llama.cpp's CPU backend.
///
/// Each activation row is converted once into the weight type's vec_dot type (`vecDotType(for:)`:
/// q8_0 for q4_0/q5_0/q8_0/iq4_nl, q8_1 for q4_1/q5_1, q8_K for the k-quants, f16 for f16, bf16
/// for bf16, f32 for f32) by the quantizers ggml-cpu runs on x86-64 (`ActivationQuant`), and every
/// output is the ggml vec_dot of a weight row with an activation row: exact integer sums per
/// block, scaled per block in float.
public enum Kernels {
    /// Weight types `matmul` and `vecDot` accept.
    public static let supportedWeightTypes: [GGMLType] = [
        .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
    ] + iQuants

    /// The i-quants with 256-element super-blocks, which the C kernels (gemm_iq.c) run on q8_K rows.
    public static let iQuants: [GGMLType] = [.iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m, .iq4_xs]

    /// ggml-cpu's `type_traits_cpu[type].vec_dot_type`, or nil for a type we have no kernel for.
    public static func vecDotType(for weightType: GGMLType) -> GGMLType? {
        switch weightType {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q4_0, .q5_0, .q8_0, .iq4_nl: .q8_0
        case .q4_1, .q5_1: .q8_1
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: .q8_K
        case _ where iQuants.contains(weightType): .q8_K
        default: nil
        }
    }

    /// `out[t · nRows + r]` = vec_dot(weight row r, activation row t quantized to the vec_dot type):
    /// ggml's `mul_mat(weights, activations)` with `weights` ne = [nCols, nRows] and `activations`
    /// ne = [nCols, nTokens] (row-major, `activations[t · nCols + k]`).
    ///
    /// `weights` points at row 0; row r starts `r · rowBytes` bytes later (ggml layout of `type`).
    /// Work is split over `threads` workers by weight rows.
    public static func matmul(type: GGMLType, weights: UnsafeRawPointer, rowBytes: Int, nRows: Int, nCols: Int,
                              activations: UnsafePointer<Float>, nTokens: Int,
                              out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        if type == .f32, nTokens > 1, let native = NativeMatmul(type: type) {
            // f32 is its own vec_dot type: the rows go to the kernel as they are, no copy
            native.runF32(weights: weights, rowBytes: rowBytes, nRows: nRows, nCols: nCols,
                          activations: activations, nTokens: nTokens, out: out, threads: threads)
            return
        }
        let prepared = QuantizedActivations(activations, nTokens: nTokens, nCols: nCols, weightType: type, threads: threads)
        matmul(type: type, weights: weights, rowBytes: rowBytes, nRows: nRows, prepared: prepared, out: out, threads: threads)
    }

    /// `matmul` with f32 weights (`weights[r · nCols + k]`).
    public static func matmulF32(weights: UnsafePointer<Float>, nRows: Int, nCols: Int,
                                 activations: UnsafePointer<Float>, nTokens: Int,
                                 out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        matmul(type: .f32, weights: UnsafeRawPointer(weights), rowBytes: nCols * 4, nRows: nRows, nCols: nCols,
               activations: activations, nTokens: nTokens, out: out, threads: threads)
    }

    /// `matmul` with activations already converted by `QuantizedActivations` (for several weight
    /// matrices of the same vec_dot type applied to one input, e.g. q/k/v or gate/up).
    public static func matmul(type: GGMLType, weights: UnsafeRawPointer, rowBytes: Int, nRows: Int,
                              prepared: QuantizedActivations, out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        guard let vdt = vecDotType(for: type) else { preconditionFailure("matmul: unsupported weight type \(type)") }
        precondition(prepared.type == vdt, "matmul: activations are \(prepared.type), \(type) needs \(vdt)")
        let nCols = prepared.nCols, nTokens = prepared.nTokens
        precondition(nCols % type.blockSize == 0 && nCols % vdt.blockSize == 0, "matmul: \(nCols) columns is not a whole number of \(type) blocks")
        precondition(rowBytes >= type.rowSize(nCols)!, "matmul: rowBytes \(rowBytes) < \(type.rowSize(nCols)!)")
        if nRows == 0 || nTokens == 0 { return }
        if nTokens > 1, let native = NativeMatmul(type: type) {
            // 32-row panels (the C kernels' register tile), split evenly over the workers
            let w = SendablePointer(weights), o = SendablePointer(out)
            NativeMatmul.splitRows(nRows, threads: threads) { rows in
                native.run(weights: w.p, rowBytes: rowBytes, rows: rows, act: prepared, out: o.p, ldo: nRows)
            }
            return
        }
        let groups = (nRows + 3) / 4
        let workers = max(1, min(threads, groups))
        let job = MatmulJob(type: type, weights: weights, rowBytes: rowBytes, nRows: nRows, act: prepared, out: out)
        if nTokens == 1 {
            parallel(workers) { w in
                job.runSingleToken(rows: (nRows * w / workers)..<(nRows * (w + 1) / workers))
            }
            return
        }
        prepared.unpack(threads: threads)
        parallel(workers) { w in
            let g0 = groups * w / workers, g1 = groups * (w + 1) / workers
            job.run(groups: g0..<g1)
        }
    }

    /// A 64-byte aligned int16 buffer (freed with `deallocate()`).
    static func allocateInt16(_ count: Int) -> UnsafeMutablePointer<Int16> {
        UnsafeMutableRawPointer.allocate(byteCount: max(64, count * 2), alignment: 64).bindMemory(to: Int16.self, capacity: count)
    }

    /// Runs `body(0..<n)` on `n` threads (the calling thread included).
    static func parallel(_ n: Int, _ body: @Sendable (Int) -> Void) {
        if n <= 1 { body(0); return }
        DispatchQueue.concurrentPerform(iterations: n, execute: body)
    }
}

/// Activation rows converted once to a vec_dot type: the ggml block layout (`raw`, as ggml's
/// `wdata`) and the unpacked form the matmul kernels read (int16 quants with per-block scales, or
/// f32 values already rounded to f16/bf16).
public final class QuantizedActivations: @unchecked Sendable {
    /// The vec_dot type the rows are in.
    public let type: GGMLType
    public let nTokens: Int
    public let nCols: Int
    /// Bytes of one row in ggml layout.
    public let rowBytes: Int
    /// `nTokens` rows of `rowBytes` in ggml layout.
    public let raw: UnsafeMutableRawPointer

    /// int16 quants, `nTokens × nCols` (quantized types).
    let a16: UnsafeMutablePointer<Int16>
    /// Block scales `d` (q8_0/q8_1: per 32; q8_K: per 256), `nTokens × blocks`.
    let ad: UnsafeMutablePointer<Float>
    /// q8_1 block sums `s`.
    let asum: UnsafeMutablePointer<Float>
    /// q8_K bsums, 16 per super-block.
    let bsums: UnsafeMutablePointer<Int16>
    /// f32 values (float types), `nTokens × nCols`.
    let f: UnsafeMutablePointer<Float>
    let blocks: Int

    /// Converts `nTokens` rows of `nCols` floats (`x[t · nCols + k]`) into `vecDotType(for: weightType)`.
    public convenience init(_ x: UnsafePointer<Float>, nTokens: Int, nCols: Int, weightType: GGMLType, threads: Int = 1) {
        guard let vdt = Kernels.vecDotType(for: weightType) else {
            preconditionFailure("unsupported weight type \(weightType)")
        }
        self.init(x, nTokens: nTokens, nCols: nCols, vecDotType: vdt, threads: threads)
    }

    /// Converts `nTokens` rows of `nCols` floats into `vecDotType` (q8_0, q8_1, q8_K, f16, bf16, f32).
    public init(_ x: UnsafePointer<Float>, nTokens: Int, nCols: Int, vecDotType: GGMLType, threads: Int = 1) {
        precondition([.q8_0, .q8_1, .q8_K, .f16, .bf16, .f32].contains(vecDotType), "\(vecDotType) is not a vec_dot type")
        guard let rb = vecDotType.rowSize(nCols) else {
            preconditionFailure("\(nCols) columns is not a whole number of \(vecDotType) blocks")
        }
        type = vecDotType
        self.nTokens = nTokens
        self.nCols = nCols
        rowBytes = rb
        let quantized = vecDotType.isQuantized
        blocks = quantized ? nCols / vecDotType.blockSize : 0
        raw = .allocate(byteCount: max(1, nTokens * rb), alignment: 64)
        a16 = Kernels.allocateInt16(quantized ? nTokens * nCols : 1)
        ad = .allocate(capacity: max(1, nTokens * blocks))
        asum = .allocate(capacity: vecDotType == .q8_1 ? nTokens * blocks : 1)
        bsums = Kernels.allocateInt16(vecDotType == .q8_K ? nTokens * blocks * 16 : 1)
        f = .allocate(capacity: quantized ? 1 : nTokens * nCols)
        let workers = max(1, min(threads, nTokens))
        let src = SendablePointer(x)
        Kernels.parallel(workers) { w in
            for t in (nTokens * w / workers)..<(nTokens * (w + 1) / workers) {
                ActivationQuant.quantizeRow(src.p + t * nCols, count: nCols, as: vecDotType, into: self.raw + t * self.rowBytes)
            }
        }
        // f32/f16 rows are read unpacked by every kernel; bf16 rows as they are by ek_gemm_bf16;
        // int16 quants only by the Swift tiles (which unpack first).
        if !quantized && vecDotType != .bf16 { unpack(threads: threads) }
    }

    private var unpacked = false

    /// Fills the unpacked form from `raw` (once; before handing the rows to concurrent readers).
    func unpack(threads: Int) {
        if unpacked { return }
        unpacked = true
        let workers = max(1, min(threads, nTokens))
        Kernels.parallel(workers) { w in
            for t in (self.nTokens * w / workers)..<(self.nTokens * (w + 1) / workers) { self.convert(token: t) }
        }
    }

    deinit {
        raw.deallocate()
        a16.deallocate()
        ad.deallocate()
        asum.deallocate()
        bsums.deallocate()
        f.deallocate()
    }

    private func convert(token t: Int) {
        let r = raw + t * rowBytes
        switch type {
        case .q8_0, .q8_1:
            let bb = type == .q8_0 ? 34 : 36, qo = type == .q8_0 ? 2 : 4
            let a = a16 + t * nCols
            for b in 0..<blocks {
                let blk = r + b * bb
                ad[t * blocks + b] = Half.load(blk, 0)
                if type == .q8_1 { asum[t * blocks + b] = Half.load(blk, 2) }
                let q = (blk + qo).assumingMemoryBound(to: Int8.self)
                for j in 0..<32 { a[b * 32 + j] = Int16(q[j]) }
            }
        case .q8_K:
            let a = a16 + t * nCols
            for b in 0..<blocks {
                let blk = r + b * 292
                ad[t * blocks + b] = Float(bitPattern: UInt32(littleEndian: blk.loadUnaligned(as: UInt32.self)))
                let q = (blk + 4).assumingMemoryBound(to: Int8.self)
                for j in 0..<256 { a[b * 256 + j] = Int16(q[j]) }
                let bs = (blk + 260).assumingMemoryBound(to: Int16.self)
                for j in 0..<16 { bsums[(t * blocks + b) * 16 + j] = bs[j] }
            }
        case .f16:
            Half.toFloat(UnsafeRawPointer(r).assumingMemoryBound(to: UInt16.self), f + t * nCols, count: nCols)
        case .bf16:
            Half.bf16ToFloat(UnsafeRawPointer(r).assumingMemoryBound(to: UInt16.self), f + t * nCols, count: nCols)
        default:
            (f + t * nCols).update(from: UnsafeRawPointer(r).assumingMemoryBound(to: Float.self), count: nCols)
        }
    }
}


/// The C kernels (CKernels) for the weight types they run natively on this CPU: float weights with
/// AVX2 or AVX-512, quantized weights (legacy and k-quants) with AVX-512 VNNI, i-quants on every CPU
/// (`ek_gemm_iq` runs AVX-512, AVX2 or portable C, with the same bits). Other types and CPUs use the
/// Swift tiles, which give the same quantized results bit for bit.
struct NativeMatmul: Sendable {
    let type: GGMLType

    init?(type: GGMLType) {
        let level = ek_cpu_level()
        switch type {
        case .bf16:
            break // ek_gemm_bf16 has a portable path too
        case .f32, .f16:
            guard level.rawValue >= EK_LEVEL_AVX2.rawValue else { return nil }
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl:
            guard ek_gemm_q8_available() != 0 else { return nil }
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            guard ek_gemm_k_available() != 0 else { return nil }
        case _ where Kernels.iQuants.contains(type):
            break // ek_gemm_iq has a portable path too
        default:
            return nil
        }
        self.type = type
    }

    func runF32(weights: UnsafeRawPointer, rowBytes: Int, nRows: Int, nCols: Int, activations: UnsafePointer<Float>,
                nTokens: Int, out: UnsafeMutablePointer<Float>, threads: Int) {
        let w = SendablePointer(weights), o = SendablePointer(out), x = SendablePointer(activations)
        Self.splitRows(nRows, threads: threads) { rows in
            ek_gemm_float(EK_W_F32, w.p, rowBytes, Int64(rows.lowerBound), Int64(rows.upperBound), x.p, nCols,
                          Int64(nTokens), Int64(nCols), o.p, nRows)
        }
    }

    /// Runs `body` on up to `threads` workers, each with a range of whole 32-row panels (the C
    /// kernels' register tile); empty ranges are skipped.
    static func splitRows(_ nRows: Int, threads: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let panels = (nRows + 31) / 32
        let workers = max(1, min(threads, panels))
        Kernels.parallel(workers) { i in
            let r0 = min(nRows, panels * i / workers * 32), r1 = min(nRows, panels * (i + 1) / workers * 32)
            if r0 < r1 { body(r0..<r1) }
        }
    }

    func run(weights: UnsafeRawPointer, rowBytes: Int, rows: Range<Int>, act: QuantizedActivations,
             out: UnsafeMutablePointer<Float>, ldo: Int) {
        if rows.isEmpty { return }
        switch type {
        case .bf16:
            ek_gemm_bf16(weights, rowBytes, Int64(rows.lowerBound), Int64(rows.upperBound),
                         act.raw.assumingMemoryBound(to: UInt16.self), act.nCols, Int64(act.nTokens), Int64(act.nCols), out, ldo)
        case .f32, .f16:
            let ft = type == .f32 ? EK_W_F32 : EK_W_F16
            ek_gemm_float(ft, weights, rowBytes, Int64(rows.lowerBound), Int64(rows.upperBound),
                          act.f, act.nCols, Int64(act.nTokens), Int64(act.nCols), out, ldo)
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            ek_gemm_k(Int32(type.rawValue), weights, rowBytes, Int64(rows.lowerBound), Int64(rows.upperBound),
                      act.raw, act.rowBytes, Int64(act.nTokens), Int64(act.nCols), out, ldo)
        case _ where Kernels.iQuants.contains(type):
            ek_gemm_iq(Int32(type.rawValue), weights, rowBytes, Int64(rows.lowerBound), Int64(rows.upperBound),
                       act.raw, act.rowBytes, Int64(act.nTokens), Int64(act.nCols), out, ldo)
        default:
            ek_gemm_q8(Int32(type.rawValue), weights, rowBytes, Int64(rows.lowerBound), Int64(rows.upperBound),
                       act.raw, act.rowBytes, Int64(act.nTokens), Int64(act.nCols), out, ldo)
        }
    }
}
