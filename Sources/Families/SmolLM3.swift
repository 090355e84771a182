import GGUFWriter
import Inference
import MappedIO
import ModelMapping
import StrictJSON

/// SmolLM3 (`smollm3`): Llama with no rope on every fourth layer (NoPE; llama.cpp fixes the
/// period at 4, convert writes no key for it). conversion/llama.py `SmolLM3Model`,
/// src/models/smollm3.cpp.
public struct SmolLM3: Family {
    public static let hfArchitectures = ["SmolLM3ForCausalLM"]
    public static let ggufArchitecture = "smollm3"

    /// transformers' SmolLM3Config defaults.
    public static var configDefaults: JSONObject {
        var o = JSONObject()
        o.append("hidden_size", .int(2048))
        o.append("intermediate_size", .int(11008))
        o.append("num_hidden_layers", .int(36))
        o.append("num_attention_heads", .int(16))
        o.append("num_key_value_heads", .int(4))
        o.append("rms_norm_eps", .double(1e-6))
        o.append("max_position_embeddings", .int(32768))
        o.append("rope_theta", .double(2_000_000))
        o.append("vocab_size", .int(128256))
        return o
    }

    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        Llama.llamaParameters(c, arch: ggufArchitecture, headDim: c.headDim, fileType: fileType)
    }

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? { Llama.tensor(hfName, c) }
    public static func generatedTensors(_ c: ModelConfig) throws -> [(name: String, values: [Float])] { try Llama.generatedTensors(c) }
    public static func tokenizerOptions(_ c: ModelConfig) -> TokenizerOptions { TokenizerOptions(llamaQuirks: true) }

    public let dims: ModelDims
    public let tokenEmbd: Weight
    let block: StandardBlock

    public init(_ t: TensorSet) throws {
        dims = try t.standardDims()
        tokenEmbd = try t.matrix(TensorName.tokenEmbd, [dims.nEmbd, dims.nVocab])
        // llama_model_smollm3: n_no_rope_layer_step = 4, layer il skips rope when (il + 1) % 4 == 0
        block = try StandardBlock(t, dims: dims, neox: false, noRope: (0..<dims.nLayer).map { ($0 + 1) % 4 == 0 })
    }

    public func layer(_ il: Int, _ x: Matrix, _ pass: Pass) { block.layer(il, x, pass) }
    public func output(_ x: Matrix, _ pass: Pass) -> Matrix { block.output(x, pass) }
}
