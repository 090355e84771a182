import ArgumentParser
import Calibration
import Conversion
import Families
import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import ModelMapping
import StrictJSON

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a Hugging Face checkpoint directory to a GGUF file.",
        discussion: """
        MODEL_DIR holds config.json, model.safetensors (or model.safetensors.index.json and its \
        shards; F32, F16 or BF16) and tokenizer.json or tokenizer.model. It may also be a hub name, \
        ORG/NAME or ORG/NAME@REVISION, found in the local Hugging Face cache where \
        `huggingface-cli download` puts it ($HF_HUB_CACHE, $HF_HOME/hub or \
        ~/.cache/huggingface/hub); nothing is downloaded, and a directory of that name wins.

        Model families (config.json architectures → general.architecture), each converted as \
        convert_hf_to_gguf.py converts it and run by perplexity/generate/imatrix as llama.cpp runs it:
        \(Families.all.map { "  \($0.hfArchitectures.joined(separator: ", ")) → \($0.ggufArchitecture)" }.joined(separator: "\n"))

        Output types written as convert_hf_to_gguf.py writes them (1-D tensors and norms stay F32):
          f32   everything F32
          f16   matrices F16 (default)
          bf16  matrices BF16
          q8_0  matrices Q8_0 (F16 where a row is not a multiple of 32)
        Those four are byte-identical to convert_hf_to_gguf.py's output for the same checkpoint.

        Quantized file types, each tensor typed as llama-quantize chooses (attn_v/ffn_down get more \
        bits in Q4_K_M, output and tied embeddings Q6_K, fallbacks where rows don't fit 256-blocks):
          q4_0 q4_1 q5_0 q5_1 q2_k q3_k_s q3_k_m q3_k_l
          q4_k_s q4_k_m q5_k_s q5_k_m q6_k iq4_nl
        The result equals convert_hf_to_gguf.py --outtype f32 followed by llama-quantize, in one pass.
          nf4   bitsandbytes NF4 has no GGUF type llama.cpp loads: written as
                IQ4_NL, marked edgequant.requested_type = nf4 (edgequant types).

        The file is written to a temporary name beside the destination and renamed when complete; \
        on any error or interrupt, nothing is left behind.

        Examples:
          edgequant convert ./SmolLM2-135M-Instruct --type q8_0
          edgequant convert ./model --type bf16 --outfile /models/ --json
          edgequant convert ./model --type q4_k_m --imatrix imatrix.gguf
          edgequant convert HuggingFaceTB/SmolLM2-135M-Instruct --type q4_k_m \\
              --split-max-size 2G            # from the hub cache, in 2 GB files
        """
    )

    @Argument(help: "Model directory, a single .safetensors file beside config.json, or ORG/NAME[@REVISION] from the Hugging Face cache.")
    var modelDir: String

    @Option(name: [.customLong("type"), .customLong("outtype")], help: ArgumentHelp(
        "Output type (see above; default f16). With --target-size/--target-bpw it may be left out: the planner picks every tensor's type and the file is labelled after the type holding most bytes.",
        valueName: "TYPE"))
    var type: String?

    /// The type given, or what a budget alone plans with (every matrix gets its own type; the
    /// llama-quantize target only sizes the rest and is relabelled after planning).
    var requestedType: String { type ?? (calibration.wantsBudget ? "q4_k_m" : "f16") }

    @Option(name: [.short, .customLong("outfile")], help: "Output file, or a directory for the default name (default: the model directory; the current directory for a hub name).")
    var outfile: String?

    @Option(help: "Worker threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("pre-tokenizer"), help: "Set tokenizer.ggml.pre for a BPE tokenizer whose pre-tokenizer is not recognised (e.g. llama-bpe, qwen2, smollm, gpt-2).")
    var preTokenizer: String?

    @OptionGroup(title: "Per-tensor types (quantized file types only)")
    var mix: MixOptions

    @OptionGroup(title: "Importance matrix (llama-quantize file types only)")
    var imatrixOptions: ImatrixOptions

    @OptionGroup(title: "Calibration and size budgets (llama-quantize file types only)")
    var calibration: CalibrationOptions

    @OptionGroup(title: "Split output (llama.cpp's NAME-00001-of-0000N.gguf files)")
    var split: SplitOptions

    @Flag(help: "No progress on stderr.")
    var quiet = false

    @Flag(help: "Print a JSON summary on stdout.")
    var json = false

    func validate() throws {
        let type = requestedType
        guard ConvertTarget(name: type) != nil else {
            throw unknownName("--type", type, choices: ConvertTarget.names)
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if imatrixOptions.imatrix != nil, ConvertTarget(name: type)?.isLlamaQuantize == false {
            throw ValidationError("--imatrix applies to llama-quantize file types (q4_0 … iq4_nl, nf4); \(type) is written as convert_hf_to_gguf.py writes it")
        }
        if calibration.calibrate != nil {
            if ConvertTarget(name: type)?.isLlamaQuantize == false {
                throw ValidationError("--calibrate applies to llama-quantize file types (q4_0 … iq4_nl); \(type) is written as convert_hf_to_gguf.py writes it")
            }
            if imatrixOptions.imatrix != nil {
                throw ValidationError("--calibrate collects its own importance matrix; give --imatrix or --calibrate, not both")
            }
        }
    }

    func run() throws {
        installSignalCleanup()
        var target = ConvertTarget(name: requestedType)!
        do {
            let location = try ModelLocation.resolve(modelDir)
            let dir = URL(fileURLWithPath: location.path).standardizedFileURL.path
            try refuseGGUF(dir)
            var isDir: ObjCBool = false
            let modelDirectory = FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) && !isDir.boolValue
                ? (dir as NSString).deletingLastPathComponent : dir
            // FIFOs and devices are refused before anything opens them; inputs are never overwritten
            try ModelFiles.preflight(dir)
            try checkInputFiles(imatrixOptions.imatrix, calibration.calibrate)
            if let f = calibration.sensitivityFile { try InputFile.requireRegularIfPresent(f) } // read, and rewritten
            if let o = outfile, !isDirectory(o) { try OutputFile.checkDestination(o) }
            var imatrix = try imatrixOptions.load(quiet: quiet || json)
            var options = try mix.policyOptions()
            var encoder: Converter.TensorEncoder? = nil
            if calibration.calibrate != nil {
                let base = options
                let result = try calibration.run(model: modelDirectory, threads: threads, quiet: quiet || json, fileTypeMix: { f in
                    Calibrate.tensorTypes(try ConvertTarget.llamaQuantize(f).plan(directory: modelDirectory, directoryName: location.directoryName,
                                                                                 preTokenizer: preTokenizer, options: Calibrate.withImatrix(base), imatrix: nil).0)
                }) { types, im in
                    Calibrate.fileSize(try target.plan(directory: modelDirectory, directoryName: location.directoryName, preTokenizer: preTokenizer,
                                                       options: Calibrate.withTypes(types, base), imatrix: im).0)
                }
                if type == nil, let t = result.dominantType, let f = QuantizationPolicy.fileType(mostly: t) { target = .llamaQuantize(f) }
                let q = result.quantization(text: calibration.calibrate!, base: base, threads: threads)
                (imatrix, encoder, options) = (q.imatrix, q.encoder, q.options)
            }
            let (plan, defaultName) = try target.plan(directory: modelDirectory, directoryName: location.directoryName,
                                                      preTokenizer: preTokenizer, options: options,
                                                      imatrix: imatrix)
            imatrixOptions.reportMissing(plan, quiet: quiet || json)
            if target == .nf4, !quiet {
                writeStderr("note: GGUF has no NF4 type that llama.cpp loads; writing IQ4_NL blocks (edgequant.requested_type = nf4)\n")
            }
            // never into the hub cache: a hub model's output goes to the current directory
            var dest = outfile ?? (location.hub == nil ? modelDirectory : ".")
            if isDirectory(dest) { dest = (dest as NSString).appendingPathComponent(defaultName) }
            let showProgress = !quiet && stderrIsTerminal
            let start = Date()
            let summary = try Converter(plan: plan, threads: threads, encoder: encoder).run(outfile: dest, split: split.limit, progress: progressPrinter(show: showProgress, start: start))
            if showProgress { writeStderr("\r\u{1B}[K") }
            report(summary, fileType: target.fileType, json: json, quiet: quiet)
        } catch {
            fail(error)
        }
    }
}

/// `convert` given a GGUF: point at `quantize` rather than report a missing config.json beside it.
func refuseGGUF(_ path: String) throws {
    // a FIFO or device is left to the preflight, which refuses it by name
    guard !isDirectory(path), let bytes = try? InputFile.readPrefix(path, count: GGUF.magic.count) else { return }
    if bytes == GGUF.magic || path.lowercased().hasSuffix(".gguf") { throw CommandError.ggufGivenToConvert(path: path) }
}
