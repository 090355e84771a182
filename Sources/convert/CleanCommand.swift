import ArgumentParser
import Foundation
import MappedIO

struct Clean: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove the temporary files that killed runs left in a directory.",
        usage: "edgequant clean DIRECTORY ... [<options>]",
        discussion: """
        Every output is written to a temporary file beside it, named .edgequant.tmp-<pid>-<host>.<name>, \
        and renamed when complete. A run killed outright (SIGKILL, out of memory, power loss) cannot \
        remove its temporary file; the next output written into the same directory removes it, and \
        so does this command. A file whose process is still running is kept (another edgequant may \
        be writing it), and so is one written on another host (a shared directory), whose process \
        cannot be checked from here, unless --other-hosts. Files named as earlier versions named \
        them (.<name>.tmp-<pid>) are removed too.

        Examples:
          edgequant clean ./models
          edgequant clean out --recursive --dry-run
        """
    )

    @Argument(help: "Directories to clean.") var directories: [String]
    @Flag(name: [.short, .long], help: "Also clean every subdirectory (symlinks are not followed).") var recursive = false
    @Flag(name: .customLong("dry-run"), help: "List what would be removed; remove nothing.") var dryRun = false
    @Flag(name: .customLong("other-hosts"), help: "Also remove files written on other hosts (when no run there is writing).")
    var otherHosts = false
    @Flag(help: "Print nothing.") var quiet = false

    func run() throws {
        do {
            var removed = 0, kept = 0
            for dir in directories {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                    throw CommandError.notADirectory(path: dir, what: "directory")
                }
                for d in recursive ? subdirectories(dir) : [dir] {
                    for f in TempFiles.scan(directory: d, legacy: true) {
                        if f.foreign && !otherHosts {
                            kept += 1
                            if !quiet { print("kept \(f.path) (written on another host; --other-hosts removes it)") }
                        } else if !f.stale && !f.foreign {
                            kept += 1
                            if !quiet { print("kept \(f.path) (process \(f.pid) is running)") }
                        } else if dryRun || unlink(f.path) == 0 {
                            removed += 1
                            if !quiet { print("\(dryRun ? "would remove" : "removed") \(f.path)") }
                        } else {
                            throw CommandError.cannotRemove(path: f.path, errno: errno)
                        }
                    }
                }
            }
            if !quiet {
                print("\(removed) temporary file\(removed == 1 ? "" : "s") \(dryRun ? "to remove" : "removed")"
                      + (kept > 0 ? ", \(kept) kept" : ""))
            }
        } catch {
            fail(error)
        }
    }

    /// `dir` and every directory below it, not following symlinks.
    func subdirectories(_ dir: String) -> [String] {
        var out = [dir]
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return out }
        for n in names.sorted() {
            let p = (dir as NSString).appendingPathComponent(n)
            var st = stat()
            if lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { out += subdirectories(p) }
        }
        return out
    }
}
