import Conversion
import Foundation
import MappedIO
import ModelMapping
import SafetensorsReader
import Testing

/// Outputs that cannot replace inputs, Hugging Face cache snapshots, and faults of the disk, through
/// the converter as `edgequant convert` drives it.
@Suite struct KillSafeConversionTests {
    let fm = FileManager.default

    func scratch(_ tag: String) -> String {
        let p = (NSTemporaryDirectory() as NSString).appendingPathComponent("eq-\(tag)-\(UUID().uuidString)")
        try! fm.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    func convert(_ dir: String, to out: String, _ type: OutType = .q8_0) throws -> [UInt8] {
        _ = try Converter(plan: ConversionPlan(directory: dir, outType: type), threads: 2).run(outfile: out)
        return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    /// `root/models--test--llama/snapshots/<rev>/` holding every file of the sharded fixture as a
    /// symlink `../../blobs/<content hash>`, the way huggingface_hub lays out its cache.
    func huggingFaceSnapshot(in root: String, rev: String, repoName: String = "llama") throws -> String {
        let repo = root + "/models--test--" + repoName
        let snapshot = repo + "/snapshots/" + rev
        try fm.createDirectory(atPath: repo + "/blobs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: repo + "/refs", withIntermediateDirectories: true)
        try Data(rev.utf8).write(to: URL(fileURLWithPath: repo + "/refs/main"))
        let src = fixture("checkpoints/llama-untied-sharded")
        for name in try fm.contentsOfDirectory(atPath: src) {
            let data = try Data(contentsOf: URL(fileURLWithPath: src + "/" + name))
            // huggingface_hub names blobs by content hash (sha256 or git sha1); any content hash will do
            let hash = String(format: "%016llx", data.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 })
            if !fm.fileExists(atPath: repo + "/blobs/" + hash) { try data.write(to: URL(fileURLWithPath: repo + "/blobs/" + hash)) }
            try fm.createSymbolicLink(atPath: snapshot + "/" + name, withDestinationPath: "../../blobs/" + hash)
        }
        return snapshot
    }

    @Test func huggingFaceCacheSnapshotConvertsLikeThePlainDirectory() throws {
        let root = scratch("hf")
        defer { try? fm.removeItem(atPath: root) }
        let rev = "0123456789abcdef0123456789abcdef01234567"
        let snapshot = try huggingFaceSnapshot(in: root, rev: rev)
        // the plain copy under the same directory name: the name can enter the metadata
        let plain = root + "/plain/" + rev
        try fm.createDirectory(atPath: root + "/plain", withIntermediateDirectories: true)
        try fm.copyItem(atPath: fixture("checkpoints/llama-untied-sharded"), toPath: plain)
        let attrs = try fm.attributesOfItem(atPath: snapshot + "/model-00001-of-00002.safetensors")
        #expect(attrs[.type] as? FileAttributeType == .typeSymbolicLink)
        try ModelFiles.preflight(snapshot)
        for type in [OutType.f16, .q8_0] {
            let a = try convert(snapshot, to: root + "/snapshot-\(type).gguf", type)
            let b = try convert(plain, to: root + "/plain-\(type).gguf", type)
            #expect(a.count > 1000)
            #expect(a == b, "\(type): the snapshot converts differently from the plain directory")
        }
        // and it is the very file llama.cpp's converter wrote for the fixture
        let golden = Array(try Data(contentsOf: URL(fileURLWithPath: fixture("golden/llama-untied-sharded-q8_0.gguf"))))
        let named = root + "/models--test--llama/snapshots/llama-untied-sharded"
        try fm.moveItem(atPath: snapshot, toPath: named)
        #expect(try convert(named, to: root + "/named.gguf") == golden)
    }

    @Test func hubNamesResolveInTheCacheAndNameTheModelAsItsPlainDirectory() throws {
        let root = scratch("hub")
        defer { try? fm.removeItem(atPath: root) }
        let rev = "89abcdef0123456789abcdef0123456789abcdef"
        let snapshot = try huggingFaceSnapshot(in: root, rev: rev, repoName: "llama-untied-sharded")
        let env = ["HF_HUB_CACHE": root, "HOME": "/nonexistent"]
        for name in ["test/llama-untied-sharded", "test/llama-untied-sharded@main", "test/llama-untied-sharded@\(rev)"] {
            let loc = try ModelLocation.resolve(name, environment: env)
            #expect(loc.path == snapshot && loc.directoryName == "llama-untied-sharded", "\(name)")
        }
        // named as the plain directory of that name is, so the file is llama.cpp's own for the fixture
        let loc = try ModelLocation.resolve("test/llama-untied-sharded", environment: env)
        let plan = try ConversionPlan(directory: loc.path, directoryName: loc.directoryName, outType: .q8_0)
        #expect(plan.defaultFileName == (try ConversionPlan(directory: fixture("checkpoints/llama-untied-sharded"), outType: .q8_0)).defaultFileName)
        _ = try Converter(plan: plan, threads: 2).run(outfile: root + "/hub.gguf")
        let golden = try Data(contentsOf: URL(fileURLWithPath: fixture("golden/llama-untied-sharded-q8_0.gguf")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/hub.gguf")) == golden)

        // misses name where we looked and how to fetch it, on one line
        #expect(throws: HubCacheError.notInHubCache(id: "test/other", looked: root + "/models--test--other",
                                                    fetch: "huggingface-cli download test/other")) {
            try ModelLocation.resolve("test/other", environment: env)
        }
        #expect(throws: HubCacheError.notInHubCache(id: "test/llama-untied-sharded@v2",
                                                    looked: root + "/models--test--llama-untied-sharded/refs/v2",
                                                    fetch: "huggingface-cli download test/llama-untied-sharded --revision v2")) {
            try ModelLocation.resolve("test/llama-untied-sharded@v2", environment: env)
        }
        let miss = "\(HubCacheError.notInHubCache(id: "a/b", looked: "/c/models--a--b", fetch: "huggingface-cli download a/b"))"
        #expect(miss == "a/b: no such directory, and not in the Hugging Face cache (no /c/models--a--b); fetch it with `huggingface-cli download a/b`")
        // a ref that is not a commit hash
        try Data("not a hash".utf8).write(to: URL(fileURLWithPath: root + "/models--test--llama-untied-sharded/refs/bad"))
        #expect(throws: HubCacheError.badRef(path: root + "/models--test--llama-untied-sharded/refs/bad")) {
            try ModelLocation.resolve("test/llama-untied-sharded@bad", environment: env)
        }
        // a path that exists always wins over a name; what is not a name is left to the reader
        #expect(try ModelLocation.resolve("Fixtures/checkpoints", environment: env) == ModelLocation(path: "Fixtures/checkpoints"))
        for notAName in ["a/b/c", "/abs/path", "../x/y", "a/b@../../etc", "a--b/c", "-a/b", "a/", "./a"] {
            #expect(HubCache.parse(notAName) == nil, "\(notAName)")
            #expect(try ModelLocation.resolve(notAName, environment: env).hub == nil)
        }
        // where the cache is: $HF_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub
        #expect(HubCache.root(environment: ["HF_HOME": "/h", "HOME": "/u"]) == "/h/hub")
        #expect(HubCache.root(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/u"]) == "/x/huggingface/hub")
        #expect(HubCache.root(environment: ["HOME": "/u"]) == "/u/.cache/huggingface/hub")
        #expect(HubCache.root(environment: ["HF_HUB_CACHE": "~/c", "HF_HOME": "/h", "HOME": "/u"]) == "/u/c")
    }

    @Test func symlinksEscapingTheSnapshotAreStillRefused() throws {
        let root = scratch("hf-escape")
        defer { try? fm.removeItem(atPath: root) }
        let snapshot = try huggingFaceSnapshot(in: root, rev: "abc")
        let shard = "model-00002-of-00002.safetensors"
        // another repository's blobs, and a directory outside every cache
        let other = root + "/models--test--other/blobs"
        try fm.createDirectory(atPath: other, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/elsewhere", withIntermediateDirectories: true)
        for target in [other + "/x", root + "/elsewhere/x"] {
            try? fm.removeItem(atPath: target)
            try fm.copyItem(atPath: fixture("checkpoints/llama-untied-sharded/" + shard), toPath: target)
            try fm.removeItem(atPath: snapshot + "/" + shard)
            try fm.createSymbolicLink(atPath: snapshot + "/" + shard, withDestinationPath: target)
            do {
                _ = try ConversionPlan(directory: snapshot, outType: .q8_0)
                Issue.record("a shard symlinked to \(target) was accepted")
            } catch {
                #expect("\(error)".contains("resolves outside the model directory"), "\(error)")
            }
        }
        // blobs/ of a directory that is not a snapshot (no snapshots/ parent) is not trusted either
        let fake = root + "/notacache"
        try fm.createDirectory(atPath: fake + "/blobs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: fake + "/rev", withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: fixture("checkpoints/llama-untied-sharded")) {
            try fm.copyItem(atPath: fixture("checkpoints/llama-untied-sharded/" + name), toPath: fake + "/blobs/" + name)
            try fm.createSymbolicLink(atPath: fake + "/rev/" + name, withDestinationPath: "../blobs/" + name)
        }
        #expect(throws: SafetensorsError.self) { _ = try ConversionPlan(directory: fake + "/rev", outType: .q8_0) }
    }

    @Test func outfileThatIsAnInputIsRefusedAndTheInputKept() throws {
        let root = scratch("input-out")
        defer { try? fm.removeItem(atPath: root) }
        let dir = root + "/m"
        try fm.copyItem(atPath: fixture("checkpoints/llama-untied-sharded"), toPath: dir)
        try ModelFiles.preflight(dir) // as the CLI does: config, tokenizer, card, index are inputs
        let before = try fm.contentsOfDirectory(atPath: dir).sorted().map { ($0, try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0))) }
        try fm.createSymbolicLink(atPath: root + "/link.gguf", withDestinationPath: dir + "/model-00002-of-00002.safetensors")
        for out in ["model-00001-of-00002.safetensors", "config.json", "tokenizer.model", "model.safetensors.index.json", "README.md"]
            .map({ dir + "/" + $0 }) + [root + "/link.gguf"] {
            do {
                _ = try convert(dir, to: out)
                Issue.record("\(out) was overwritten")
            } catch {
                #expect("\(error)".contains("is an input of this command"), "\(error)")
            }
        }
        let after = try fm.contentsOfDirectory(atPath: dir).sorted().map { ($0, try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0))) }
        #expect(before.map(\.0) == after.map(\.0))
        #expect(before.map(\.1) == after.map(\.1))
    }

    @Test func outputNameOf255BytesWorks() throws {
        let root = scratch("long")
        defer { try? fm.removeItem(atPath: root) }
        let name = String(repeating: "n", count: 250) + ".gguf"
        let bytes = try convert(fixture("checkpoints/llama-untied-sharded"), to: root + "/" + name)
        #expect(bytes == Array(try Data(contentsOf: URL(fileURLWithPath: fixture("golden/llama-untied-sharded-q8_0.gguf")))))
        #expect(try fm.contentsOfDirectory(atPath: root) == [name])
    }

    @Test func fullDiskDuringConversionLeavesNoFile() throws {
        // the test double: the fixture's GGUF is ~90 kB, the "disk" holds 32 kB
        let root = scratch("enospc")
        defer { try? fm.removeItem(atPath: root); OutputFaults.shared.remove(directory: root) }
        OutputFaults.shared.install(.init(directory: root, errno: ENOSPC, capacity: 32 << 10))
        do {
            _ = try convert(fixture("checkpoints/llama-untied-sharded"), to: root + "/out.gguf")
            Issue.record("converted onto a full disk")
        } catch {
            #expect("\(error)" == "\(root)/out.gguf: cannot reserve 94016 bytes for the output: \(String(cString: strerror(ENOSPC)))"
                    || "\(error)".contains(String(cString: strerror(ENOSPC))), "\(error)")
            #expect(!"\(error)".contains("\n"))
        }
        #expect(try fm.contentsOfDirectory(atPath: root).isEmpty)
    }

    @Test func fifoShardOrTokenizerIsRefusedAtOnce() throws {
        let root = scratch("fifo")
        defer { try? fm.removeItem(atPath: root) }
        let dir = root + "/m"
        try fm.copyItem(atPath: fixture("checkpoints/llama-untied-sharded"), toPath: dir)
        try fm.removeItem(atPath: dir + "/tokenizer.model")
        #expect(mkfifo(dir + "/tokenizer.model", 0o644) == 0)
        #expect(throws: FileIOError.notRegular(path: dir + "/tokenizer.model", what: "is a FIFO (named pipe)", refusal: "refusing to read it")) { try ModelFiles.preflight(dir) }
        try fm.removeItem(atPath: dir + "/tokenizer.model")
        try fm.copyItem(atPath: fixture("checkpoints/llama-untied-sharded/tokenizer.model"), toPath: dir + "/tokenizer.model")
        let shard = dir + "/model-00002-of-00002.safetensors"
        try fm.removeItem(atPath: shard)
        #expect(mkfifo(shard, 0o644) == 0)
        final class Box: @unchecked Sendable { var message = "hung" }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do { _ = try ConversionPlan(directory: dir, outType: .q8_0); box.message = "opened" } catch { box.message = "\(error)" }
            done.signal()
        }
        if done.wait(timeout: .now() + 10) == .timedOut {
            let fd = open(shard, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            _ = done.wait(timeout: .now() + 5)
        }
        #expect(box.message.contains("is a FIFO"), "\(box.message)")
    }
}
