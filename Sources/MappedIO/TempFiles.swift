#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Temporary outputs left by processes that died before they could remove them (SIGKILL, an OOM
/// kill, power loss). Ours are named `.edgequant.tmp-<pid>-<host>.<name>` (`OutputFile.tempName`);
/// one written on this host is stale when its process is gone: `kill(pid, 0)` says ESRCH, or the
/// pid is ours but the file is not open here (a recycled pid), or the file is older than the last
/// boot (pids start again). A live writer's file — another edgequant writing into the same
/// directory — is never touched, nor is a file another host wrote (its pid means nothing here).
public enum TempFiles {
    public struct Found: Sendable, Equatable {
        public var path: String
        public var pid: Int32
        /// `OutputFile.hostTag` of the machine that wrote it; nil for the earlier versions' names.
        public var host: String?
        /// The name format of earlier versions (`.<name>.tmp-<pid>`), recognised by `clean` only.
        public var legacy: Bool
        public var stale: Bool
        /// Written on another host: not stale by any rule we can check from here.
        public var foreign: Bool { host.map { $0 != OutputFile.hostTag } ?? false }
    }

    /// The pid and host tag in one of our temporary names, or nil if `name` is not one. With
    /// `legacy`, also the format earlier versions used (no host).
    public static func parse(tempName name: String, legacy: Bool = false) -> (pid: Int32, host: String?, legacy: Bool)? {
        if name.hasPrefix(OutputFile.tempPrefix) {
            let rest = name.dropFirst(OutputFile.tempPrefix.count)
            guard let dash = rest.firstIndex(of: "-"), dash != rest.startIndex,
                  rest[..<dash].allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int32(rest[..<dash]), p > 0 else { return nil }
            let tail = rest[rest.index(after: dash)...]
            guard let dot = tail.firstIndex(of: "."), tail.distance(from: tail.startIndex, to: dot) == 8,
                  tail[..<dot].allSatisfy({ $0.isHexDigit }), tail.index(after: dot) != tail.endIndex else { return nil }
            return (p, String(tail[..<dot]), false)
        }
        guard legacy, name.hasPrefix("."), let dash = name.lastIndex(of: "-") else { return nil }
        let head = name[..<dash], digits = name[name.index(after: dash)...]
        guard head.hasSuffix(".tmp"), head.count > 5, !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let p = Int32(digits), p > 0 else { return nil }
        return (p, nil, true)
    }

    /// The pid in one of our temporary names (see `parse`).
    public static func pid(inTempName name: String, legacy: Bool = false) -> (pid: Int32, legacy: Bool)? {
        parse(tempName: name, legacy: legacy).map { ($0.pid, $0.legacy) }
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
            guard let (pid, host, isLegacy) = parse(tempName: name, legacy: legacy) else { continue }
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let local = host == nil || host == OutputFile.hostTag
            out.append(Found(path: path, pid: pid, host: host, legacy: isLegacy,
                             stale: local && isStale(pid: pid, name: name, mtime: Int64(st.st_mtim_sec), boot: boot)))
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
