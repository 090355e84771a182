import Foundation
import GGMLCore
import Kernels
import Quantizers
import Testing

/// Activation quantizers bit for bit against ggml-cpu's own (Fixtures/kernels/make_golden_kernels.py
/// ran the x86 `quantize_row_q8_0/q8_1/q8_K` exported by llama.cpp's libggml-cpu.so).
@Suite struct ActivationQuantGoldenTests {
    static let n = 512

    @Test(arguments: [GGMLType.q8_0, .q8_1, .q8_K])
    func matchesGGMLCPU(_ type: GGMLType) throws {
        let inputs = KernelTestSupport.floats(try KernelTestSupport.read("kern_inputs.bin"))
        let golden = try KernelTestSupport.read("kern_\(type.name).bin")
        let rows = inputs.count / Self.n
        let rb = type.rowSize(Self.n)!
        #expect(golden.count == rows * rb)
        var got = [UInt8](repeating: 0xAA, count: rows * rb)
        inputs.withUnsafeBufferPointer { x in
            got.withUnsafeMutableBytes { o in
                for r in 0..<rows {
                    ActivationQuant.quantizeRow(x.baseAddress! + r * Self.n, count: Self.n, as: type, into: o.baseAddress! + r * rb)
                }
            }
        }
        for r in 0..<rows {
            let a = Array(got[(r * rb)..<((r + 1) * rb)]), b = Array(golden[(r * rb)..<((r + 1) * rb)])
            let firstDiff = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(a == b, "\(type) row \(r): first differing byte \(firstDiff ?? -1)")
        }
    }

    /// Row 1 of the inputs is built of exact ties (k + 0.5 after scaling): ggml's q8_0_ref (roundf)
    /// would round them away from zero; the x86 code llama.cpp runs rounds them to even.
    @Test func tiesRoundToEvenLikeAVX2() {
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = 2.5; x[2] = -2.5; x[3] = 3.5; x[4] = 0.5
        var q = [UInt8](repeating: 0, count: 34)
        x.withUnsafeBufferPointer { p in q.withUnsafeMutableBytes { ActivationQuant.quantizeRowQ8_0(p.baseAddress!, count: 32, into: $0.baseAddress!) } }
        #expect(q[2...6].map { Int8(bitPattern: $0) } == [127, 2, -2, 4, 0])
    }

    @Test func halfConversions() {
        let x: [Float] = [1, -2.5, 65504, 70000, 1e-8, 0x1p-140, -0x1p-130, .infinity, 3.14159]
        var h = [UInt16](repeating: 0, count: x.count), b = h
        x.withUnsafeBufferPointer { p in
            h.withUnsafeMutableBytes { ActivationQuant.convertRowF16(p.baseAddress!, count: x.count, into: $0.baseAddress!) }
            b.withUnsafeMutableBytes { ActivationQuant.convertRowBF16(p.baseAddress!, count: x.count, into: $0.baseAddress!) }
        }
        #expect(h == x.map { Float16($0).bitPattern })
        // bf16: round to nearest even; subnormal inputs flush to signed zero as _mm512_cvtne2ps_pbh does
        #expect(b == [0x3F80, 0xC020, 0x4780, 0x4789, 0x322C, 0x0000, 0x8000, 0x7F80, 0x4049])
    }
}

/// vec_dot against the dequantized operands summed in double, and against ggml's own vec_dot.
@Suite struct VecDotTests {
    static let weightTypes: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .f16, .bf16, .f32]

    @Test(arguments: weightTypes)
    func equalsDequantizedDot(_ type: GGMLType) {
        var rng = TestRNG(UInt64(type.rawValue) + 17)
        let vdt = Kernels.vecDotType(for: type)!
        for n in [256, 512, 1536] {
            for trial in 0..<6 {
                let w = rng.weights(n)
                var x = rng.activations(n)
                if trial == 5 { for i in 0..<min(n, 256) { x[i] = 0 } } // a zero block / super-block
                let wq = KernelTestSupport.quantize([w], as: type)
                var aq = [UInt8](repeating: 0, count: vdt.rowSize(n)!)
                x.withUnsafeBufferPointer { p in aq.withUnsafeMutableBytes { ActivationQuant.quantizeRow(p.baseAddress!, count: n, as: vdt, into: $0.baseAddress!) } }
                let got = wq.withUnsafeBytes { w in aq.withUnsafeBytes { a in Kernels.vecDot(type, n: n, w.baseAddress!, a.baseAddress!) } }
                let ref = wq.withUnsafeBytes { w in aq.withUnsafeBytes { a in KernelTestSupport.reference(weights: w.baseAddress!, type: type, act: a.baseAddress!, n: n) } }
                let err = abs(Double(got) - ref.dot)
                #expect(err <= 1e-5 * ref.scale + 1e-30, "\(type) n=\(n) trial \(trial): got \(got), want \(ref.dot) (Σ|wa| \(ref.scale))")
            }
        }
    }

    /// The same weights and activations through ggml-cpu's vec_dot (its AVX2/AVX512 code, which
    /// sums in another order and with FMA): equal to float rounding.
    @Test(arguments: weightTypes)
    func matchesGGMLVecDot(_ type: GGMLType) throws {
        let json = try JSONSerialization.jsonObject(with: Data(KernelTestSupport.read("kern_dots.json"))) as! [String: Any]
        let n = json["n"] as! Int, rows = json["rows"] as! Int, wrows = json["wrows"] as! Int
        let entry = (json["dots"] as! [String: Any])[type.name] as! [String: Any]
        let bits = entry["bits"] as! [[Int]]
        let vdt = Kernels.vecDotType(for: type)!
        #expect(entry["vec_dot_type"] as! Int == Int(vdt.rawValue))
        let inputs = KernelTestSupport.floats(try KernelTestSupport.read("kern_inputs.bin"))
        let wq = try KernelTestSupport.read("kern_w_\(type.name).bin")
        // our quantizers write the same weight bytes as ggml_quantize_chunk
        let wf = KernelTestSupport.floats(try KernelTestSupport.read("kern_weights_f32.bin"))
        #expect(KernelTestSupport.quantize((0..<wrows).map { Array(wf[($0 * n)..<(($0 + 1) * n)]) }, as: type) == wq)
        let wrb = type.rowSize(n)!, arb = vdt.rowSize(n)!
        var aq = [UInt8](repeating: 0, count: rows * arb)
        inputs.withUnsafeBufferPointer { p in
            aq.withUnsafeMutableBytes { o in
                for j in 0..<rows { ActivationQuant.quantizeRow(p.baseAddress! + j * n, count: n, as: vdt, into: o.baseAddress! + j * arb) }
            }
        }
        wq.withUnsafeBytes { w in
            aq.withUnsafeBytes { a in
                for i in 0..<wrows {
                    for j in 0..<rows {
                        let wp = w.baseAddress! + i * wrb, ap = a.baseAddress! + j * arb
                        let got = Kernels.vecDot(type, n: n, wp, ap)
                        let ggml = Float(bitPattern: UInt32(bits[i][j]))
                        let ref = KernelTestSupport.reference(weights: wp, type: type, act: ap, n: n)
                        #expect(abs(Double(got) - Double(ggml)) <= 1e-5 * ref.scale + 1e-30,
                                "\(type) w\(i)·a\(j): ours \(got), ggml \(ggml) (Σ|wa| \(ref.scale))")
                    }
                }
            }
        }
    }
}

/// matmul against the naive loop of vec_dot over (token, row): the tiled integer kernels sum the
/// same exact block integers in the same block order, so quantized types agree bit for bit.
@Suite struct MatmulTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        let type: GGMLType, rows: Int, cols: Int, tokens: Int, threads: Int
        var testDescription: String { "\(type) \(rows)x\(cols) x\(tokens) t\(threads)" }
    }

    static let shapes: [Shape] = {
        var s: [Shape] = []
        for t in VecDotTests.weightTypes {
            let cols = WeightTypeInfo.isK(t) ? 512 : 96
            s.append(Shape(type: t, rows: 13, cols: cols, tokens: 7, threads: 2))
            s.append(Shape(type: t, rows: 8, cols: cols, tokens: 1, threads: 1))
        }
        s.append(Shape(type: .q8_0, rows: 576, cols: 1536, tokens: 19, threads: 3))
        s.append(Shape(type: .q4_K, rows: 130, cols: 2560, tokens: 33, threads: 2))
        s.append(Shape(type: .q4_1, rows: 66, cols: 1024, tokens: 300, threads: 2))
        s.append(Shape(type: .f32, rows: 9, cols: 77, tokens: 5, threads: 2))
        s.append(Shape(type: .f16, rows: 9, cols: 77, tokens: 4, threads: 1))
        return s
    }()

    @Test(arguments: shapes)
    func equalsNaiveLoop(_ s: Shape) {
        var rng = TestRNG(UInt64(s.rows * 1000 + s.cols + s.tokens))
        let w = (0..<s.rows).map { _ in rng.weights(s.cols) }
        let x = (0..<s.tokens).flatMap { _ in rng.activations(s.cols) }
        let wq = KernelTestSupport.quantize(w, as: s.type)
        let rb = s.type.rowSize(s.cols)!
        var out = [Float](repeating: .nan, count: s.rows * s.tokens)
        wq.withUnsafeBytes { wp in
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    Kernels.matmul(type: s.type, weights: wp.baseAddress!, rowBytes: rb, nRows: s.rows, nCols: s.cols,
                                   activations: xp.baseAddress!, nTokens: s.tokens, out: op.baseAddress!, threads: s.threads)
                }
            }
        }
        let act = x.withUnsafeBufferPointer {
            QuantizedActivations($0.baseAddress!, nTokens: s.tokens, nCols: s.cols, weightType: s.type)
        }
        var worst = 0.0
        wq.withUnsafeBytes { wp in
            for t in 0..<s.tokens {
                for r in 0..<s.rows {
                    let want = Kernels.vecDot(s.type, n: s.cols, wp.baseAddress! + r * rb, act.raw + t * act.rowBytes)
                    let got = out[t * s.rows + r]
                    if s.type.isQuantized {
                        if got.bitPattern != want.bitPattern { worst = .infinity }
                    } else {
                        let ref = KernelTestSupport.reference(weights: wp.baseAddress! + r * rb, type: s.type,
                                                              act: act.raw + t * act.rowBytes, n: s.cols)
                        worst = max(worst, abs(Double(got) - Double(want)) / max(ref.scale, 1e-30))
                    }
                }
            }
        }
        #expect(worst <= 1e-6, "\(s.testDescription): worst relative difference \(worst)")
    }

    @Test func matmulF32MatchesNaive() {
        var rng = TestRNG(5)
        let (rows, cols, tokens) = (11, 70, 6)
        let w = (0..<(rows * cols)).map { _ in rng.gaussian() }
        let x = (0..<(tokens * cols)).map { _ in rng.gaussian() }
        var out = [Float](repeating: 0, count: rows * tokens)
        w.withUnsafeBufferPointer { wp in x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
            Kernels.matmulF32(weights: wp.baseAddress!, nRows: rows, nCols: cols, activations: xp.baseAddress!,
                              nTokens: tokens, out: op.baseAddress!, threads: 2)
        } } }
        for t in 0..<tokens {
            for r in 0..<rows {
                var s = 0.0, a = 0.0
                for k in 0..<cols { s += Double(w[r * cols + k]) * Double(x[t * cols + k]); a += abs(Double(w[r * cols + k]) * Double(x[t * cols + k])) }
                #expect(abs(Double(out[t * rows + r]) - s) <= 1e-6 * a)
            }
        }
    }
}

enum WeightTypeInfo {
    static func isK(_ t: GGMLType) -> Bool { t.blockSize == 256 }
}

/// Throughput (opt-in: KERNELS_BENCH=1; meaningful in a release build,
/// `swift test -c release --scratch-path .build-kern --filter KernelsBench`).
@Suite struct KernelsBench {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["KERNELS_BENCH"] == "1"))
    func throughput() {
        let threads = Int(ProcessInfo.processInfo.environment["KERNELS_BENCH_THREADS"] ?? "2") ?? 2
        let tokens = 512
        var rng = TestRNG(99)
        var lines: [String] = []
        let types: [GGMLType] = ProcessInfo.processInfo.environment["KERNELS_BENCH_TYPES"].map {
            $0.split(separator: ",").compactMap { GGMLType(name: String($0)) }
        } ?? [.q8_0, .q4_K, .q4_0, .q6_K, .f16, .f32]
        for type in types {
            for (rows, cols) in [(1536, 576), (576, 1536)] where type.rowSize(cols) != nil {
                let w = (0..<rows).map { _ in rng.weights(cols) }
                let wq = KernelTestSupport.quantize(w, as: type)
                let x = (0..<(tokens * cols)).map { _ in rng.gaussian() }
                var out = [Float](repeating: 0, count: rows * tokens)
                let rb = type.rowSize(cols)!
                var best = Double.infinity
                for _ in 0..<5 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    wq.withUnsafeBytes { wp in x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
                        Kernels.matmul(type: type, weights: wp.baseAddress!, rowBytes: rb, nRows: rows, nCols: cols,
                                       activations: xp.baseAddress!, nTokens: tokens, out: op.baseAddress!, threads: threads)
                    } } }
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                let gflops = 2 * Double(rows * cols * tokens) / best / 1e9
                lines.append("\(type.name) \(rows)x\(cols) (out x in) x \(tokens) tokens, \(threads) threads: \(String(format: "%.2f", best * 1e3)) ms, \(String(format: "%.1f", gflops)) GFLOP/s")
            }
        }
        print(lines.joined(separator: "\n"))
    }
}
