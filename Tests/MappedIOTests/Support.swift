import Foundation
import MappedIO

/// A fresh directory under the system temp directory; the caller removes it.
func scratchDirectory(_ tag: String) -> String {
    let p = (NSTemporaryDirectory() as NSString).appendingPathComponent("edgequant-\(tag)-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

final class ResultBox<T>: @unchecked Sendable { var value: T? }

/// Runs `body` on another thread and waits at most `seconds`: a call that would block forever (an
/// open of a FIFO without O_NONBLOCK) fails the test instead of hanging it. On a timeout the FIFO
/// at `unblock` is opened for writing, which releases a reader stuck in open().
func withinSeconds<T: Sendable>(_ seconds: Double, unblock: String? = nil, _ body: @escaping @Sendable () -> T) -> T? {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        box.value = body()
        done.signal()
    }
    if done.wait(timeout: .now() + seconds) == .success { return box.value }
    if let u = unblock {
        let fd = open(u, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
        _ = done.wait(timeout: .now() + 5)
    }
    return nil
}

/// A pid that belonged to a process which has exited and been reaped.
func deadPID() -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/true")
    try! p.run()
    p.waitUntilExit()
    return p.processIdentifier
}

/// Runs a command, returning whether it exited 0 (false if it could not run).
@discardableResult
func shell(_ args: [String]) -> Bool {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
}

/// A directory on a file system that is `readOnly`, or that holds only `capacity` bytes: a real
/// tmpfs when this process may mount one (root in CI), else `OutputFaults`, the writer's test
/// double, for the same directory. Never skipped: `body` learns which one it got.
func withConstrainedDirectory(capacity: Int, readOnly: Bool = false, _ body: (_ dir: String, _ realMount: Bool) throws -> Void) rethrows {
    let dir = scratchDirectory(readOnly ? "ro" : "full")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let options = readOnly ? "ro,size=64k" : "size=\(capacity)"
    if getuid() == 0, shell(["mount", "-t", "tmpfs", "-o", options, "tmpfs", dir]) {
        defer { shell(["umount", "-l", dir]) }
        try body(dir, true)
    } else {
        OutputFaults.shared.install(.init(directory: dir, errno: readOnly ? EROFS : ENOSPC, capacity: capacity))
        defer { OutputFaults.shared.remove(directory: dir) }
        try body(dir, false)
    }
}

func entries(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}
