import ArgumentParser
import Evaluation
import Foundation
import GGUFWriter
import Inference
import StrictJSON

struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Perplexity of a GGUF model on a text, with llama-perplexity's method.",
        discussion: """
        Non-overlapping chunks of --ctx tokens, BOS replacing each chunk's first token when the \
        vocabulary adds BOS, only the second half of each chunk scored. Prints PPL ± its standard \
        error, tokens scored and tokens/s.
        """
    )

    @Argument(help: "GGUF model.") var model: String
    @Option(name: .customLong("token-ids"), help: "File of token ids (whitespace or comma separated) to evaluate instead of text.")
    var tokenIDs: String
    @Option(help: "Context size.") var ctx = 512
    @Option(help: "Maximum number of chunks.") var chunks: Int?
    @Option(help: "Worker threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func run() throws {
        do {
            let f = try GGUFFile(path: model)
            let m = try Model(gguf: f)
            let text = try String(contentsOfFile: tokenIDs, encoding: .utf8)
            let ids = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" || $0 == "[" || $0 == "]" }).compactMap { Int32($0) }
            let addBOS = f["tokenizer.ggml.add_bos_token"].map { $0 == .bool(true) } ?? (f["tokenizer.ggml.model"]?.stringValue == "llama")
            let bos = addBOS ? f["tokenizer.ggml.bos_token_id"]?.intValue.map(Int32.init) : nil
            let fw = Forward(model: m, engine: F32Engine(threads: threads), threads: threads)
            let r = PerplexityRun(forward: fw, nCtx: ctx, bos: bos).run(tokens: ids, maxChunks: chunks) { done, total, r in
                if isatty(2) != 0 { writeStderr(String(format: "\r[%d/%d] PPL %.4f  %.0f tokens/s", done, total, r.ppl, r.tokensPerSecond)) }
            }
            if isatty(2) != 0 { writeStderr("\n") }
            if json {
                print(JSONValue.obj(["ppl": .double(r.ppl), "ppl_stderr": .double(r.pplStderr), "tokens": .int(r.tokensScored),
                                     "chunks": .int(r.chunks), "tokens_per_second": .double(r.tokensPerSecond)]).serialized(pretty: true))
            } else {
                print(String(format: "PPL = %.4f +/- %.5f  (%d tokens scored in %d chunks of %d, %.1f tokens/s)", r.ppl, r.pplStderr,
                             r.tokensScored, r.chunks, ctx, r.tokensPerSecond))
            }
        } catch {
            fail(error)
        }
    }
}
