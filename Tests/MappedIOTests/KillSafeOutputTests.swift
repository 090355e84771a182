import Foundation
import MappedIO
import Testing

@Suite struct KillSafeOutputTests {
    func write(_ path: String, _ bytes: [UInt8]) throws(FileIOError) {
        let o = try OutputFile(path: path)
        try o.setSize(bytes.count)
        try o.write(bytes, at: 0)
        try o.commit()
    }

    func refusal(_ path: String) -> String? {
        do throws(FileIOError) {
            try write(path, [1, 2, 3])
            return nil
        } catch {
            #expect(!error.description.contains("\n"))
            return error.fault
        }
    }

    // MARK: temporary names

    @Test func tempNameIsOursAndFitsTheNameLimit() throws {
        let dir = scratchDirectory("names")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let longest = String(repeating: "é", count: 126) + "x.gguf" // 252 + 6 = 258 bytes: too long
        #expect(longest.utf8.count > OutputFile.nameMax)
        let legal = String(repeating: "a", count: 250) + ".gguf"  // exactly 255 bytes
        #expect(legal.utf8.count == 255)
        for base in [legal, "m.gguf", String(repeating: "é", count: 127) + "x"] {
            let t = (OutputFile.tempName(for: dir + "/" + base) as NSString).lastPathComponent
            #expect(t.utf8.count <= OutputFile.nameMax)
            #expect(t.hasPrefix(OutputFile.tempPrefix))
            #expect(TempFiles.pid(inTempName: t)?.pid == getpid())
            #expect(!t.unicodeScalars.contains("\u{FFFD}")) // cut at a character boundary
        }
        try write(dir + "/" + legal, Array(repeating: 7, count: 1000))
        #expect(entries(dir) == [legal])
        #expect(FileManager.default.contents(atPath: dir + "/" + legal)?.count == 1000)
        #expect(refusal(dir + "/" + longest)?.contains("longer than the 255-byte limit") == true)
        #expect(entries(dir) == [legal])
    }

    @Test func tempNamesAreRecognised() {
        #expect(TempFiles.parse(tempName: ".edgequant.tmp-123-0badcafe.model.gguf")! == (123, "0badcafe", false))
        #expect(TempFiles.pid(inTempName: ".edgequant.tmp-12x-0badcafe.model.gguf") == nil)
        #expect(TempFiles.pid(inTempName: ".edgequant.tmp-123-0badcaf.model.gguf") == nil)
        #expect(TempFiles.pid(inTempName: ".edgequant.tmp-123-0badcafe.") == nil)
        #expect(TempFiles.pid(inTempName: ".edgequant.tmp--0badcafe.gguf") == nil)
        #expect(OutputFile.hostTag.count == 8)
        #expect(OutputFile.tempName(for: "d/m.gguf", pid: 42) == "d/.edgequant.tmp-42-\(OutputFile.hostTag).m.gguf")
        #expect(TempFiles.pid(inTempName: "model.gguf") == nil)
        #expect(TempFiles.pid(inTempName: ".model.gguf.tmp-42") == nil)
        #expect(TempFiles.pid(inTempName: ".model.gguf.tmp-42", legacy: true)?.pid == 42)
        #expect(TempFiles.pid(inTempName: ".tmp-42", legacy: true) == nil)
    }

    // MARK: the next run removes what a killed run left

    @Test func nextOutputSweepsTempFilesOfDeadProcesses() throws {
        let dir = scratchDirectory("sweep")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = deadPID()
        let stale = OutputFile.tempName(for: "model.gguf", pid: dead)
        let live = OutputFile.tempName(for: "other.gguf", pid: 1)          // pid 1 is always running
        let ownLeft = OutputFile.tempName(for: "x.gguf", pid: getpid())     // our pid, but not open here: a recycled pid
        let elsewhere = OutputFile.tempName(for: "y.gguf", pid: dead, host: OutputFile.hostTag == "00000000" ? "11111111" : "00000000")
        let legacy = ".model.gguf.tmp-\(dead)"
        for n in [stale, live, ownLeft, elsewhere, legacy, "keep.gguf"] {
            _ = FileManager.default.createFile(atPath: dir + "/" + n, contents: Data([1, 2, 3]))
        }
        try write(dir + "/new.gguf", [9])
        // another host's file: its pid cannot be checked here, so it stays
        #expect(entries(dir) == [live, elsewhere, legacy, "keep.gguf", "new.gguf"].sorted())
        #expect(TempFiles.scan(directory: dir).first { $0.path.hasSuffix(elsewhere) }?.foreign == true)
        // `edgequant clean` also removes the earlier versions' names
        let removed = TempFiles.sweep(directory: dir, legacy: true)
        #expect(removed == [dir + "/" + legacy])
        #expect(entries(dir) == [live, elsewhere, "keep.gguf", "new.gguf"].sorted())
    }

    @Test func sweepKeepsTheFileOfAnOutputStillBeingWritten() throws {
        let dir = scratchDirectory("busy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try OutputFile(path: dir + "/a.gguf")
        try a.setSize(10)
        try write(dir + "/b.gguf", [1])   // creating b sweeps the directory: a's temp file is ours and open
        #expect(FileManager.default.fileExists(atPath: a.tempPath))
        try a.write([UInt8](repeating: 1, count: 10), at: 0)
        try a.commit()
        #expect(entries(dir) == ["a.gguf", "b.gguf"])
    }

    @Test func sweepTreeReachesSubdirectories() throws {
        let dir = scratchDirectory("tree")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = deadPID()
        try FileManager.default.createDirectory(atPath: dir + "/m/.edgequant/jobs", withIntermediateDirectories: true)
        for sub in ["", "/m", "/m/.edgequant/jobs"] {
            _ = FileManager.default.createFile(atPath: OutputFile.tempName(for: dir + sub + "/f", pid: dead), contents: Data([0]))
        }
        #expect(TempFiles.sweep(tree: dir, depth: 1).count == 2)
        #expect(TempFiles.sweep(tree: dir, depth: 3).count == 1)
    }

    // MARK: destinations that are refused

    @Test func refusesDirectoryDanglingSymlinkAndSpecialFiles() throws {
        let dir = scratchDirectory("dest")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: false)
        #expect(refusal(dir + "/sub")?.contains("is a directory") == true)
        #expect(refusal(dir + "/")?.contains("names a directory") == true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/dangling.gguf", withDestinationPath: dir + "/nowhere/x.gguf")
        #expect(refusal(dir + "/dangling.gguf")?.contains("dangling symlink") == true)
        #expect(!FileManager.default.fileExists(atPath: dir + "/nowhere"))
        #expect(mkfifo(dir + "/fifo", 0o644) == 0)
        #expect(refusal(dir + "/fifo")?.contains("is a FIFO") == true)
        #expect(refusal("/dev/null")?.contains("character device") == true)
        #expect(entries(dir) == ["dangling.gguf", "fifo", "sub"])
    }

    @Test func refusesToOverwriteAnInputWhileItIsRead() throws {
        let dir = scratchDirectory("input")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/model.safetensors"
        try write(input, Array(repeating: 5, count: 100))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: input)
        #expect(link(input, dir + "/hardlink") == 0)
        do {
            let mapped = try MappedFile(path: input)
            #expect(refusal(input)?.contains("is an input of this command") == true)
            #expect(refusal(dir + "/link")?.contains("is an input of this command") == true)
            #expect(refusal(dir + "/hardlink")?.contains("is an input of this command") == true)
            #expect(mapped.size == 100)
        }
        // mapped no more: an ordinary file again
        #expect(refusal(input) == nil)
        // a file read whole (config, text) stays an input for the life of the process
        let text = dir + "/wiki.txt"
        _ = FileManager.default.createFile(atPath: text, contents: Data("text".utf8))
        _ = try InputFile.readAll(text)
        #expect(refusal(text)?.contains("is an input of this command") == true)
        #expect(String(decoding: FileManager.default.contents(atPath: text)!, as: UTF8.self) == "text")
    }

    // MARK: inputs that are not regular files

    @Test func fifoAndDeviceInputsAreRefusedAtOnce() throws {
        let dir = scratchDirectory("fifo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/model.safetensors"
        #expect(mkfifo(fifo, 0o644) == 0)
        let mapped = withinSeconds(5, unblock: fifo) { () -> String in
            do throws(FileIOError) { _ = try MappedFile(path: fifo); return "opened" } catch { return error.fault }
        }
        #expect(mapped?.contains("is a FIFO") == true, "MappedFile on a FIFO: \(mapped ?? "hung")")
        let read = withinSeconds(5, unblock: fifo) { () -> String in
            do throws(FileIOError) { _ = try InputFile.readAll(fifo); return "read" } catch { return error.fault }
        }
        #expect(read?.contains("is a FIFO") == true, "readAll on a FIFO: \(read ?? "hung")")
        let device = withinSeconds(5) { () -> String in
            do throws(FileIOError) { _ = try InputFile.readAll("/dev/zero"); return "read" } catch { return error.fault }
        }
        #expect(device?.contains("character device") == true, "readAll of /dev/zero: \(device ?? "hung")")
        #expect(throws: FileIOError.self) { try InputFile.requireRegularIfPresent(fifo) }
        try InputFile.requireRegularIfPresent(dir + "/absent")
    }

    // MARK: a full or read-only disk

    @Test func fullDiskGivesOneLineErrorAndNoPartialFile() {
        withConstrainedDirectory(capacity: 64 << 10) { dir, realMount in
            let path = dir + "/big.gguf"
            // reserved up front: the size fails before any work is done
            do throws(FileIOError) {
                let o = try OutputFile(path: path)
                try o.setSize(1 << 20)
                Issue.record("a 1 MiB output fit a 64 KiB file system (real tmpfs: \(realMount))")
            } catch {
                #expect(error.fault.contains(String(cString: strerror(ENOSPC))), "\(error)")
                #expect(error.isWriteFault)
                #expect(!error.description.contains("\n"))
            }
            #expect(entries(dir).isEmpty, "left behind: \(entries(dir))")
            // written without a reservation: the write that does not fit fails
            do throws(FileIOError) {
                let o = try OutputFile(path: path)
                let chunk = [UInt8](repeating: 1, count: 16 << 10)
                for i in 0..<64 { try o.write(chunk, at: i * chunk.count) }
                try o.commit()
                Issue.record("1 MiB written to a 64 KiB file system (real tmpfs: \(realMount))")
            } catch {
                #expect(error.fault.contains("write failed"), "\(error)")
                #expect(error.writeErrno == ENOSPC)
            }
            #expect(entries(dir).isEmpty, "left behind: \(entries(dir))")
        }
    }

    @Test func fullDiskTestDoubleBehavesLikeTheFileSystem() throws {
        // the double alone, whatever the machine allows, so that it is exercised in every run
        let dir = scratchDirectory("double")
        defer { try? FileManager.default.removeItem(atPath: dir); OutputFaults.shared.remove(directory: dir) }
        OutputFaults.shared.install(.init(directory: dir, errno: ENOSPC, capacity: 100))
        #expect(refusal(dir + "/a.gguf") == nil)                       // 3 bytes fit
        do throws(FileIOError) { try write(dir + "/b.gguf", Array(repeating: 0, count: 101)); Issue.record("101 bytes fit 100") } catch {
            #expect(error.writeErrno == ENOSPC)
            #expect(error.description == "\(dir)/b.gguf: cannot reserve 101 bytes for the output: \(String(cString: strerror(ENOSPC)))")
        }
        #expect(entries(dir) == ["a.gguf"])
    }

    @Test func readOnlyDestinationGivesOneLineErrorAndNoFile() {
        withConstrainedDirectory(capacity: 0, readOnly: true) { dir, realMount in
            let m = refusal(dir + "/out.gguf")
            #expect(m?.contains(String(cString: strerror(EROFS))) == true, "\(m ?? "written") (real mount: \(realMount))")
            #expect(entries(dir).isEmpty)
            do throws(FileIOError) { _ = try OutputFile(path: dir + "/x") } catch { #expect(error.writeErrno == EROFS) }
        }
    }
}
