#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Temporary outputs left by processes that died before they could remove them (SIGKILL, an OOM
/// kill, power loss). Ours are named `.edgequant.tmp-<pid>.<name>` (`OutputFile.tempName`); one is
/// stale when its process is gone: `kill(pid, 0)` says ESRCH, or the pid is ours but the file is
/// not open here (a recycled pid), or the file is older than the last boot (pids start again). A
/// live writer's file — another edgequant writing into the same directory — is never touched.
public enum TempFiles {
    public struct Found: Sendable, Equatable {
        public var path: String
        public var pid: Int32
        /// The name format of earlier versions (`.<name>.tmp-<pid>`), recognised by `clean` only.
        public var legacy: Bool
        public var stale: Bool
    }

    /// The pid in one of our temporary names, or nil if `name` is not one. With `legacy`, also the
    /// format earlier versions used.
    public static func pid(inTempName name: String, legacy: Bool = false) -> (pid: Int32, legacy: Bool)? {
        if name.hasPrefix(OutputFile.tempPrefix) {
            let rest = name.dropFirst(OutputFile.tempPrefix.count)
            guard let dot = rest.firstIndex(of: "."), dot != rest.startIndex,
                  rest[..<dot].allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int32(rest[..<dot]), p > 0 else { return nil }
            return (p, false)
        }
        guard legacy, name.hasPrefix("."), let dash = name.lastIndex(of: "-") else { return nil }
        let head = name[..<dash], digits = name[name.index(after: dash)...]
        guard head.hasSuffix(".tmp"), head.count > 5, !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let p = Int32(digits), p > 0 else { return nil }
        return (p, true)
    }

    /// Our temporary files in `directory` (not recursive), stale or not.
    public static func scan(directory: String, legacy: Bool = false) -> [Found] {
        guard let d = opendir(directory) else { return [] }
        defer { closedir(d) }
        var out: [Found] = []
        let boot = bootTime()
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let (pid, isLegacy) = pid(inTempName: name, legacy: legacy) else { continue }
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            out.append(Found(path: path, pid: pid, legacy: isLegacy,
                             stale: isStale(pid: pid, name: name, mtime: Int64(st.st_mtim_sec), boot: boot)))
        }
        return out.sorted { $0.path < $1.path }
    }

    /// Removes the stale temporary files in `directory`; returns their paths. Called by every
    /// `OutputFile` before it creates its own, so a run cleans up after the killed run before it.
    @discardableResult
    public static func sweep(directory: String, legacy: Bool = false) -> [String] {
        var removed: [String] = []
        for f in scan(directory: directory, legacy: legacy) where f.stale {
            if unlink(f.path) == 0 { removed.append(f.path) }
        }
        return removed
    }

    /// `sweep` over `directory` and its subdirectories down to `depth` levels (symlinks not followed).
    @discardableResult
    public static func sweep(tree directory: String, depth: Int, legacy: Bool = false) -> [String] {
        var removed = sweep(directory: directory, legacy: legacy)
        guard depth > 0, let d = opendir(directory) else { return removed }
        var subdirs: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name != ".", name != ".." else { continue }
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            var st = stat()
            if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { subdirs.append(path) }
        }
        closedir(d)
        for s in subdirs { removed += sweep(tree: s, depth: depth - 1, legacy: legacy) }
        return removed
    }

    static func isStale(pid: Int32, name: String, mtime: Int64, boot: Int64?) -> Bool {
        if let boot, mtime < boot { return true }
        if pid == getpid() { return !TempFileRegistry.shared.containsName(name) }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// Seconds since the epoch at the last boot (Linux), to recognise files from before it.
    static func bootTime() -> Int64? {
        #if canImport(Glibc)
        var up = timespec(), now = timespec()
        guard clock_gettime(CLOCK_BOOTTIME, &up) == 0, clock_gettime(CLOCK_REALTIME, &now) == 0 else { return nil }
        return Int64(now.tv_sec) - Int64(up.tv_sec) - 1
        #else
        return nil
        #endif
    }
}

extension stat {
    var st_mtim_sec: Int {
        #if canImport(Darwin)
        return Int(st_mtimespec.tv_sec)
        #else
        return Int(st_mtim.tv_sec)
        #endif
    }
}
