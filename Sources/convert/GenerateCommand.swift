import ArgumentParser
import Evaluation
import Foundation
import MappedIO
import Families
import Inference
import ModelMapping
import StrictJSON
import Tokenizer

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Greedy text generation: a quick check that a converted model talks.",
        usage: "edgequant generate MODEL --prompt TEXT [-n N] [<options>]",
        discussion: """
        The prompt is tokenized as llama.cpp's tools do (special tokens added and parsed), then \
        the most likely token is taken n times, stopping early at an end-of-generation token.

        Example:
          edgequant generate SmolLM2-135M-Instruct-Q8_0.gguf --prompt "The capital of France is" -n 32
        """
    )

    @Argument(help: "GGUF model or checkpoint directory.") var model: String
    @Option(help: "Prompt text.") var prompt: String
    @Option(name: .short, help: "Tokens to generate.") var n = 32
    @Option(help: "Worker threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Flag(name: .customLong("f32-activations"), help: "Multiply in f32 instead of ggml-cpu's quantized activations.")
    var f32Activations = false
    @Flag(help: "Print the token ids as JSON instead of text.") var json = false

    func validate() throws {
        guard n >= 0, n <= 1 << 20 else { throw ValidationError("-n must be between 0 and 1048576") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        do {
            let model = try ModelLocation.resolve(self.model).path
            try ModelFiles.preflight(model) // a FIFO among the model's files is refused, not waited on
            let m = try ModelLoader.load(model)
            let tok = try ModelLoader.tokenizer(model, for: m)
            let engine: any MatMulEngine = f32Activations ? F32Engine(threads: threads) : GGMLEngine(threads: threads)
            let fw = Forward(model: m, engine: engine, threads: threads)
            var ids = tok.encode(prompt, addSpecial: true, parseSpecial: true)
            guard !ids.isEmpty else { throw ValidationError("the prompt gives no tokens (this vocabulary adds no BOS): give some text") }
            try m.checkMemory(tokens: ids.count, cacheTokens: ids.count + n, path: model)
            let cache = KVCache(model: m, capacity: ids.count + n)
            var generated: [Int32] = []
            var next = ids
            if !json { FileHandle.standardOutput.write(Data(prompt.utf8)) }
            for _ in 0..<n {
                let logits = fw.logits(next, cache: cache)
                let last = logits.row(logits.rows - 1)
                var best = 0
                for i in 1..<logits.cols where last[i] > last[best] { best = i }
                logits.free()
                let id = Int32(best)
                if tok.isEndOfGeneration(id) { break }
                generated.append(id)
                ids.append(id)
                next = [id]
                if !json { FileHandle.standardOutput.write(Data(tok.piece(id))) }
            }
            if json {
                print(JSONValue.obj(["prompt_tokens": .int(ids.count - generated.count),
                                     "generated": .array(generated.map { .int(Int($0)) }),
                                     "text": .string(tok.decode(generated))]).serialized())
            } else {
                print()
            }
        } catch {
            fail(error)
        }
    }
}
