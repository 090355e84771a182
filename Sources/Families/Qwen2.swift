import GGUFWriter
import Inference
import MappedIO
import ModelMapping

/// Qwen2 (`qwen2`): the llama block with q/k/v biases and NEOX rope on HF's own row layout (no
/// permutation). conversion/qwen.py `Qwen2Model`, src/models/qwen2.cpp.
public struct Qwen2: Family {
    public static let hfArchitectures = ["Qwen2ForCausalLM"]
    public static let ggufArchitecture = "qwen2"

    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        Standard.textModel(c, arch: ggufArchitecture, headDim: c.headDim, fileType: fileType)
    }

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? {
        if NameMap.isIgnored(hfName) { return .skip }
        return NameMap.llama.map(hfName, blockCount: c.blockCount).map { .map($0.0, .none) }
    }

    public let dims: ModelDims
    public let tokenEmbd: Weight
    let block: StandardBlock

    public init(_ t: TensorSet) throws {
        dims = try t.standardDims()
        tokenEmbd = try t.matrix(TensorName.tokenEmbd, [dims.nEmbd, dims.nVocab])
        block = try StandardBlock(t, dims: dims, neox: true)
    }

    public func layer(_ il: Int, _ x: Matrix, _ pass: Pass) { block.layer(il, x, pass) }
    public func output(_ x: Matrix, _ pass: Pass) -> Matrix { block.output(x, pass) }
}
