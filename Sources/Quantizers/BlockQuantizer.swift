import GGMLCore

/// One ggml tensor type: its block layout and how a row of floats becomes blocks and back.
/// `quantizeRow` must produce exactly the bytes of ggml's `quantize_row_*_ref` (or, for types
/// llama-quantize quantizes differently, what llama-quantize writes).
public protocol BlockQuantizer: Sendable {
    static var type: GGMLType { get }
    /// `src.count` is a multiple of the block size; `dst` holds `src.count / blockSize` blocks.
    static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer)
    /// What `ggml_quantize_chunk` writes for one row given an importance matrix (llama-quantize
    /// `--imatrix`): `importance` holds one value per element of the row (the imatrix entries of
    /// the row's columns), or is nil for ggml's NULL-imatrix path, which is `quantizeRow(_:into:)`.
    ///
    /// `src` must be a whole tensor row: for q4_0, q4_1, q5_0 and q5_1 ggml derives the weights
    /// from the spread of the entire row, so quantizing a row in pieces gives other bytes.
    static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                            into dst: UnsafeMutableRawBufferPointer)
    /// Whether ggml reads the importance matrix for this type; when false, `importance` is ignored.
    static var usesImportance: Bool { get }
    static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>)
}

extension BlockQuantizer {
    /// ggml ignores the imatrix for q8_0, f16, bf16 and f32, so by default so do we.
    public static var usesImportance: Bool { false }

    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        quantizeRow(src, into: dst)
    }

    /// `ggml_quantize_chunk(type, src, dst, 0, nrows, rowLength, importance)`: `src` holds
    /// `src.count / rowLength` whole rows, `importance` nil or `rowLength` values shared by every
    /// row (an imatrix has one entry per column), `dst` room for the rows' blocks.
    public static func quantizeRows(_ src: UnsafeBufferPointer<Float>, rowLength: Int,
                                    importance: UnsafeBufferPointer<Float>?, into dst: UnsafeMutableRawBufferPointer) {
        precondition(rowLength > 0 && src.count % rowLength == 0, "src must hold whole rows of rowLength")
        guard let rowBytes = type.rowSize(rowLength) else {
            preconditionFailure("rowLength \(rowLength) is not a multiple of \(type.name)'s block size")
        }
        precondition(importance.map { $0.count == rowLength } ?? true, "importance must hold rowLength values")
        let rows = src.count / rowLength
        precondition(dst.count >= rows * rowBytes, "dst too small for \(rows) rows of \(type.name)")
        for r in 0..<rows {
            quantizeRow(UnsafeBufferPointer(rebasing: src[(r * rowLength)..<((r + 1) * rowLength)]), importance: importance,
                        into: UnsafeMutableRawBufferPointer(rebasing: dst[(r * rowBytes)..<((r + 1) * rowBytes)]))
        }
    }

    /// The start of `importance` for an imatrix path, or nil for ggml's NULL path.
    @inline(__always)
    static func quantWeights(_ importance: UnsafeBufferPointer<Float>?, for src: UnsafeBufferPointer<Float>) -> UnsafePointer<Float>? {
        guard let importance else { return nil }
        precondition(importance.count == src.count, "importance must hold one value per element of the row")
        return importance.baseAddress
    }
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
        case .iq2_xxs: IQ2_XXS.self
        case .iq2_xs: IQ2_XS.self
        case .iq2_s: IQ2_S.self
        case .iq3_xxs: IQ3_XXS.self
        case .iq3_s: IQ3_S.self
        case .iq1_s: IQ1_S.self
        case .iq1_m: IQ1_M.self
        case .iq4_xs: IQ4_XS.self
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
