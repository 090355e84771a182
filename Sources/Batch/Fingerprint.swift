import Crypto
import Foundation
import MappedIO
import Reports
import StrictJSON

/// What `stat` says about a file, following symlinks (Hugging Face cache snapshots are symlinks to blobs).
struct FileStat: Equatable {
    var size: Int
    var mtimeNS: Int64
    var isRegular: Bool

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        size = Int(st.st_size)
        #if canImport(Darwin)
        mtimeNS = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
        mtimeNS = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
        isRegular = (st.st_mode & S_IFMT) == S_IFREG
    }
}

public enum FileHash {
    /// SHA-256 hex of a file, read 1 MiB at a time so multi-GB GGUFs and checkpoints never sit in memory.
    public static func sha256(path: String) throws -> String {
        let (fd, _) = try InputFile.open(path) // a FIFO or device is refused, not read forever
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: 1 << 20) } catch { throw BatchError.fingerprint(path: path, detail: "read failed: \(error)") }
            guard let chunk, !chunk.isEmpty else { break }
            hasher.update(data: chunk)
        }
        return hex(hasher.finalize())
    }

    public static func sha256(_ text: String) -> String { hex(SHA256.hash(data: Data(text.utf8))) }

    static func hex<D: Sequence<UInt8>>(_ digest: D) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}

/// Content hashes remembered by path, size and mtime within one run: every job of a manifest
/// shares the eval text, and every type of a model shares its config and tokenizer.
public final class FileHashCache {
    private var hashes: [String: String] = [:]
    public init() {}

    func sha256(path: String, stat: FileStat) throws -> String {
        let key = "\(path)\u{0}\(stat.size)\u{0}\(stat.mtimeNS)"
        if let h = hashes[key] { return h }
        let h = try FileHash.sha256(path: path)
        hashes[key] = h
        return h
    }

    func sha256(path: String) throws -> String {
        guard let st = FileStat(path: path) else { throw BatchError.fingerprint(path: path, detail: "does not exist") }
        return try sha256(path: path, stat: st)
    }
}

/// Files at most this large are hashed in full: config, tokenizer and index files, whose edits may keep
/// size and mtime (a checkout). Weights are not: name, size and mtime identify a 70B checkpoint cheaply.
let fullHashLimit = 16 << 20

/// SHA-256 over everything that determines a job's GGUF and its measurement. Threads are left out
/// (results do not depend on them), and so are gates (re-checked on every run without measuring again).
public func settingsHash(job: Job, toolVersion: String, cache: FileHashCache = FileHashCache()) throws -> String {
    var lines = ["edgequant batch settings v1", "tool \(toolVersion)", "type \(job.type)",
                 "eval.ctx \(job.eval.ctx)", "eval.chunks \(job.eval.chunks.map(String.init) ?? "all")",
                 "eval.text sha256 \(try cache.sha256(path: job.eval.text))"]
    switch job.calibration {
    case .none: lines.append("calibration none")
    case .imatrix(let p): lines.append("calibration imatrix sha256 \(try cache.sha256(path: p))")
    case .calibrate(let p): lines.append("calibration calibrate sha256 \(try cache.sha256(path: p))")
    }
    let names: [String]
    do {
        names = try FileManager.default.contentsOfDirectory(atPath: job.modelPath).sorted()
    } catch {
        throw BatchError.fingerprint(path: job.modelPath, detail: "cannot list the model directory (\(error.localizedDescription))")
    }
    // Dot files (.DS_Store, .gitattributes) change without changing the model.
    for name in names where !name.hasPrefix(".") {
        let p = (job.modelPath as NSString).appendingPathComponent(name)
        guard let st = FileStat(path: p), st.isRegular else { continue }
        var line = "model.file \(name) size \(st.size) mtime_ns \(st.mtimeNS)"
        if st.size <= fullHashLimit { line += " sha256 \(try cache.sha256(path: p, stat: st))" }
        lines.append(line)
    }
    return FileHash.sha256(lines.joined(separator: "\n") + "\n")
}

/// The same as `settingsHash(job:toolVersion:)`: a job carries everything of its manifest that matters.
public func settingsHash(job: Job, manifest: Manifest, toolVersion: String) throws -> String {
    try settingsHash(job: job, toolVersion: toolVersion)
}

/// What a finished job leaves in `.edgequant/jobs/`: proof that its GGUF and row belong to these settings.
public struct JobRecord: Sendable, Equatable {
    public var settingsHash: String
    public var row: QualityRow
    /// ISO 8601.
    public var completedAt: String
    /// Size and mtime of the GGUF when recorded; nil when the type keeps no file (simulated).
    public var ggufSize: Int?
    public var ggufMtimeNS: Int64?

    public init(settingsHash: String, row: QualityRow, completedAt: String, ggufSize: Int?, ggufMtimeNS: Int64?) {
        self.settingsHash = settingsHash; self.row = row; self.completedAt = completedAt
        self.ggufSize = ggufSize; self.ggufMtimeNS = ggufMtimeNS
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.append("settings_hash", .string(settingsHash))
        o.append("completed_at", .string(completedAt))
        if let s = ggufSize, let m = ggufMtimeNS {
            o.append("gguf", .obj(["size": .int(s), "mtime_ns": .int(Int(m))]))
        }
        o.append("row", .object(row.json))
        return .object(o)
    }

    public init?(json v: JSONValue) {
        guard let h = v["settings_hash"]?.stringValue, let r = v["row"].flatMap(QualityRow.init(json:)) else { return nil }
        settingsHash = h
        row = r
        completedAt = v["completed_at"]?.stringValue ?? ""
        ggufSize = v["gguf"]?["size"]?.intValue
        ggufMtimeNS = v["gguf"]?["mtime_ns"]?.intValue.map(Int64.init)
    }

    public static func read(path: String) -> JobRecord? {
        guard let data = FileManager.default.contents(atPath: path), let v = try? JSONParser.parse(data) else { return nil }
        return JobRecord(json: v)
    }

    public func write(to path: String) throws {
        try AtomicFile.write(json.serialized(pretty: true) + "\n", to: path)
    }
}

/// Why a job must run, or the row it already has.
public enum RecordCheck: Sendable, Equatable {
    case upToDate(QualityRow)
    case mustRun(reason: String)
}

/// Checks a job's record against the settings hash and the files on disk. The GGUF is hashed again
/// only when its mtime moved (a copy, a touch): size plus the sidecar catch the common damage cheaply.
public func checkRecord(_ job: Job, hash: String) -> RecordCheck {
    guard FileManager.default.fileExists(atPath: job.recordPath) else { return .mustRun(reason: "not run yet") }
    guard let record = JobRecord.read(path: job.recordPath) else { return .mustRun(reason: "record unreadable") }
    guard record.settingsHash == hash else { return .mustRun(reason: "inputs or settings changed") }
    guard record.row.error == nil else { return .mustRun(reason: "failed last time") }
    guard let size = record.ggufSize else { return .upToDate(record.row) }
    guard let st = FileStat(path: job.outputPath) else { return .mustRun(reason: "GGUF missing") }
    guard st.size == size else { return .mustRun(reason: "GGUF size changed") }
    guard let sha = record.row.sha256 else { return .mustRun(reason: "record has no sha256") }
    guard let sidecar = try? String(contentsOfFile: job.checksumPath, encoding: .utf8),
          sidecar == checksumLine(sha256: sha, path: job.outputPath) else {
        return .mustRun(reason: "sha256 file missing or different")
    }
    if st.mtimeNS != record.ggufMtimeNS {
        guard (try? FileHash.sha256(path: job.outputPath)) == sha else { return .mustRun(reason: "GGUF content changed") }
    }
    return .upToDate(record.row)
}

/// `sha256sum` format: two spaces, the file's name (the sidecar sits beside it).
func checksumLine(sha256: String, path: String) -> String {
    "\(sha256)  \((path as NSString).lastPathComponent)\n"
}

enum AtomicFile {
    /// Writes through MappedIO's temp-file-and-rename output, so readers (and a rerun after a kill)
    /// see the old file or the new one, never half of one, and a signal leaves no temp file.
    static func write(_ text: String, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw BatchError.cannotCreateDirectory(path: dir, detail: error.localizedDescription)
        }
        let out = try OutputFile(path: path) // removed unless committed
        try out.write(Array(text.utf8), at: 0)
        try out.commit()
    }
}
