import CQuants
import GGMLCore

/// The i-quants below IQ4_NL: 256-element super-blocks of lattice points (iq1/iq2/iq3) or 4-bit
/// codebook indices with 6-bit block scales (iq4_xs). The searches are ggml's `quantize_iq*`,
/// reproduced byte for byte in C (CQuants), where they are vectorised across candidates.
/// `eq_quantize_*` and `eq_dequantize_row_*` of CQuants.h.
typealias CQuantizeRows = @convention(c) (UnsafePointer<Float>?, UnsafeMutableRawPointer?, Int64, Int64, UnsafePointer<Float>?) -> Int
typealias CDequantizeRow = @convention(c) (UnsafeRawPointer?, UnsafeMutablePointer<Float>?, Int64) -> Void

protocol LatticeQuantizer: BlockQuantizer {
    /// `eq_quantize_*`: ggml `quantize_*(src, dst, nrow, n_per_row, quant_weights)`.
    static var quantizeRows: CQuantizeRows { get }
    /// `eq_dequantize_row_*`.
    static var dequantizeRowC: CDequantizeRow { get }
    /// Whether ggml refuses to quantize this type without importance weights (it asserts on NULL).
    static var requiresImportance: Bool { get }
}

extension LatticeQuantizer {
    public static var usesImportance: Bool { true }
    static var requiresImportance: Bool { false }

    /// Without an importance matrix. For the types ggml only quantizes with one (iq2_xxs, iq2_xs,
    /// iq1_s) every column weighs the same here; `convert` and `quantize` refuse those types
    /// without an imatrix before they get this far, as llama-quantize does.
    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer) {
        guard requiresImportance else { return run(src, nil, dst) }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: src.count) { ones in
            ones.initialize(repeating: 1)
            run(src, UnsafeBufferPointer(ones), dst)
        }
    }

    public static func quantizeRow(_ src: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?,
                                   into dst: UnsafeMutableRawBufferPointer) {
        guard let importance else { return quantizeRow(src, into: dst) }
        run(src, importance, dst)
    }

    static func run(_ src: UnsafeBufferPointer<Float>, _ importance: UnsafeBufferPointer<Float>?, _ dst: UnsafeMutableRawBufferPointer) {
        guard let rowBytes = type.rowSize(src.count), src.count > 0 else { return }
        precondition(dst.count >= rowBytes, "dst too small for a row of \(type.name)")
        precondition(importance.map { $0.count == src.count } ?? true, "importance must hold one value per element of the row")
        _ = quantizeRows(src.baseAddress, dst.baseAddress, 1, Int64(src.count), importance?.baseAddress)
    }

    public static func dequantizeRow(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        guard dst.count > 0 else { return }
        precondition(src.count >= type.rowSize(dst.count) ?? .max, "src too small for a row of \(type.name)")
        dequantizeRowC(src.baseAddress, dst.baseAddress, Int64(dst.count))
    }
}

public enum IQ2_XXS: LatticeQuantizer {
    public static let type = GGMLType.iq2_xxs
    static let requiresImportance = true
    static var quantizeRows: CQuantizeRows { eq_quantize_iq2_xxs }
    static var dequantizeRowC: CDequantizeRow { eq_dequantize_row_iq2_xxs }
}

public enum IQ2_XS: LatticeQuantizer {
    public static let type = GGMLType.iq2_xs
    static let requiresImportance = true
    static var quantizeRows: CQuantizeRows { eq_quantize_iq2_xs }
    static var dequantizeRowC: CDequantizeRow { eq_dequantize_row_iq2_xs }
}

public enum IQ2_S: LatticeQuantizer {
    public static let type = GGMLType.iq2_s
    static var quantizeRows: CQuantizeRows { eq_quantize_iq2_s }
    static var dequantizeRowC: CDequantizeRow { eq_dequantize_row_iq2_s }
}

public enum IQ3_XXS: LatticeQuantizer {
    public static let type = GGMLType.iq3_xxs
    static var quantizeRows: CQuantizeRows { eq_quantize_iq3_xxs }
    static var dequantizeRowC: CDequantizeRow { eq_dequantize_row_iq3_xxs }
}

public enum IQ3_S: LatticeQuantizer {
    public static let type = GGMLType.iq3_s
    static var quantizeRows: CQuantizeRows { eq_quantize_iq3_s }
    static var dequantizeRowC: CDequantizeRow { eq_dequantize_row_iq3_s }
}

public enum IQ1_S: LatticeQuantizer {
    public static let type = GGMLType.iq1_s
    static let requiresImportance = true
    static var quantizeRows: CQuantizeRows { eq_quantize_iq1_s }
    static var dequantizeRowC: CDequantizeRow { eq_dequantize_row_iq1_s }
}

public enum IQ1_M: LatticeQuantizer {
    public static let type = GGMLType.iq1_m
    static var quantizeRows: CQuantizeRows { eq_quantize_iq1_m }
    static var dequantizeRowC: CDequantizeRow { eq_dequantize_row_iq1_m }
}

public enum IQ4_XS: LatticeQuantizer {
    public static let type = GGMLType.iq4_xs
    static var quantizeRows: CQuantizeRows { eq_quantize_iq4_xs }
    static var dequantizeRowC: CDequantizeRow { eq_dequantize_row_iq4_xs }
}
