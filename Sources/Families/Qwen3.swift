import GGUFWriter
import Inference
import MappedIO
import ModelMapping

/// Qwen3 (`qwen3`): Qwen2 without the q/k/v biases and with per-head RMSNorm of q and k before
/// rope. conversion/qwen.py `Qwen3Model`, src/models/qwen3.cpp.
public struct Qwen3: Family {
    public static let hfArchitectures = ["Qwen3ForCausalLM"]
    public static let ggufArchitecture = "qwen3"

    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        Standard.textModel(c, arch: ggufArchitecture, headDim: c.headDim, fileType: fileType)
    }

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? {
        if NameMap.isIgnored(hfName) { return .skip }
        let names = NameMap.llama.adding(perLayer: ["self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm"])
        return names.map(hfName, blockCount: c.blockCount).map { .map($0.0, .none) }
    }

    public let dims: ModelDims
    public let tokenEmbd: Weight
    let block: StandardBlock

    public init(_ t: TensorSet) throws {
        dims = try t.standardDims()
        tokenEmbd = try t.matrix(TensorName.tokenEmbd, [dims.nEmbd, dims.nVocab])
        block = try StandardBlock(t, dims: dims, neox: true, qkNorm: true)
    }

    public func layer(_ il: Int, _ x: Matrix, _ pass: Pass) { block.layer(il, x, pass) }
    public func output(_ x: Matrix, _ pass: Pass) -> Matrix { block.output(x, pass) }
}
