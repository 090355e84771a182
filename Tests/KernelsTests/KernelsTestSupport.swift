import Foundation
import GGMLCore
import Kernels
import Quantizers

/// Deterministic data for the kernel tests (xorshift64*, Box–Muller).
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
    mutating func gaussian() -> Float {
        let u1 = max(uniform(), 1e-7), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
    /// Activation-like rows: gaussian, a per-32 scale over a few decades, a few outlier channels.
    mutating func activations(_ n: Int) -> [Float] {
        var v = (0..<n).map { _ in gaussian() }
        for b in 0..<(n / 32) {
            let s = Float(pow(10, Double(uniform()) * 2 - 1))
            for j in 0..<32 { v[b * 32 + j] *= s }
        }
        for _ in 0..<max(1, n / 128) { v[Int(next() % UInt64(n))] *= 20 }
        return v
    }
    /// Weight-like rows, some with an offset (so the min of q4_1/q5_1/k-quants matters).
    mutating func weights(_ n: Int) -> [Float] {
        let off = uniform() < 0.5 ? Float(0) : 0.01
        return (0..<n).map { _ in gaussian() * 0.05 + off }
    }
}

enum KernelTestSupport {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/kernels")

    static func read(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    static func floats(_ bytes: [UInt8]) -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }

    /// Weight rows quantized with the project's own quantizers (ggml's bytes), row after row.
    static func quantize(_ rows: [[Float]], as type: GGMLType) -> [UInt8] {
        let n = rows[0].count
        let rb = type.rowSize(n)!
        var out = [UInt8](repeating: 0, count: rb * rows.count)
        let q = Quantizers.quantizer(for: type)!
        out.withUnsafeMutableBytes { o in
            for (i, r) in rows.enumerated() {
                r.withUnsafeBufferPointer { src in
                    q.quantizeRow(src, into: UnsafeMutableRawBufferPointer(rebasing: o[(i * rb)..<((i + 1) * rb)]))
                }
            }
        }
        return out
    }

    /// A weight row back to floats (Quantizers' dequantizers = ggml's `to_float`).
    static func dequantize(_ bytes: UnsafeRawPointer, type: GGMLType, n: Int) -> [Double] {
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { o in
            Quantizers.quantizer(for: type)!.dequantizeRow(UnsafeRawBufferPointer(start: bytes, count: type.rowSize(n)!), into: o)
        }
        return out.map(Double.init)
    }

    /// An activation row in a vec_dot type back to floats: q8 types d·q, halves widened.
    static func dequantizeActivation(_ p: UnsafeRawPointer, type: GGMLType, n: Int) -> [Double] {
        func half(_ off: Int) -> Double { Double(Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: off, as: UInt16.self)))) }
        switch type {
        case .q8_0, .q8_1:
            let bb = type == .q8_0 ? 34 : 36, qo = type == .q8_0 ? 2 : 4
            return (0..<n).map { i in
                let b = i / 32
                return half(b * bb) * Double(p.load(fromByteOffset: b * bb + qo + i % 32, as: Int8.self))
            }
        case .q8_K:
            return (0..<n).map { i in
                let b = i / 256
                let d = Float(bitPattern: p.loadUnaligned(fromByteOffset: b * 292, as: UInt32.self))
                return Double(d) * Double(p.load(fromByteOffset: b * 292 + 4 + i % 256, as: Int8.self))
            }
        case .f16: return (0..<n).map { half(2 * $0) }
        case .bf16: return (0..<n).map { Double(Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) << 16)) }
        case .f32: return (0..<n).map { Double(p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self)) }
        default: fatalError()
        }
    }

    /// Σ w·a in double from the dequantized rows, and Σ|w·a| (the scale the tolerance is relative
    /// to: a dot product with cancellation has no meaningful relative error of its own). For the
    /// q8_1 types ggml uses the block sum s as stored (fp16(d·Σq)), not d·Σq, so the min term does too.
    static func reference(weights w: UnsafeRawPointer, type: GGMLType, act a: UnsafeRawPointer, n: Int) -> (dot: Double, scale: Double) {
        let vdt = Kernels.vecDotType(for: type)!
        let wd = dequantize(w, type: type, n: n)
        let ad = dequantizeActivation(a, type: vdt, n: n)
        var dot = 0.0, scale = 0.0
        if vdt == .q8_1 {
            let mOff = 2
            for b in 0..<(n / 32) {
                let blk = w + b * type.typeSize
                let m = Double(Float(Float16(bitPattern: blk.loadUnaligned(fromByteOffset: mOff, as: UInt16.self))))
                let s = Double(Float(Float16(bitPattern: a.loadUnaligned(fromByteOffset: b * 36 + 2, as: UInt16.self))))
                var part = 0.0
                for j in (b * 32)..<(b * 32 + 32) {
                    part += (wd[j] - m) * ad[j]
                    scale += abs(wd[j] * ad[j])
                }
                dot += part + m * s
            }
            return (dot, scale)
        }
        for i in 0..<n {
            dot += wd[i] * ad[i]
            scale += abs(wd[i] * ad[i])
        }
        return (dot, scale)
    }
}
