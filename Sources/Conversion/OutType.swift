import GGMLCore

/// What `--type` asks of convert: the four convert_hf_to_gguf output types, and the file type each writes.
public enum OutType: String, CaseIterable, Sendable {
    case f32, f16, bf16, q8_0

    public var fileType: LlamaFileType {
        switch self {
        case .f32: .allF32
        case .f16: .mostlyF16
        case .bf16: .mostlyBF16
        case .q8_0: .mostlyQ8_0
        }
    }

    /// convert_hf_to_gguf's per-tensor rule: 1-D tensors, norms and non-`.weight` tensors stay F32;
    /// a row that is not a whole number of blocks falls back to F16.
    func tensorType(name: String, ne: [Int]) -> GGMLType {
        if ne.count <= 1 || name.hasSuffix("_norm.weight") || !name.hasSuffix(".weight") { return .f32 }
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return ne[0] % GGMLType.q8_0.blockSize == 0 ? .q8_0 : .f16
        }
    }
}
