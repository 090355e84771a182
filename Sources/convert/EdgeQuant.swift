import ArgumentParser
import Foundation
import MappedIO

@main
struct EdgeQuant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgequant",
        abstract: "Hugging Face safetensors → GGUF for llama.cpp and every ggml engine.",
        discussion: """
        Typical use:
          edgequant convert ./SmolLM2-135M-Instruct --type q8_0
          edgequant inspect ./SmolLM2-135M-Instruct-Q8_0.gguf
        Every error is one line naming the file and the fault; no partial output is \
        ever left behind (a run killed with SIGKILL leaves a \
        .edgequant.tmp-<pid>-<host>.<name> file that the next run into that \
        directory, or `edgequant clean DIR`, removes).

        Exit status: 0 success, 1 an input or runtime error, 2 a usage error \
        (a mistyped command, option or value), 3 a batch quality gate failed.
        """,
        subcommands: [Convert.self, Quantize.self, Inspect.self, Types.self, Perplexity.self, Generate.self, Imatrix.self, Compare.self, BatchCommand.self, Clean.self]
    )
}

/// Prints `edgequant: error: <file>: <fault>` and exits non-zero, instead of ArgumentParser's usage dump.
func fail(_ e: Error) -> Never {
    TempFileRegistry.shared.removeAll()
    FileHandle.standardError.write(Data("edgequant: error: \(e)\n".utf8))
    exit(1)
}

/// On Ctrl-C or SIGTERM the temporary output is removed before the process dies.
func installSignalCleanup() {
    let handler: @convention(c) (Int32) -> Void = { sig in
        TempFileRegistry.shared.removeAll()
        signal(sig, SIG_DFL)
        raise(sig)
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
    signal(SIGHUP, handler)
}

/// Refuses a FIFO or device given as an input file (reading it would hang) and marks the file as an
/// input, so that no output of the run replaces it.
func checkInputFiles(_ paths: String?...) throws {
    for case let p? in paths {
        try InputFile.requireRegularIfPresent(p)
        InputRegistry.shared.remember(path: p)
    }
}

func writeStderr(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

var stderrIsTerminal: Bool { isatty(2) != 0 }

/// A status line on stderr that each update overwrites, and finished steps as lines of their own.
/// Off a terminal (a CI log, `2> file`) only the finished steps are written: the overwrites would
/// pile up as one line of thousands of characters.
struct ProgressLine {
    let quiet: Bool
    let tty = stderrIsTerminal
    private var width = 0

    init(quiet: Bool) { self.quiet = quiet }

    mutating func show(_ line: String, done: Bool) {
        guard !quiet else { return }
        guard tty else {
            if done { writeStderr(line + "\n") }
            return
        }
        // padded to cover all of the line before it
        writeStderr("\r" + line.padding(toLength: max(line.count, width), withPad: " ", startingAt: 0) + (done ? "\n" : ""))
        width = done ? 0 : line.count
    }
}

func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
    if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
    if d >= 1e3 { return String(format: "%.1f kB", d / 1e3) }
    return "\(n) B"
}
