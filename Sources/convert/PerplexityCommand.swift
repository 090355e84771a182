import ArgumentParser
import Evaluation
import Foundation
import GGUFWriter
import Families
import Inference
import MappedIO
import ModelMapping
import StrictJSON

struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Perplexity of a GGUF model on a text, with llama-perplexity's method.",
        usage: "edgequant perplexity MODEL (--text FILE | --token-ids FILE) [<options>]",
        discussion: """
        Non-overlapping chunks of --ctx tokens, BOS replacing each chunk's first token when the \
        vocabulary adds BOS, only the second half of each chunk scored. Prints PPL ± its standard \
        error, tokens scored and tokens/s. Products are computed as ggml-cpu computes them \
        (activations quantized to Q8_0/Q8_1/Q8_K), so the numbers are what llama.cpp delivers.

        KL divergence: --reference MODEL runs both models; --save-logits FILE stores the reference \
        once (llama-perplexity --kl-divergence-base format) and --reference-logits FILE reuses it.

        Examples:
          edgequant perplexity SmolLM2-Q4_K_M.gguf --text wiki-eval.txt --chunks 40
          edgequant perplexity ./SmolLM2-135M-Instruct --text wiki-eval.txt \\
              --save-logits base.logits
          edgequant perplexity SmolLM2-Q4_0.gguf --reference-logits base.logits --json
        """
    )

    @Argument(help: "GGUF model, or a Hugging Face checkpoint directory (the unquantized reference).") var model: String
    @Option(help: "Evaluation text, plain or gzip-compressed.")
    var text: String?
    @Option(name: .customLong("token-ids"), help: "Token ids (whitespace or comma separated) to evaluate instead of --text.")
    var tokenIDs: String?
    @Option(help: "Context size.") var ctx = 512
    @Option(help: "Maximum number of chunks.") var chunks: Int?
    @Option(help: "Worker threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Reference model (checkpoint directory or GGUF, e.g. F32/BF16): adds KL divergence and same-top statistics.")
    var reference: String?
    @Option(name: .customLong("save-logits"), help: "Write this model's log-probs as a reference file (llama-perplexity --kl-divergence-base format).")
    var saveLogits: String?
    @Option(name: .customLong("reference-logits"), help: "Reference log-probs from --save-logits or llama-perplexity --kl-divergence-base.")
    var referenceLogits: String?
    @Flag(help: "Print one JSON object on stdout.") var json = false
    @Flag(name: .customLong("f32-activations"), help: "Multiply in f32 (weight error alone) instead of quantizing activations as ggml-cpu does.")
    var f32Activations = false
    @Flag(name: .customLong("no-bos"), help: "Never put BOS first in a chunk (default: when the vocabulary adds BOS).")
    var noBOS = false

    func validate() throws {
        guard text == nil || tokenIDs == nil else { throw ValidationError("give --text FILE or --token-ids FILE, not both") }
        guard text != nil || tokenIDs != nil || referenceLogits != nil else {
            throw ValidationError("give --text FILE or --token-ids FILE (or --reference-logits FILE, whose tokens are used)")
        }
        guard ctx >= 4 else { throw ValidationError("--ctx must be at least 4") }
    }

    func run() throws {
        do {
            let model = try ModelLocation.resolve(self.model).path
            let reference = try self.reference.map { (r: String) throws -> String in try ModelLocation.resolve(r).path }
            try ModelFiles.preflight(model)
            if let r = reference { try ModelFiles.preflight(r) }
            try checkInputFiles(text, tokenIDs, referenceLogits)
            if let s = saveLogits { try OutputFile.checkDestination(s) }
            let m = try ModelLoader.load(model)
            let ids: [Int32]
            if let t = text {
                ids = try ModelLoader.evaluationTokens(textFile: t, tokenizer: ModelLoader.tokenizer(model, for: m))
            } else if let t = tokenIDs {
                let list = String(decoding: try TextFile.read(t), as: UTF8.self)
                var parsed: [Int32] = []
                for word in list.split(whereSeparator: { " ,\n\r\t[]".contains($0) }) {
                    guard let id = Int32(word) else { throw CommandError.notATokenID(path: t, word: String(word)) }
                    parsed.append(id)
                }
                ids = parsed
            } else {
                ids = [] // the reference logits file carries the tokens
            }
            let bos = noBOS ? nil : m.chunkBOS
            let engine: any MatMulEngine = f32Activations ? F32Engine(threads: threads) : GGMLEngine(threads: threads)
            let fw = Forward(model: m, engine: engine, threads: threads)
            var ref: Evaluation.Reference = .none
            if let r = referenceLogits { ref = .file(try LogitsFileReader(path: r)) }
            if let r = reference {
                let rm = try ModelLoader.load(r)
                ref = .model(Forward(model: rm, engine: engine, threads: threads))
            }
            let out = try Evaluation(forward: fw, nCtx: ctx, bos: bos).run(tokens: ids, source: text ?? tokenIDs ?? referenceLogits ?? model,
                                                                           maxChunks: chunks, reference: ref,
                                                                           saveLogits: saveLogits) { done, total, o in
                if isatty(2) != 0 {
                    let eta = o.perplexity.seconds / Double(done) * Double(total - done)
                    writeStderr(String(format: "\r\u{1B}[K[%d/%d] PPL %.4f  %.0f tokens/s  ETA %.0fs", done, total, o.perplexity.ppl,
                                       o.perplexity.tokensPerSecond, eta))
                }
            }
            if isatty(2) != 0 { writeStderr("\n") }
            let r = out.perplexity
            if json {
                var o = JSONObject()
                o.append("ppl", .double(r.ppl)); o.append("ppl_stderr", .double(r.pplStderr))
                o.append("tokens", .int(r.tokensScored)); o.append("chunks", .int(r.chunks))
                o.append("tokens_per_second", .double(r.tokensPerSecond))
                if let k = out.kld {
                    o.append("kld_mean", .double(k.kldMean.0)); o.append("kld_mean_stderr", .double(k.kldMean.1))
                    o.append("kld_median", .double(k.kldQuantile(0.5))); o.append("kld_p99", .double(k.kldQuantile(0.99)))
                    o.append("kld_max", .double(k.kldQuantile(1))); o.append("same_top_pct", .double(k.sameTopPct))
                    o.append("mean_dp_pct", .double(k.meanPDiffPct)); o.append("rms_dp_pct", .double(k.rmsPDiffPct))
                    o.append("ppl_ratio", .double(k.ppl / k.pplBase)); o.append("ppl_base", .double(k.pplBase))
                }
                print(JSONValue.object(o).serialized(pretty: true))
            } else {
                print(String(format: "PPL = %.4f +/- %.5f  (%d tokens scored in %d chunks of %d, %.1f tokens/s)", r.ppl, r.pplStderr,
                             r.tokensScored, r.chunks, ctx, r.tokensPerSecond))
                if let k = out.kld {
                    print(String(format: "PPL(Q)/PPL(base) = %.6f (base %.4f)   mean KLD = %.6f +/- %.6f   median %.6f  p99 %.6f  max %.6f",
                                 k.ppl / k.pplBase, k.pplBase, k.kldMean.0, k.kldMean.1, k.kldQuantile(0.5), k.kldQuantile(0.99), k.kldQuantile(1)))
                    print(String(format: "mean Δp = %.3f %%   RMS Δp = %.3f %%   same top = %.3f %%", k.meanPDiffPct, k.rmsPDiffPct, k.sameTopPct))
                }
            }
        } catch {
            fail(error)
        }
    }
}
