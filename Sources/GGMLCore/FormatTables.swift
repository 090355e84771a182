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
                                                 .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
                                                 .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m, .iq4_xs]

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

    /// The text of `ggml_iq_grids.h`: the i-quant lattices and sign tables for the C quantizers and
    /// kernels, from the Swift tables (IQGrids.swift); a test keeps the checked-in header equal to it.
    /// Not part of the CKernels umbrella header, so Swift never imports the arrays as tuples.
    public static func iqGridsHeader() -> String {
        var s = """
        // Generated from GGMLCore (GGMLTables.iqGridsHeader()); GGMLCoreTests checks it is current.
        // ggml's i-quant lattices and sign tables (ggml-common.h), for C files that include it.
        #ifndef EDGEQUANT_GGML_IQ_GRIDS_H
        #define EDGEQUANT_GGML_IQ_GRIDS_H

        #include <stdint.h>


        """
        func table<T: FixedWidthInteger>(_ ctype: String, _ name: String, _ values: [T], perLine: Int, hexDigits: Int?) {
            s += "static const \(ctype) \(name)[\(values.count)] = {\n"
            for start in stride(from: 0, to: values.count, by: perLine) {
                let line = values[start..<min(start + perLine, values.count)].map { v -> String in
                    guard let hexDigits else { return String(v) }
                    let h = String(v, radix: 16)
                    return "0x" + String(repeating: "0", count: max(0, hexDigits - h.count)) + h
                }
                s += "    " + line.joined(separator: ", ") + ",\n"
            }
            s += "};\n\n"
        }
        table("uint8_t", "ggml_kmask_iq2xs", kmaskIQ2XS, perLine: 8, hexDigits: nil)
        table("uint8_t", "ggml_ksigns_iq2xs", ksignsIQ2XS, perLine: 16, hexDigits: nil)
        table("uint64_t", "ggml_iq2xxs_grid", iq2xxsGrid, perLine: 4, hexDigits: 16)
        table("uint64_t", "ggml_iq2xs_grid", iq2xsGrid, perLine: 4, hexDigits: 16)
        table("uint64_t", "ggml_iq2s_grid", iq2sGrid, perLine: 4, hexDigits: 16)
        table("uint32_t", "ggml_iq3xxs_grid", iq3xxsGrid, perLine: 8, hexDigits: 8)
        table("uint32_t", "ggml_iq3s_grid", iq3sGrid, perLine: 8, hexDigits: 8)
        table("uint64_t", "ggml_iq1s_grid", iq1sGrid, perLine: 4, hexDigits: 16)
        s += "#endif\n"
        return s
    }
}
