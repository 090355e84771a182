import Foundation

/// A model named as on the Hugging Face hub (`ORG/NAME`, `ORG/NAME@REVISION`), found in the local
/// hub cache where `huggingface-cli download` and `snapshot_download` put it — never fetched.
///
/// The cache keeps one folder per repository, `models--ORG--NAME`, holding `refs/<revision>`
/// (a file with the commit hash a branch or tag pointed at when it was downloaded) and
/// `snapshots/<commit>/` (the files of that commit, symlinks into `blobs/`).
public struct HubModel: Sendable, Equatable {
    public let organization: String
    public let name: String
    /// As asked for: a branch, tag or commit; nil for the default, `main`.
    public let revision: String?
    /// The snapshot folder the revision resolves to.
    public let snapshot: String

    public var id: String { "\(organization)/\(name)" }
}

/// Where a command's model argument points: a path as given, or a cached hub model.
public struct ModelLocation: Sendable, Equatable {
    /// The file or directory to read.
    public let path: String
    public let hub: HubModel?

    /// The name the model's directory would have if it were a plain one (`NAME`), which names the
    /// output and `general.name`/`general.basename`: a snapshot folder is named by its commit hash.
    public var directoryName: String? { hub?.name }

    public init(path: String, hub: HubModel? = nil) {
        self.path = path
        self.hub = hub
    }

    /// A path that exists always wins; else `ORG/NAME[@REVISION]` is looked up in the cache; else
    /// the argument is returned as a path, for the reader to say it does not exist.
    public static func resolve(_ argument: String,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws(HubCacheError) -> ModelLocation {
        if FileManager.default.fileExists(atPath: argument) { return ModelLocation(path: argument) }
        guard let (org, name, revision) = HubCache.parse(argument) else { return ModelLocation(path: argument) }
        let cache = HubCache.root(environment: environment)
        let repo = (cache as NSString).appendingPathComponent("models--\(org)--\(name)")
        let snapshot = try HubCache.snapshot(repo: repo, id: "\(org)/\(name)", revision: revision)
        return ModelLocation(path: snapshot, hub: HubModel(organization: org, name: name, revision: revision, snapshot: snapshot))
    }
}

public enum HubCache {
    /// huggingface_hub's cache folder: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    public static func root(environment env: [String: String]) -> String {
        if let c = env["HF_HUB_CACHE"], !c.isEmpty { return expandTilde(c, env) }
        if let c = env["HUGGINGFACE_HUB_CACHE"], !c.isEmpty { return expandTilde(c, env) } // the older name
        if let h = env["HF_HOME"], !h.isEmpty { return (expandTilde(h, env) as NSString).appendingPathComponent("hub") }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return (expandTilde(x, env) as NSString).appendingPathComponent("huggingface/hub") }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".cache/huggingface/hub")
    }

    static func expandTilde(_ p: String, _ env: [String: String]) -> String {
        guard p == "~" || p.hasPrefix("~/") else { return p }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + p.dropFirst()
    }

    /// `ORG/NAME` or `ORG/NAME@REVISION` with the hub's repository-name characters; nil for
    /// anything else (a relative path such as `models/x` is a name only when it does not exist).
    public static func parse(_ s: String) -> (organization: String, name: String, revision: String?)? {
        var id = Substring(s)
        var revision: String?
        if let at = s.firstIndex(of: "@") {
            id = s[..<at]
            let r = String(s[s.index(after: at)...])
            guard isRevision(r) else { return nil }
            revision = r
        }
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy(isRepoPart) else { return nil }
        return (String(parts[0]), String(parts[1]), revision)
    }

    /// The hub's rule for repository names: letters, digits, `-`, `_`, `.`; no leading or trailing
    /// `-`/`.`, no `--` or `..`, at most 96 characters.
    static func isRepoPart(_ p: Substring) -> Bool {
        guard !p.isEmpty, p.count <= 96, !p.contains("--"), !p.contains("..") else { return false }
        guard p.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) })
        else { return false }
        return !(p.hasPrefix("-") || p.hasPrefix(".") || p.hasSuffix("-") || p.hasSuffix("."))
    }

    /// A branch, tag or commit: no path escapes (`..`, a leading `/`), printable ASCII.
    static func isRevision(_ r: String) -> Bool {
        guard !r.isEmpty, r.count <= 255, !r.hasPrefix("/"), !r.split(separator: "/").contains("..") else { return false }
        return r.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_./".unicodeScalars.contains($0)) }
    }

    static func isCommitHash(_ r: String) -> Bool {
        r.utf8.count == 40 && r.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// `refs/<revision>` → `snapshots/<commit>` (a commit hash names its snapshot directly).
    static func snapshot(repo: String, id: String, revision: String?) throws(HubCacheError) -> String {
        let rev = revision ?? "main"
        let fetch = "huggingface-cli download \(id)" + (revision.map { " --revision \($0)" } ?? "")
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: repo, isDirectory: &isDir), isDir.boolValue else {
            throw .notInHubCache(id: id, looked: repo, fetch: fetch)
        }
        let snapshots = (repo as NSString).appendingPathComponent("snapshots")
        var commit: String?
        if isCommitHash(rev) {
            commit = rev
        } else {
            let ref = (repo as NSString).appendingPathComponent("refs/\(rev)")
            if let bytes = try? InputFile.readAll(ref), bytes.count <= 4096 {
                let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard isCommitHash(text) else { throw .badRef(path: ref) }
                commit = text
            }
        }
        guard let commit else {
            throw .notInHubCache(id: "\(id)@\(rev)", looked: (repo as NSString).appendingPathComponent("refs/\(rev)"), fetch: fetch)
        }
        let snap = (snapshots as NSString).appendingPathComponent(commit)
        guard FileManager.default.fileExists(atPath: snap, isDirectory: &isDir), isDir.boolValue else {
            throw .notInHubCache(id: "\(id)@\(rev)", looked: snap, fetch: fetch)
        }
        return snap
    }
}

/// Faults of finding a model by name in the Hugging Face cache.
public enum HubCacheError: FileFault, Equatable {
    /// `ORG/NAME[@REVISION]` is neither a path nor in the cache: `looked` is what we looked for,
    /// `fetch` the command that would download it.
    case notInHubCache(id: String, looked: String, fetch: String)
    /// A `refs/<revision>` file that does not hold a commit hash.
    case badRef(path: String)

    public var path: String {
        switch self {
        case .notInHubCache(let id, _, _): return id
        case .badRef(let p): return p
        }
    }

    public var fault: String {
        switch self {
        case .notInHubCache(_, let looked, let fetch):
            return "no such directory, and not in the Hugging Face cache (no \(looked)); fetch it with `\(fetch)`"
        case .badRef: return "does not hold a commit hash"
        }
    }
}
