/// `general.file_type`: llama.cpp's `enum llama_ftype` (gguf-py `LlamaFileType`).
public enum LlamaFileType: UInt32, Sendable, CaseIterable {
    case allF32 = 0, mostlyF16 = 1, mostlyQ4_0 = 2, mostlyQ4_1 = 3, mostlyQ8_0 = 7
    case mostlyQ5_0 = 8, mostlyQ5_1 = 9, mostlyQ2_K = 10, mostlyQ3_K_S = 11, mostlyQ3_K_M = 12
    case mostlyQ3_K_L = 13, mostlyQ4_K_S = 14, mostlyQ4_K_M = 15, mostlyQ5_K_S = 16
    case mostlyQ5_K_M = 17, mostlyQ6_K = 18, mostlyIQ4_NL = 25, mostlyBF16 = 32

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
        case .mostlyIQ4_NL: "IQ4_NL"
        case .mostlyBF16: "BF16"
        }
    }

    public init?(name: String) {
        let u = name.uppercased()
        guard let t = LlamaFileType.allCases.first(where: { $0.name == u }) else { return nil }
        self = t
    }
}
