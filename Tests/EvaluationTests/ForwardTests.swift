import Conversion
import Evaluation
import Foundation
import Families
import Inference
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// Our forward pass against llama.cpp's: llama-perplexity's log-probs for tiny seeded models
/// (Fixtures/eval/make_eval_golden.py) must be reproduced with a KL divergence of ~0.
@Suite struct ForwardTests {
    @Test(arguments: ["eval-llama", "eval-qwen2", "eval-gemma", "eval-gemma2", "eval-gemma3", "eval-qwen3", "eval-phi3",
                      "eval-minicpm", "eval-smollm3", "eval-phi2"])
    func matchesLlamaPerplexity(_ name: String) throws {
        let dir = fixtures + "/eval/" + name
        let ref = try LogitsFileReader(path: dir + ".logits")
        // Straight from the checkpoint, and through the F32 GGUF llama.cpp ran.
        let gguf = NSTemporaryDirectory() + "eq-eval-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: gguf) }
        _ = try Converter(plan: ConversionPlan(directory: dir, outType: .f32), threads: 2).run(outfile: gguf)
        for path in [dir, gguf] {
            let model = try ModelLoader.load(path)
            let fw = Forward(model: model, engine: F32Engine(threads: 2), threads: 2)
            let out = try Evaluation(forward: fw, nCtx: ref.nCtx, bos: model.chunkBOS)
                .run(tokens: ref.tokens, source: dir + ".logits", maxChunks: nil, reference: .file(ref), saveLogits: nil)
            let k = try #require(out.kld)
            #expect(k.count == ref.nChunk * (ref.nCtx - 1 - ref.nCtx / 2))
            // The reference is stored in 16-bit steps, which alone gives KLD of order 1e-6.
            #expect(k.kldMean.0 < 2e-5, "\(name) from \(path): KLD \(k.kldMean.0)")
            #expect(k.sameTopPct == 100)
            #expect(abs(k.ppl / k.pplBase - 1) < 1e-3)
        }
    }
}
