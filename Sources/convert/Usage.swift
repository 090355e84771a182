import ArgumentParser
import Foundation
import MappedIO

/// Exit statuses, as the README's table documents them.
enum ExitStatus {
    /// An input or runtime error: a file at fault, a disk full, a model that does not fit.
    static let failure: Int32 = 1
    /// A usage error: a mistyped command, option or value.
    static let usage: Int32 = 2
    /// `batch`: a quality gate failed.
    static let gateFailed: Int32 = 3
}

extension EdgeQuant {
    /// ArgumentParser's own main prints a usage block and exits 64; ours keeps every error to one
    /// line with a "did you mean" where a name was mistyped, and the statuses above.
    static func main() {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) } // --help, --version
            usageFailure(error)
        }
        do {
            try command.run()
        } catch let e as ExitCode {
            Foundation.exit(e.rawValue)
        } catch let e as ValidationError {
            usageFailure(e, command: type(of: command))
        } catch {
            // --help and --version arrive as a HelpCommand whose run() throws them
            if exitCode(for: error) == .success { exit(withError: error) }
            fail(error)
        }
    }

    /// `edgequant: error: MESSAGE (did you mean X?); see 'edgequant SUB --help'`, exit 2.
    static func usageFailure(_ error: any Error, command: (any ParsableCommand.Type)? = nil) -> Never {
        TempFileRegistry.shared.removeAll()
        let full = fullMessage(for: error)
        var message = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
        // the subcommand the error is about: named in ArgumentParser's "See 'edgequant X --help'" line
        let sub = command.map { $0._commandName } ?? subcommandName(in: full)
        let subType = configuration.subcommands.first { $0._commandName == sub }
        if !message.contains("Did you mean"), let hint = didYouMean(message, subcommand: subType) {
            message += " (did you mean \(hint)?)"
        }
        let help = sub.map { "edgequant \($0) --help" } ?? "edgequant --help"
        FileHandle.standardError.write(Data("edgequant: error: \(oneLineMessage(message)); see '\(help)'\n".utf8))
        Foundation.exit(ExitStatus.usage)
    }

    static func subcommandName(in full: String) -> String? {
        let names = configuration.subcommands.map { $0._commandName }
        for line in full.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            if let i = words.firstIndex(of: "edgequant"), i + 1 < words.count, names.contains(words[i + 1]) { return words[i + 1] }
        }
        return nil
    }

    /// A suggestion for a mistyped option or subcommand named in ArgumentParser's message.
    static func didYouMean(_ message: String, subcommand: (any ParsableCommand.Type)?) -> String? {
        func quoted(after prefix: String) -> String? {
            guard let r = message.range(of: prefix) else { return nil }
            let rest = message[r.upperBound...]
            guard let end = rest.firstIndex(of: "'") else { return nil }
            return String(rest[..<end])
        }
        if let option = quoted(after: "Unknown option '") {
            let help = (subcommand ?? EdgeQuant.self).helpMessage(columns: 1000)
            let names = Set(help.split(whereSeparator: { " ,\n[]<>()".contains($0) }).map(String.init)
                .filter { $0.hasPrefix("--") && $0.count > 2 && $0.dropFirst(2).allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } })
            let flag = option.split(separator: "=").first.map(String.init) ?? option
            return closest(flag, among: Array(names)).map { "'\($0)'" }
        }
        if subcommand == nil, let word = quoted(after: "nexpected argument '") ?? quoted(after: "nexpected arguments: '") {
            return closest(word, among: configuration.subcommands.map { $0._commandName }).map { "'\($0)'" }
        }
        return nil
    }
}

/// The candidate nearest `word` by edit distance, compared without case, `_` and `-`; nil when
/// none is near enough to be what was meant.
func closest(_ word: String, among candidates: [String]) -> String? {
    func key(_ s: String) -> [Character] { Array(s.lowercased().filter { $0 != "_" && $0 != "-" }) }
    let w = key(word)
    var best: (name: String, distance: Int)?
    for c in candidates.sorted() {
        let d = editDistance(w, key(c))
        if d < (best?.distance ?? Int.max) { best = (c, d) }
    }
    guard let best, best.distance <= max(1, w.count / 3), best.name != word else { return nil }
    return best.name
}

func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    for i in 1...a.count {
        var cur = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        prev = cur
    }
    return prev[b.count]
}

/// "unknown --type q4km; choose one of: …" with "(did you mean q4_k_m?)" when one is near.
func unknownName(_ what: String, _ value: String, choices: [String]) -> ValidationError {
    let hint = closest(value, among: choices).map { " (did you mean \($0)?)" } ?? ""
    return ValidationError("unknown \(what) \(value)\(hint); choose one of: \(choices.joined(separator: ", "))")
}

private func oneLineMessage(_ s: String) -> String {
    s.replacingOccurrences(of: "\n", with: " ")
}
