import ArgumentParser
import Conversion
import Foundation
import GGMLCore
import MappedIO
import StrictJSON

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a Hugging Face checkpoint directory to a GGUF file.",
        discussion: """
        MODEL_DIR holds config.json, model.safetensors (or model.safetensors.index.json and its \
        shards; F32, F16 or BF16) and tokenizer.json or tokenizer.model. Supported architectures: \
        LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM.

        Output types (per tensor as convert_hf_to_gguf.py chooses; 1-D tensors and norms stay F32):
          f32   everything F32
          f16   matrices F16 (default)
          bf16  matrices BF16
          q8_0  matrices Q8_0 (F16 where a row is not a multiple of 32)

        The file is byte-identical to what llama.cpp's convert_hf_to_gguf.py writes for the same \
        checkpoint and --outtype. It is written to a temporary name beside the destination and \
        renamed when complete; on any error or interrupt, nothing is left behind.

        Examples:
          edgequant convert ./SmolLM2-135M-Instruct --type q8_0
          edgequant convert ./model --type bf16 --outfile /models/ --json
        """
    )

    @Argument(help: "Model directory (or a single .safetensors file beside config.json).")
    var modelDir: String

    @Option(name: [.customLong("type"), .customLong("outtype")], help: "Output type: f32, f16, bf16, q8_0.")
    var type: String = "f16"

    @Option(name: [.short, .customLong("outfile")], help: "Output file, or a directory for the default name (default: the model directory).")
    var outfile: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("pre-tokenizer"), help: "Set tokenizer.ggml.pre for a BPE tokenizer whose pre-tokenizer is not recognised (e.g. llama-bpe, qwen2, smollm, gpt-2).")
    var preTokenizer: String?

    @Flag(help: "No progress on stderr.")
    var quiet = false

    @Flag(help: "Print a JSON summary on stdout.")
    var json = false

    func validate() throws {
        guard OutType(rawValue: type.lowercased()) != nil else {
            throw ValidationError("unknown --type \(type); choose one of: \(OutType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        installSignalCleanup()
        let outType = OutType(rawValue: type.lowercased())!
        do {
            let dir = URL(fileURLWithPath: modelDir).standardizedFileURL.path
            var isDir: ObjCBool = false
            let modelDirectory = FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) && !isDir.boolValue
                ? (dir as NSString).deletingLastPathComponent : dir
            let plan = try ConversionPlan(directory: modelDirectory, outType: outType, preTokenizer: preTokenizer)
            var dest = outfile ?? modelDirectory
            var destIsDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dest, isDirectory: &destIsDir), destIsDir.boolValue {
                dest = (dest as NSString).appendingPathComponent(plan.defaultFileName)
            }
            let showProgress = !quiet && stderrIsTerminal
            let start = Date()
            var lastDraw = Date.distantPast
            let summary = try Converter(plan: plan, threads: threads).run(outfile: dest) { p in
                // Redraw at most ten times a second: a 70B model has thousands of tensors.
                guard showProgress, p.tensorIndex == p.tensorCount || Date().timeIntervalSince(lastDraw) >= 0.1 else { return }
                lastDraw = Date()
                let el = Date().timeIntervalSince(start)
                let rate = el > 0 ? Double(p.bytesWritten) / el : 0
                let eta = rate > 0 ? Double(p.totalBytes - p.bytesWritten) / rate : 0
                writeStderr(String(format: "\r\u{1B}[K[%4d/%4d] %@  %@ / %@  %.0f MB/s  ETA %.0fs", p.tensorIndex, p.tensorCount,
                                   p.name, formatBytes(p.bytesWritten), formatBytes(p.totalBytes), rate / 1e6, eta))
            }
            if showProgress { writeStderr("\r\u{1B}[K") }
            let types = summary.typeCounts.map { "\($0.1) \($0.0.name)" }.joined(separator: ", ")
            if json {
                var t = JSONObject()
                for (ty, n) in summary.typeCounts { t.append(ty.name, .int(n)) }
                let o = JSONValue.obj([
                    "output": .string(summary.path), "file_type": .string(outType.fileType.name),
                    "file_size": .int(summary.fileSize), "tensors": .int(summary.tensorCount),
                    "tensor_types": .object(t), "seconds": .double(summary.seconds),
                    "architecture": .string(plan.config.architecture.ggufArchitecture),
                ])
                print(o.serialized(pretty: true))
            } else if !quiet {
                writeStderr(String(format: "wrote %@ (%@, %d tensors: %@) in %.2fs\n", summary.path,
                                   formatBytes(summary.fileSize), summary.tensorCount, types, summary.seconds))
            }
        } catch {
            fail(error)
        }
    }
}
