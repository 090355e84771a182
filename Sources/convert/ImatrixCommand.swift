import ArgumentParser
import Calibration
import Evaluation
import Foundation
import Families
import Inference
import MappedIO
import ModelMapping
import StrictJSON

struct Imatrix: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Importance matrix for llama-quantize --imatrix, collected as llama-imatrix does.",
        usage: "edgequant imatrix MODEL --text FILE [-o OUTFILE] [<options>]",
        discussion: """
        The calibration text is cut into chunks of --ctx tokens (BOS first in each when the \
        vocabulary adds BOS); for every weight of a block (and output.weight with \
        --process-output) the sum of squared input activations per column and the number of \
        tokens are collected over the chunks. The file is llama-imatrix's: GGUF (general.type = \
        imatrix, <name>.in_sum2 / <name>.counts), or the legacy .dat with --output-format dat.

        Examples:
          edgequant imatrix SmolLM2-F32.gguf --text calib.txt --chunks 100 \\
              -o smol.imatrix.gguf
          edgequant quantize SmolLM2-F32.gguf out.gguf q4_k_m \\
              --imatrix smol.imatrix.gguf   # as llama-quantize --imatrix
        """
    )

    @Argument(help: "GGUF model, or a Hugging Face checkpoint directory.") var model: String
    @Option(name: [.customShort("f"), .long], help: "Calibration text, plain or gzip-compressed.") var text: String
    @Option(name: [.short, .customLong("outfile")], help: "Output file.") var outfile = "imatrix.gguf"
    @Option(name: [.short, .long], help: "Context size: tokens per chunk.") var ctx = 512
    @Option(help: "Maximum number of chunks (default: all).") var chunks: Int?
    @Option(name: .customLong("from-chunk"), help: "Skip this many chunks of the text first.") var fromChunk = 0
    @Option(name: [.short, .long], help: "Worker threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Flag(name: .customLong("process-output"), help: "Collect data for output.weight too.") var processOutput = false
    @Option(name: .customLong("output-format"), help: "gguf or dat (legacy). Default: gguf.") var outputFormat: String?
    @Flag(name: .customLong("parse-special"), help: "Parse special tokens in the text.") var parseSpecial = false
    @Flag(name: .customLong("f32-activations"), help: "Multiply in f32 instead of ggml-cpu's quantized activations.")
    var f32Activations = false
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func validate() throws {
        guard ctx >= 4 else { throw ValidationError("--ctx must be at least 4") }
        guard chunks.map({ $0 >= 1 }) ?? true else { throw ValidationError("--chunks must be at least 1") }
        guard fromChunk >= 0 else { throw ValidationError("--from-chunk must not be negative") }
        if let f = outputFormat, ImportanceMatrix.FileFormat(rawValue: f) == nil {
            throw ValidationError("--output-format must be gguf or dat, not \(f)")
        }
    }

    func run() throws {
        installSignalCleanup()
        do {
            let format = outputFormat.flatMap(ImportanceMatrix.FileFormat.init(rawValue:)) ?? .gguf
            if outputFormat == nil && !outfile.hasSuffix(".gguf") {
                writeStderr("edgequant: warning: writing the GGUF imatrix format to \(outfile), whose name does not end in .gguf; "
                            + "use --output-format dat for the legacy format\n")
            }
            let model = try ModelLocation.resolve(self.model).path
            try ModelFiles.preflight(model)
            try checkInputFiles(text)
            // the file is written at the end: find an unwritable or forbidden destination before the hours of work
            try OutputFile.checkDestination(outfile)
            let dir = (outfile as NSString).deletingLastPathComponent
            guard access(dir.isEmpty ? "." : dir, W_OK) == 0 else {
                throw CommandError.cannotWriteInto(path: outfile, directory: dir.isEmpty ? "." : dir, errno: errno)
            }
            let m = try ModelLoader.load(model)
            let tokens = ImatrixCollector.calibrationTokens(text: try TextFile.read(text), tokenizer: try ModelLoader.tokenizer(model, for: m),
                                                            parseSpecial: parseSpecial)
            let engine: any MatMulEngine = f32Activations ? F32Engine(threads: threads) : GGMLEngine(threads: threads)
            let options = ImatrixCollector.Options(nCtx: ctx, maxChunks: chunks, fromChunk: fromChunk, processOutput: processOutput)
            let collector = ImatrixCollector(model: m, engine: engine, threads: threads, options: options)
            let start = Date()
            let tty = isatty(2) != 0
            var tokensDone = 0
            let imatrix = try collector.run(tokens: tokens, datasets: [text], bos: m.chunkBOS) { p in
                tokensDone = p.tokens
                guard tty else { return }
                writeStderr(String(format: "\r\u{1B}[K[%d/%d] %.0f tokens/s  ETA %.0fs", p.chunk, p.chunks, p.tokensPerSecond, p.eta))
            }
            if tty { writeStderr("\n") }
            try imatrix.write(to: outfile, format: format)
            let seconds = Date().timeIntervalSince(start)
            if json {
                var o = JSONObject()
                o.append("output", .string(outfile)); o.append("format", .string(format.rawValue))
                o.append("entries", .int(imatrix.entries.count)); o.append("chunks", .int(imatrix.chunkCount))
                o.append("chunk_size", .int(imatrix.chunkSize)); o.append("tokens", .int(tokensDone))
                o.append("seconds", .double(seconds)); o.append("tokens_per_second", .double(seconds > 0 ? Double(tokensDone) / seconds : 0))
                o.append("datasets", .array(imatrix.datasets.map { .string($0) }))
                print(JSONValue.object(o).serialized(pretty: true))
            } else {
                writeStderr(String(format: "wrote %@ (%@, %d entries, %d chunks of %d) in %.1fs\n", outfile, format.rawValue,
                                   imatrix.entries.count, imatrix.chunkCount, ctx, seconds))
            }
        } catch {
            fail(error)
        }
    }
}
