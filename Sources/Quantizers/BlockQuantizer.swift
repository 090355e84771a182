import GGMLCore

/// One ggml tensor type: its block layout and how a row of floats becomes blocks and back.
/// `quantizeRow` must produce exactly the bytes of ggml's `quantize_row_*_ref` (or, for types
/// llama-quantize quantizes differently, what llama-quantize writes).
public protocol BlockQuantizer: Sendable {
    static var type: GGMLType { get }
    /// `src.count` is a multiple of the block size; `dst` holds `src.count / blockSize` blocks.
    static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer)
    static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>)
}

public enum Quantizers {
    /// The implementation for a type, or nil when we do not write that type.
    public static func quantizer(for type: GGMLType) -> (any BlockQuantizer.Type)? {
        switch type {
        case .f32: F32Type.self
        case .f16: F16Type.self
        case .bf16: BF16Type.self
        case .q4_0: Q4_0.self
        case .q4_1: Q4_1.self
        case .q5_0: Q5_0.self
        case .q5_1: Q5_1.self
        case .q8_0: Q8_0.self
        case .iq4_nl: IQ4_NL.self
        case .q2_K: Q2_K.self
        case .q3_K: Q3_K.self
        case .q4_K: Q4_K.self
        case .q5_K: Q5_K.self
        case .q6_K: Q6_K.self
        default: nil
        }
    }

    public static func canWrite(_ type: GGMLType) -> Bool { quantizer(for: type) != nil }

    /// Types we can write, in ggml id order.
    public static var writableTypes: [GGMLType] { GGMLType.allCases.filter(canWrite) }
}

public enum F32Type: BlockQuantizer {
    public static let type = GGMLType.f32
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        dst.copyMemory(from: UnsafeRawBufferPointer(src))
    }
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        UnsafeMutableRawBufferPointer(dst).copyMemory(from: src)
    }
}

public enum F16Type: BlockQuantizer {
    public static let type = GGMLType.f16
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let d = dst.bindMemory(to: Float16.self)
        for i in 0..<src.count { d[i] = Float16(src[i]) }
    }
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        SourceElement.f16.load(src.baseAddress!, count: dst.count, into: dst.baseAddress!)
    }
}

public enum BF16Type: BlockQuantizer {
    public static let type = GGMLType.bf16
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        let d = dst.bindMemory(to: UInt16.self)
        for i in 0..<src.count { d[i] = FloatConversion.f32ToBF16(src[i]) }
    }
    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        SourceElement.bf16.load(src.baseAddress!, count: dst.count, into: dst.baseAddress!)
    }
}
