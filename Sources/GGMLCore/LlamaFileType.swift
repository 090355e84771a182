/// `general.file_type`: llama.cpp's `enum llama_ftype` (gguf-py `LlamaFileType`).
public enum LlamaFileType: UInt32, Sendable, CaseIterable {
    case allF32 = 0, mostlyF16 = 1, mostlyQ4_0 = 2, mostlyQ4_1 = 3, mostlyQ8_0 = 7
    case mostlyQ5_0 = 8, mostlyQ5_1 = 9, mostlyQ2_K = 10, mostlyQ3_K_S = 11, mostlyQ3_K_M = 12
    case mostlyQ3_K_L = 13, mostlyQ4_K_S = 14, mostlyQ4_K_M = 15, mostlyQ5_K_S = 16
    case mostlyQ5_K_M = 17, mostlyQ6_K = 18, mostlyIQ2_XXS = 19, mostlyIQ2_XS = 20, mostlyIQ3_XS = 22
    case mostlyIQ3_XXS = 23, mostlyIQ1_S = 24, mostlyIQ4_NL = 25, mostlyIQ3_S = 26, mostlyIQ3_M = 27
    case mostlyIQ2_S = 28, mostlyIQ2_M = 29, mostlyIQ4_XS = 30, mostlyIQ1_M = 31, mostlyBF16 = 32

    /// The spelling used in GGUF file names and by llama-quantize (`Q4_K_M`, `BF16`).
    public var name: String {
        switch self {
        case .allF32: "F32"
        case .mostlyF16: "F16"
        case .mostlyQ4_0: "Q4_0"
        case .mostlyQ4_1: "Q4_1"
        case .mostlyQ8_0: "Q8_0"
        case .mostlyQ5_0: "Q5_0"
        case .mostlyQ5_1: "Q5_1"
        case .mostlyQ2_K: "Q2_K"
        case .mostlyQ3_K_S: "Q3_K_S"
        case .mostlyQ3_K_M: "Q3_K_M"
        case .mostlyQ3_K_L: "Q3_K_L"
        case .mostlyQ4_K_S: "Q4_K_S"
        case .mostlyQ4_K_M: "Q4_K_M"
        case .mostlyQ5_K_S: "Q5_K_S"
        case .mostlyQ5_K_M: "Q5_K_M"
        case .mostlyQ6_K: "Q6_K"
        case .mostlyIQ2_XXS: "IQ2_XXS"
        case .mostlyIQ2_XS: "IQ2_XS"
        case .mostlyIQ3_XS: "IQ3_XS"
        case .mostlyIQ3_XXS: "IQ3_XXS"
        case .mostlyIQ1_S: "IQ1_S"
        case .mostlyIQ4_NL: "IQ4_NL"
        case .mostlyIQ3_S: "IQ3_S"
        case .mostlyIQ3_M: "IQ3_M"
        case .mostlyIQ2_S: "IQ2_S"
        case .mostlyIQ2_M: "IQ2_M"
        case .mostlyIQ4_XS: "IQ4_XS"
        case .mostlyIQ1_M: "IQ1_M"
        case .mostlyBF16: "BF16"
        }
    }

    public init?(name: String) {
        let u = name.uppercased()
        guard let t = LlamaFileType.allCases.first(where: { $0.name == u }) else { return nil }
        self = t
    }
}
