import Foundation
import FuzzTargets
import Testing

/// Every input a fuzzer found that crashed, hung or allocated without bound, minimised and kept in
/// Fixtures/fuzz-regressions/<target>/, replayed through the same target function by that target's
/// replay executable (fuzz-<target> --expect-rejected, built beside this test bundle) in a child
/// process, so one still crashing is reported as such and the others still run. Each must be
/// rejected with a one-line error (the target functions trap on a multi-line one).
///
/// Fixtures/fuzz-regressions/PENDING lists the inputs whose fix is not in yet (`<target>/<file>  why`):
/// they are replayed as known issues, and one that no longer fails is reported so it leaves the list.
struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fixtures/fuzz-regressions").standardized.path

    static var cases: [String] {
        let fm = FileManager.default
        var out: [String] = []
        for target in ((try? fm.contentsOfDirectory(atPath: root)) ?? []).sorted() {
            let dir = root + "/" + target
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else { continue }
            for f in ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted() where !f.hasPrefix(".") {
                out.append(target + "/" + f)
            }
        }
        return out
    }

    static var pending: [String: String] {
        guard let text = try? String(contentsOfFile: root + "/PENDING", encoding: .utf8) else { return [:] }
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: " ", maxSplits: 1)
            if let name = fields.first { out[String(name)] = fields.count > 1 ? String(fields[1]).trimmingCharacters(in: .whitespaces) : "" }
        }
        return out
    }

    /// The directory of the running test bundle, where SwiftPM put the fuzz-<target> executables.
    static var binDir: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // macOS: <bin>/edgequantPackageTests.xctest/Contents/MacOS/edgequantPackageTests
        while dir.path.contains(".xctest") { dir = dir.deletingLastPathComponent() }
        return dir.path
    }

    @Test func everyTargetHasADirectory() {
        for t in fuzzTargets.keys {
            var isDir: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: Self.root + "/" + t, isDirectory: &isDir) && isDir.boolValue,
                    "Fixtures/fuzz-regressions/\(t) is missing")
        }
    }

    @Test(arguments: cases) func replay(_ name: String) throws {
        let target = String(name.split(separator: "/")[0])
        #expect(fuzzTargets[target] != nil, "\(name): no fuzz target \(target)")
        let exe = Self.binDir + "/fuzz-" + target
        try #require(FileManager.default.isExecutableFile(atPath: exe), "\(exe) is not built")
        let run = {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["--expect-rejected", Self.root + "/" + name]
            var env = ProcessInfo.processInfo.environment
            env["SWIFT_BACKTRACE"] = "enable=no"
            p.environment = env
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            // A hang is a finding too: give each input 30 s (they take milliseconds).
            let deadline = Date().addingTimeInterval(30)
            while p.isRunning && Date() < deadline { usleep(10_000) }
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                Issue.record("\(name): hung (killed after 30 s)")
                return
            }
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if p.terminationReason == .uncaughtSignal {
                Issue.record("\(name): crashed (signal \(p.terminationStatus))")
            } else if p.terminationStatus != 0 {
                Issue.record("\(name): \(text.contains(": accepted") ? "accepted, expected a one-line error" : "exit \(p.terminationStatus)")")
            } else {
                #expect(text.contains(": rejected: "), "\(name): \(text)")
            }
        }
        if let why = Self.pending[name] {
            withKnownIssue("pending fix: \(why)") { try run() }
        } else {
            try run()
        }
    }

    @Test func pendingNamesExist() {
        for name in Self.pending.keys { #expect(Self.cases.contains(name), "PENDING names \(name), which is not in Fixtures/fuzz-regressions") }
    }

    @Test func containerSplitsParts() {
        let packed = Container.pack([("config.json", Array("{}".utf8)), ("bogus", [1, 2]), ("tokenizer.json", [0, 0x0A, 7])])
        let parts = packed.withUnsafeBytes { Container.parts($0, allowed: checkpointFiles).map { ($0.name, Array($0.bytes)) } }
        #expect(parts.map(\.0) == ["config.json", "tokenizer.json"])
        #expect(parts.map(\.1) == [Array("{}".utf8), [0, 0x0A, 7]])
    }
}
