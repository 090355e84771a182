import Foundation
import GGUFWriter
import StrictJSON

// MARK: - Model card

extension ModelNaming {
    mutating func applyModelCard(_ card: FrontMatter, totalParams: Int) throws(ModelNamingError) {
        // Python keeps whatever YAML gave; GGUFWriter.add_string then skips falsy values (False,
        // 0, [], {}) and crashes on other non-strings. A falsy value still blocks later sources, so
        // it becomes "" here (also skipped). basename/finetune/version/size_label also feed
        // naming_convention, where Python would crash or write "False"; those are refused. (A
        // falsy `name` makes Python's naming_convention crash only when there is no basename.)
        func string(_ key: String, naming: Bool) throws(ModelNamingError) -> String? {
            guard let node = card[key] else { return nil }
            switch node {
            case .null: return nil
            case .string(let s): return s
            case .unsupported(let why): throw ModelNamingError("README.md front matter `\(key)`: \(why)")
            default:
                if !naming && YAML.isFalsy(node) { return "" }
                throw ModelNamingError("README.md front matter `\(key)` is not a string")
            }
        }
        func use(_ field: WritableKeyPath<ModelNaming, String?>, _ key: String) throws(ModelNamingError) {
            let naming = [\ModelNaming.basename, \.finetune, \.version, \.sizeLabel].contains(field)
            if card[key] != nil && self[keyPath: field] == nil { self[keyPath: field] = try string(key, naming: naming) }
        }
        func useArray(_ field: WritableKeyPath<ModelNaming, [String]?>, _ key: String) throws(ModelNamingError) {
            guard let node = card[key] else { return }
            var current = self[keyPath: field] ?? []
            switch node {
            case .null: return
            case .string(let s): current.append(s)
            case .sequence(let items):
                for item in items {
                    guard case .string(let s) = item else {
                        throw ModelNamingError("README.md front matter `\(key)` has a non-string item")
                    }
                    current.append(s)
                }
            case .unsupported(let why): throw ModelNamingError("README.md front matter `\(key)`: \(why)")
            case .scalar, .mapping: break // Python appends nothing but still sets the list
            }
            self[keyPath: field] = current
        }

        // llama.cpp's own convention
        try use(\.name, "name")
        try use(\.author, "author")
        try use(\.version, "version")
        try use(\.organization, "organization")
        try use(\.description, "description")
        try use(\.finetune, "finetune")
        try use(\.basename, "basename")
        try use(\.sizeLabel, "size_label")
        try use(\.sourceURL, "url")
        try use(\.sourceDOI, "doi")
        try use(\.sourceUUID, "uuid")
        try use(\.sourceRepoURL, "repo_url")
        // ... with model_ prefix
        try use(\.name, "model_name")
        try use(\.author, "model_author")
        try use(\.version, "model_version")
        try use(\.organization, "model_organization")
        try use(\.description, "model_description")
        try use(\.finetune, "model_finetune")
        try use(\.basename, "model_basename")
        try use(\.sizeLabel, "model_size_label")
        try use(\.sourceURL, "model_url")
        try use(\.sourceDOI, "model_doi")
        try use(\.sourceUUID, "model_uuid")
        try use(\.sourceRepoURL, "model_repo_url")
        // seen in the wild (TheBloke)
        try use(\.name, "model_name")
        try use(\.author, "model_creator")
        try use(\.basename, "model_type")

        if let list = try sourceList(card, keys: ["base_model", "base_models", "base_model_sources"], totalParams: totalParams) {
            baseModels = (baseModels ?? []) + list
        }
        if let list = try sourceList(card, keys: ["datasets", "dataset", "dataset_sources"], totalParams: totalParams) {
            datasets = (datasets ?? []) + list
        }

        if card["license"] != nil && license == nil {
            switch card["license"]! {
            case .null: break
            case .string(let s): license = s
            case .sequence(let items):
                var parts: [String] = []
                for item in items {
                    guard case .string(let s) = item else {
                        throw ModelNamingError("README.md front matter `license` has a non-string item")
                    }
                    parts.append(s)
                }
                license = parts.joined(separator: ",")
            case .unsupported(let why): throw ModelNamingError("README.md front matter `license`: \(why)")
            case let node where YAML.isFalsy(node): license = ""
            default: throw ModelNamingError("README.md front matter `license` is not a string")
            }
        }
        try use(\.licenseName, "license_name")
        try use(\.licenseLink, "license_link")

        try useArray(\.tags, "tags")
        try useArray(\.tags, "pipeline_tag")
        try useArray(\.languages, "languages")
        try useArray(\.languages, "language")
    }

    /// The base_model / datasets handling of `apply_metadata_heuristic`; nil when none of the
    /// keys is present.
    private func sourceList(_ card: FrontMatter, keys: [String], totalParams: Int) throws(ModelNamingError) -> [Source]? {
        guard let key = keys.first(where: { card[$0] != nil }), let node = card[key] else { return nil }
        var ids: [YAMLNode] = []
        switch node {
        case .string: ids = [node]
        case .sequence(let items): ids = items
        case .unsupported(let why): throw ModelNamingError("README.md front matter `\(key)`: \(why)")
        default: break
        }
        var out: [Source] = []
        for id in ids {
            var entry = Source()
            switch id {
            case .string(let s):
                let scalars = Array(s.unicodeScalars)
                if s.hasPrefixScalars("http://") || s.hasPrefixScalars("https://") || s.hasPrefixScalars("ssh://") {
                    entry.repoURL = s
                    if s.containsScalars("huggingface.co"), let component = ModelNaming.huggingFaceURLComponent(scalars) {
                        let c = ModelNaming.modelIDComponents(component, totalParams: totalParams)
                        if let n = c.fullName { entry.name = ModelNaming.idToTitle(n) }
                        if let o = c.organization { entry.organization = ModelNaming.idToTitle(o) }
                        if let v = c.version { entry.version = v }
                    }
                } else {
                    let c = ModelNaming.modelIDComponents(s, totalParams: totalParams)
                    if let n = c.fullName { entry.name = ModelNaming.idToTitle(n) }
                    if let o = c.organization { entry.organization = ModelNaming.idToTitle(o) }
                    if let v = c.version { entry.version = v }
                    if let o = c.organization, let n = c.fullName {
                        entry.repoURL = "https://huggingface.co/\(o)/\(n)"
                    }
                }
            case .mapping(let pairs):
                func field(_ name: String) throws(ModelNamingError) -> String? {
                    guard let v = pairs.last(where: { $0.key == name })?.value else { return nil }
                    switch v {
                    case .null: return nil
                    case .string(let s): return s
                    case .unsupported(let why): throw ModelNamingError("README.md front matter `\(key)` entry `\(name)`: \(why)")
                    case let node where YAML.isFalsy(node): return nil
                    default: throw ModelNamingError("README.md front matter `\(key)` entry `\(name)` is not a string")
                    }
                }
                entry = Source(name: try field("name"), author: try field("author"), version: try field("version"),
                               organization: try field("organization"), description: try field("description"),
                               url: try field("url"), doi: try field("doi"), uuid: try field("uuid"),
                               repoURL: try field("repo_url"))
            case .unsupported(let why):
                throw ModelNamingError("README.md front matter `\(key)`: \(why)")
            default:
                break // Python logs an error and appends an empty entry
            }
            out.append(entry)
        }
        return out
    }

    /// `re.match(r"https?://huggingface.co/([^/]+/[^/]+)$", s).group(1)`
    static func huggingFaceURLComponent(_ s: [Unicode.Scalar]) -> String? {
        var i = 0
        func lit(_ t: String) -> Bool {
            let u = Array(t.unicodeScalars)
            guard i + u.count <= s.count, Array(s[i..<(i + u.count)]) == u else { return false }
            i += u.count
            return true
        }
        guard lit("http") else { return nil }
        _ = lit("s")
        guard lit("://huggingface") else { return nil }
        guard i < s.count, s[i] != "\n" else { return nil } // '.' matches anything but a newline
        i += 1
        guard lit("co/") else { return nil }
        let rest = s[i...]
        let pieces = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 2, !pieces[0].isEmpty, !pieces[1].isEmpty else { return nil }
        // `$` also matches before a final newline, but `[^/]+` is greedy and takes it.
        return Py.string(Array(rest))
    }
}

private extension String {
    func hasPrefixScalars(_ p: String) -> Bool {
        let a = Array(unicodeScalars), b = Array(p.unicodeScalars)
        return a.count >= b.count && Array(a[..<b.count]) == b
    }

    func containsScalars(_ p: String) -> Bool {
        let a = Array(unicodeScalars), b = Array(p.unicodeScalars)
        guard a.count >= b.count else { return false }
        for i in 0...(a.count - b.count) where Array(a[i..<(i + b.count)]) == b { return true }
        return false
    }
}
