import ArgumentParser
import Calibration
import Conversion
import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import Quantizers
import StrictJSON

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Requantize a GGUF file, like llama-quantize.",
        discussion: """
        Each tensor's type is chosen as llama-quantize chooses it for the file type, and the tensor \
        bytes are identical to llama-quantize's. Quantized input is refused unless \
        --allow-requantize (quality loss compounds).

        File types: \(LlamaFileType.allCases.map(\.name).joined(separator: " "))

        Examples:
          edgequant quantize model-F32.gguf model-Q4_K_M.gguf q4_k_m
          edgequant quantize model-F16.gguf out.gguf q4_0 --tensor-type attn_v=q8_0 \\
              --output-tensor-type q8_0
          edgequant quantize model-F32.gguf out.gguf q6_k 2   # 2 threads
          edgequant quantize model-F32.gguf out.gguf q4_k_m --imatrix imatrix.gguf
          edgequant quantize model-F32.gguf out.gguf q4_k_m --calibrate calib.txt \\
              --target-size 90MB
        """
    )

    @Argument(help: "Input GGUF.") var input: String
    @Argument(help: "Output GGUF.") var output: String
    @Argument(help: "File type, e.g. q4_k_m.") var type: String
    @Argument(help: "Thread count (llama-quantize's trailing positional form).") var nthreads: Int?

    @OptionGroup(title: "Per-tensor types") var mix: MixOptions
    @OptionGroup(title: "Importance matrix") var imatrixOptions: ImatrixOptions
    @OptionGroup(title: "Calibration and size budgets") var calibration: CalibrationOptions

    @Flag(name: .customLong("allow-requantize"), help: "Allow quantized input tensors.")
    var allowRequantize = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @OptionGroup(title: "Split output (llama.cpp's NAME-00001-of-0000N.gguf files)")
    var split: SplitOptions

    @Flag(help: "No progress on stderr.") var quiet = false
    @Flag(help: "Print a JSON summary on stdout.") var json = false

    func validate() throws {
        guard LlamaFileType(name: type) != nil else {
            throw unknownName("file type", type, choices: LlamaFileType.allCases.map { $0.name.lowercased() })
        }
        if let t = threads ?? nthreads, t < 1 { throw ValidationError("thread count must be at least 1") }
        if calibration.calibrate != nil && imatrixOptions.imatrix != nil {
            throw ValidationError("--calibrate collects its own importance matrix; give --imatrix or --calibrate, not both")
        }
    }

    func run() throws {
        installSignalCleanup()
        let fileType = LlamaFileType(name: type)!
        do {
            let inFiles = try GGUFFile.model(input) // refused at once if a FIFO or device; every split of a split model
            try checkInputFiles(imatrixOptions.imatrix, calibration.calibrate)
            if let f = calibration.sensitivityFile { try InputFile.requireRegularIfPresent(f) } // read, and rewritten
            try OutputFile.checkDestination(output) // not a directory, a dangling symlink or the input
            for f in inFiles { InputRegistry.shared.remember(path: f.path) }
            let model = try QuantizePlan.model(from: GGUFFile.modelMetadata(inFiles), path: input)
            var imatrix = try imatrixOptions.load(quiet: quiet || json)
            var options = try mix.policyOptions()
            var encoder: Converter.TensorEncoder? = nil
            let n = threads ?? nthreads ?? ProcessInfo.processInfo.activeProcessorCount
            if calibration.calibrate != nil {
                let base = options
                let result = try calibration.run(model: input, threads: n, quiet: quiet || json, fileTypeMix: { f in
                    Calibrate.tensorTypes(try QuantizePlan(base: GGUFSourcePlan(inFiles), fileType: f, model: model, options: Calibrate.withImatrix(base),
                                                           allowRequantize: allowRequantize, imatrix: nil, path: input))
                }) { types, im in
                    let p = try QuantizePlan(base: GGUFSourcePlan(inFiles), fileType: fileType, model: model,
                                             options: Calibrate.withTypes(types, base), allowRequantize: allowRequantize,
                                             imatrix: im, path: input)
                    return Calibrate.fileSize(p)
                }
                let q = result.quantization(text: calibration.calibrate!, base: base, threads: n)
                (imatrix, encoder, options) = (q.imatrix, q.encoder, q.options)
            }
            let plan = try QuantizePlan(base: GGUFSourcePlan(inFiles), fileType: fileType, model: model, options: options,
                                        allowRequantize: allowRequantize, imatrix: imatrix, path: input)
            imatrixOptions.reportMissing(plan, quiet: quiet || json)
            let showProgress = !quiet && stderrIsTerminal
            let start = Date()
            let summary = try Converter(plan: plan, threads: n, encoder: encoder).run(outfile: output, split: split.limit, progress: progressPrinter(show: showProgress, start: start))
            if showProgress { writeStderr("\r\u{1B}[K") }
            report(summary, fileType: fileType, json: json, quiet: quiet)
        } catch {
            fail(error)
        }
    }
}

struct Types: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tensor types and file types with block size and bits per weight.")

    @Flag(help: "Print JSON on stdout.") var json = false

    func run() {
        let writable = Set(Quantizers.writableTypes)
        if json {
            let rows: [JSONValue] = GGMLType.allCases.map { t in
                .obj(["type": .string(t.name), "id": .int(Int(t.rawValue)), "block_size": .int(t.blockSize),
                      "type_size": .int(t.typeSize), "bpw": .double(t.bitsPerWeight), "writable": .bool(writable.contains(t))])
            }
            print(JSONValue.array(rows).serialized(pretty: true))
            return
        }
        print("tensor types (ggml):")
        print("  type      id  block  bytes    bpw  edgequant")
        for t in GGMLType.allCases {
            print("  " + pad(t.name, 8) + String(format: "%3d  %5d  %5d  %5.2f  ", t.rawValue, t.blockSize, t.typeSize, t.bitsPerWeight)
                  + (writable.contains(t) ? "read/write" : "read"))
        }
        print("\nfile types (--type for convert, TYPE for quantize):")
        for f in LlamaFileType.allCases {
            print("  " + pad(f.name, 8) + String(format: "general.file_type %2d, base tensor type ", f.rawValue) + QuantizationPolicy.defaultType(f).name)
        }
        print("  NF4     bitsandbytes NF4 (64-weight blocks, absmax scale); simulated in memory for evaluation,")
        print("          written as IQ4_NL because llama.cpp has no NF4 type")
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s.padding(toLength: n, withPad: " ", startingAt: 0) }
