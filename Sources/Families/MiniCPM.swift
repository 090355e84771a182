import Foundation
import GGUFWriter
import Inference
import MappedIO
import ModelMapping

/// MiniCPM (`minicpm`, MiniCPM-1B/2B): the llama layer (q/k rows permuted, rope on pairs) with
/// μP scales: embeddings × scale_emb, each residual branch × scale_depth/√n_layer, logits ÷
/// (hidden/dim_model_base). conversion/minicpm.py `MiniCPMModel`, src/models/granite.cpp (the
/// graph llama.cpp runs it with).
public struct MiniCPM: Family {
    public static let hfArchitectures = ["MiniCPMForCausalLM"]
    public static let ggufArchitecture = "minicpm"

    // transformers has no MiniCPM class: convert reads config.json as it is, so no defaults.

    public static func hyperParameters(_ c: ModelConfig, fileType: UInt32) throws -> [(String, GGUFValue)] {
        let a = ggufArchitecture
        var kv = Standard.textModel(c, arch: a, headDim: c.headDim, fileType: fileType)
        guard let scaleEmb = c.double(["scale_emb"]), let scaleDepth = c.double(["scale_depth"]),
              let base = c.double(["dim_model_base"]), base != 0 else {
            throw FamilyError.hyperParameters(path: c.path, detail: "scale_emb, scale_depth and a non-zero dim_model_base are required")
        }
        kv.append((GGUFKey.LLM.embeddingScale(a), .float32(Float(scaleEmb))))
        kv.append((GGUFKey.LLM.residualScale(a), .float32(Float(scaleDepth / Double(c.blockCount).squareRoot()))))
        kv.append((GGUFKey.LLM.logitScale(a), .float32(Float(Double(c.embeddingLength) / base))))
        return kv
    }

    public static func tensor(_ hfName: String, _ c: ModelConfig) -> TensorRule? {
        if NameMap.isIgnored(hfName) { return .skip }
        guard let (name, bid) = NameMap.llama.map(hfName, blockCount: c.blockCount) else { return nil }
        // MiniCPMModel.modify_tensors permutes the weights only (biases are left as they are)
        if bid != nil, name.hasSuffix(".attn_q.weight") { return .map(name, .permuteHeads(c.headCount)) }
        if bid != nil, name.hasSuffix(".attn_k.weight") { return .map(name, .permuteHeads(c.kvHeads)) }
        return .map(name, .none)
    }

    // MARK: inference

    public let dims: ModelDims
    public let tokenEmbd: Weight
    let block: StandardBlock
    let embeddingScale: Float
    let residualScale: Float
    let logitScale: Float

    public init(_ t: TensorSet) throws {
        let d = try t.standardDims()
        dims = d
        tokenEmbd = try t.matrix(TensorName.tokenEmbd, [d.nEmbd, d.nVocab])
        // llama_model_minicpm::load_arch_hparams: defaults for older MiniCPM GGUFs
        embeddingScale = try t.float(GGUFKey.LLM.embeddingScale, default: 12)
        residualScale = try t.float(GGUFKey.LLM.residualScale, default: 1.4 / sqrtf(Float(d.nLayer)))
        logitScale = try t.float(GGUFKey.LLM.logitScale, default: 256 / Float(d.nEmbd), positive: true)
        block = try StandardBlock(t, dims: d, neox: false, residualScale: residualScale)
    }

    public func embed(_ tokens: [Int32], _ pass: Pass) -> Matrix {
        pass.embedRows(tokenEmbd, tokens, scale: embeddingScale == 0 ? nil : embeddingScale)
    }

    public func layer(_ il: Int, _ x: Matrix, _ pass: Pass) { block.layer(il, x, pass) }

    public func output(_ x: Matrix, _ pass: Pass) -> Matrix {
        let out = block.output(x, pass)
        pass.scale(out, 1 / logitScale)
        return out
    }
}
