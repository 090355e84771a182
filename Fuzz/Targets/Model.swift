import GGUFWriter
import Families
import Inference
import MappedIO

/// A GGUF model for inference: GGUFFile, then Model(gguf:) (hyper-parameters and weight shapes),
/// then a forward pass over two tokens — with ggml's quantized-activation engine or, for inputs
/// of odd length, the f32 one — where hostile shapes would read or write out of bounds.
@Sendable public func fuzzModel(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
    Scratch.shared.with([("model.gguf", data)]) { dir in
        do {
            let model = try Model(gguf: GGUFFile(path: dir + "/model.gguf"))
            let engine: any MatMulEngine = data.count % 2 == 0 ? GGMLEngine(threads: 1) : F32Engine(threads: 1)
            let fw = Forward(model: model, engine: engine, threads: 1)
            let tokens: [Int32] = [0, Int32(min(1, max(model.hparams.nVocab - 1, 0)))]
            let logits = fw.logits(tokens)
            blackHole(logits.rows)
            logits.free()
            return .accepted
        } catch {
            return rejected(error)
        }
    }
}
