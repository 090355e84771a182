import Foundation
import MappedIO

/// What one fuzz input came to: accepted, or rejected with an error whose description is one line.
/// A crash, a hang or an allocation over libFuzzer's limits is the other outcome, and the finding.
public enum FuzzOutcome: Equatable, Sendable {
    case accepted
    case rejected(String)
}

/// The targets by name, as the executables, Benchmarks/fuzz.sh and Fixtures/fuzz-regressions/<name>/ call them.
public let fuzzTargets: [String: @Sendable (UnsafeRawBufferPointer) -> FuzzOutcome] = [
    "gguf": fuzzGGUF,
    "model": fuzzModel,
    "safetensors": fuzzSafetensors,
    "torch": fuzzTorch,
    "checkpoint": fuzzCheckpoint,
    "imatrix": fuzzImatrix,
    "tokenizer": fuzzTokenizer,
    "manifest": fuzzManifest,
]

/// Every error a hostile file gives must be one line (the CLI prints it after `error:`); anything
/// else is a finding, so it traps here where libFuzzer sees it.
func rejected(_ error: any Error) -> FuzzOutcome {
    // every module's faults are FileFaults: anything else escaped a parser untyped
    precondition(error is any FileFault, "not a FileFault: \(type(of: error)): \(error)")
    let text = String(describing: error)
    precondition(!text.isEmpty && !text.contains(where: \.isNewline), "error is not one line: \(text.debugDescription)")
    return .rejected(text)
}

/// A scratch directory of this process, emptied before each input (the targets read files by path,
/// as the CLI does). Under TMPDIR, so parallel fuzz jobs and the replay tests do not collide.
final class Scratch: @unchecked Sendable {
    static let shared = Scratch()
    let directory: String
    private let lock = NSLock()

    private init() {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/edgequant-fuzz-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { fatalError("cannot create a scratch directory under \(base)") }
        directory = String(cString: p)
    }

    /// Runs `body` with the scratch directory holding exactly `files` (names are plain file names).
    func with<T>(_ files: [(name: String, bytes: UnsafeRawBufferPointer)], _ body: (String) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        clear()
        for f in files {
            let path = directory + "/" + f.name
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            precondition(fd >= 0, "cannot write \(path)")
            var done = 0
            while done < f.bytes.count {
                let n = write(fd, f.bytes.baseAddress! + done, f.bytes.count - done)
                precondition(n > 0, "cannot write \(path)")
                done += n
            }
            close(fd)
        }
        defer { clear() }
        return body(directory)
    }

    private func clear() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for n in names { unlink(directory + "/" + n) }
    }
}

/// Several files in one fuzz input, so that byte mutation reaches each of them and cannot break
/// the framing: each part starts with a line `\0EQF:<name>\n` and runs to the next such line.
/// Parts with names outside `allowed` (and repeated names) are ignored. Seeds are made by
/// Benchmarks/fuzz.sh from Fixtures/ (`pack`).
public enum Container {
    public static let marker: [UInt8] = Array("\u{0}EQF:".utf8)

    public static func parts(_ data: UnsafeRawBufferPointer, allowed: Set<String>) -> [(name: String, bytes: UnsafeRawBufferPointer)] {
        var starts: [Int] = []
        var i = 0
        let m = marker
        while i + m.count <= data.count {
            if data[i] == m[0], (1..<m.count).allSatisfy({ data[i + $0] == m[$0] }) {
                starts.append(i)
                i += m.count
            } else {
                i += 1
            }
        }
        var out: [(name: String, bytes: UnsafeRawBufferPointer)] = []
        var seen: Set<String> = []
        for (k, s) in starts.enumerated() {
            let end = k + 1 < starts.count ? starts[k + 1] : data.count
            let nameStart = s + m.count
            guard let nl = (nameStart..<end).first(where: { data[$0] == 0x0A }) else { continue }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: data[nameStart..<nl]), as: UTF8.self)
            guard allowed.contains(name), seen.insert(name).inserted else { continue }
            out.append((name, UnsafeRawBufferPointer(rebasing: data[(nl + 1)..<end])))
        }
        return out
    }

    /// The container holding `files` (what the seed generator writes, here for the tests).
    public static func pack(_ files: [(name: String, bytes: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for f in files { out += marker + Array(f.name.utf8) + [0x0A] + f.bytes }
        return out
    }
}

/// The fuzz executables' main outside fuzzing builds: each file in the arguments (directories:
/// their files) run once through `target`, its outcome printed. With `--expect-rejected` the exit
/// status is 1 if any file was accepted (the regression replay wants each one's error).
public func replayFiles(target name: String, _ target: (UnsafeRawBufferPointer) -> FuzzOutcome) {
    var files: [String] = []
    var expectRejected = false
    for arg in CommandLine.arguments.dropFirst() {
        if arg == "--expect-rejected" { expectRejected = true; continue }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: arg, isDirectory: &isDir), isDir.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: arg)) ?? []
            files += names.sorted().map { arg + "/" + $0 }
        } else {
            files.append(arg)
        }
    }
    if files.isEmpty { print("usage: fuzz-\(name) [--expect-rejected] FILE|DIR... (replays inputs; Benchmarks/fuzz.sh builds the fuzzer)") }
    var accepted = 0
    for f in files {
        guard let d = FileManager.default.contents(atPath: f) else { print("\(f): cannot read"); exit(2) }
        switch d.withUnsafeBytes(target) {
        case .accepted: print("\(f): accepted"); accepted += 1
        case .rejected(let e): print("\(f): rejected: \(e)")
        }
    }
    exit(expectRejected && accepted > 0 ? 1 : 0)
}
