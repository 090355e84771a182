import ArgumentParser
import Conversion
import Foundation
import ModelMapping

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a GGUF file or a safetensors file/directory: metadata, tensors, totals.",
        discussion: """
        For GGUF: header, every metadata key (arrays summarised), each tensor's type, shape (ne, \
        innermost first, as ggml prints it) and bytes, and totals per type with bits per weight. \
        For safetensors: files, __metadata__, each tensor's dtype, shape and bytes.

        Examples:
          edgequant inspect model-Q8_0.gguf
          edgequant inspect ./SmolLM2-135M-Instruct --json | jq .totals
        """
    )

    @Argument(help: "A .gguf file, a .safetensors file, or a checkpoint directory.")
    var path: String

    @Flag(help: "Print JSON on stdout.")
    var json = false

    @Flag(name: .customLong("no-tensors"), help: "Omit the per-tensor table from the text output.")
    var noTensors = false

    func run() throws {
        do {
            try ModelFiles.preflight(path) // a FIFO or device is refused, not waited on
            let i = try Inspection(path: path, showTensors: !noTensors)
            print(json ? i.json.serialized(pretty: true) : i.text)
        } catch {
            fail(error)
        }
    }
}
