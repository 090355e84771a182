/// ggml's tensor element types, with the ids GGUF stores (ggml.h `enum ggml_type`).
/// Ids 4, 5 and 31–33, 36–38 were removed from ggml and are not valid in a GGUF file.
public enum GGMLType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22
    case iq4_xs = 23, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41, q2_0 = 42

    /// QK_K: the super-block of the k-quants and most i-quants.
    public static let qkK = 256

    /// Elements per block (ggml `blck_size`).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4: 32
        case .nvfp4, .q2_0: 64
        case .q1_0: 128
        default: GGMLType.qkK
        }
    }

    /// Bytes per block (ggml `type_size`).
    public var typeSize: Int {
        let k = GGMLType.qkK
        switch self {
        case .f32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8: return 1
        case .i32: return 4
        case .i64, .f64: return 8
        case .q4_0, .iq4_nl: return 2 + 16
        case .q4_1: return 2 + 2 + 16
        case .q5_0: return 2 + 4 + 16
        case .q5_1: return 2 + 2 + 4 + 16
        case .q8_0: return 2 + 32
        case .q8_1: return 2 + 2 + 32
        case .q2_K: return 2 + 2 + k / 16 + k / 4
        case .q3_K: return 2 + k / 4 + k / 8 + 12
        case .q4_K: return 2 + 2 + k / 2 + 12
        case .q5_K: return 2 + 2 + k / 2 + k / 8 + 12
        case .q6_K: return 2 + k / 2 + k / 4 + k / 16
        case .q8_K: return 4 + k + k / 8
        case .iq2_xxs: return 2 + k / 4
        case .iq2_xs: return 2 + k / 4 + k / 32
        case .iq3_xxs: return 2 + k / 4 + k / 8
        case .iq1_s: return 2 + k / 8 + k / 16
        case .iq3_s: return 2 + k / 4 + k / 8 + k / 32 + 4
        case .iq2_s: return 2 + k / 4 + k / 16
        case .iq4_xs: return 2 + 2 + k / 2 + k / 64
        case .iq1_m: return k / 8 + k / 16 + k / 32
        case .tq1_0: return 2 + 4 * 13
        case .tq2_0: return 2 + 64
        case .mxfp4: return 1 + 16
        case .nvfp4: return 4 + 32
        case .q1_0, .q2_0: return 2 + 16
        }
    }

    /// ggml's name (`ggml_type_name`), as llama.cpp's tools print it.
    public var name: String {
        switch self {
        case .f32: "f32"
        case .f16: "f16"
        case .q4_0: "q4_0"
        case .q4_1: "q4_1"
        case .q5_0: "q5_0"
        case .q5_1: "q5_1"
        case .q8_0: "q8_0"
        case .q8_1: "q8_1"
        case .iq2_xxs: "iq2_xxs"
        case .iq2_xs: "iq2_xs"
        case .iq3_xxs: "iq3_xxs"
        case .iq1_s: "iq1_s"
        case .iq4_nl: "iq4_nl"
        case .iq3_s: "iq3_s"
        case .iq2_s: "iq2_s"
        case .iq4_xs: "iq4_xs"
        case .i8: "i8"
        case .i16: "i16"
        case .i32: "i32"
        case .i64: "i64"
        case .f64: "f64"
        case .iq1_m: "iq1_m"
        case .bf16: "bf16"
        case .tq1_0: "tq1_0"
        case .tq2_0: "tq2_0"
        case .mxfp4: "mxfp4"
        case .nvfp4: "nvfp4"
        case .q1_0: "q1_0"
        case .q2_0: "q2_0"
        case .q2_K: "q2_K"
        case .q3_K: "q3_K"
        case .q4_K: "q4_K"
        case .q5_K: "q5_K"
        case .q6_K: "q6_K"
        case .q8_K: "q8_K"
        }
    }

    /// GGUF/gguf-py spell type names in upper case (`Q8_0`, `BF16`).
    public var upperName: String { name.uppercased() }

    public var description: String { upperName }

    public var bitsPerWeight: Double { Double(typeSize * 8) / Double(blockSize) }

    public var isQuantized: Bool {
        switch self {
        case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: false
        default: true
        }
    }

    /// Bytes a row of `ne0` elements occupies, or nil when `ne0` is not a whole number of blocks
    /// or the product overflows.
    public func rowSize(_ ne0: Int) -> Int? {
        guard ne0 >= 0, ne0 % blockSize == 0 else { return nil }
        let (r, o) = (ne0 / blockSize).multipliedReportingOverflow(by: typeSize)
        return o ? nil : r
    }

    /// Parses names as users and llama.cpp spell them: `q8_0`, `Q8_0`, `bf16`, `q4_k`.
    public init?(name: String) {
        let lower = name.lowercased()
        guard let t = GGMLType.allCases.first(where: { $0.name.lowercased() == lower }) else { return nil }
        self = t
    }
}
