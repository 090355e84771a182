/// Format tables shared by the Swift quantizers and the C kernels (which get them, with the block
/// and type sizes of `GGMLType`, from the generated header `CKernels/include/ggml_format.h`).
public enum GGMLTables {
    /// ggml `kvalues_iq4nl`: IQ4_NL's non-uniform 4-bit grid, denser near zero.
    public static let kvaluesIQ4NL: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// block_q8_K (ggml-common.h): `float d; int8_t qs[QK_K]; int16_t bsums[QK_K/16]`.
    public static let q8KQuantsOffset = 4
    public static let q8KBlockSumsOffset = 4 + GGMLType.qkK

    /// The types whose sizes the C kernels read, as `GGML_<NAME>_BLOCK_BYTES` / `GGML_TYPE_<NAME>`.
    public static let kernelTypes: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl,
                                                 .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K]

    /// The text of `ggml_format.h`, from these tables; a test keeps the checked-in header equal to it.
    public static func formatHeader() -> String {
        var s = """
        // Generated from GGMLCore (GGMLTables.formatHeader()); GGMLCoreTests checks it is current.
        // ggml type ids, block sizes and tables the C kernels use, so that no size is a literal there.
        #ifndef EDGEQUANT_GGML_FORMAT_H
        #define EDGEQUANT_GGML_FORMAT_H

        #include <stdint.h>

        #define GGML_QK_K \(GGMLType.qkK)

        """
        for t in kernelTypes {
            let n = t.name.uppercased()
            s += "#define GGML_TYPE_\(n) \(t.rawValue)\n"
            s += "#define GGML_\(n)_BLOCK_BYTES \(t.typeSize)\n"
        }
        s += """

        // block_q8_K field offsets
        #define GGML_Q8_K_QS_OFFSET \(q8KQuantsOffset)
        #define GGML_Q8_K_BSUMS_OFFSET \(q8KBlockSumsOffset)

        static const int8_t ggml_kvalues_iq4nl[16] = {\(kvaluesIQ4NL.map(String.init).joined(separator: ", "))};

        #endif

        """
        return s
    }
}
