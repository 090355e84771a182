import Foundation
import MappedIO
import Yams

/// Where the importance data for quantizing a model comes from.
public enum Calibration: Sendable, Equatable {
    case none
    /// An importance matrix from llama-imatrix (GGUF or legacy .dat).
    case imatrix(String)
    /// A text to collect the importance matrix from before quantizing.
    case calibrate(String)
}

/// The text every quantized model is measured on, and how.
public struct EvalSettings: Sendable, Equatable {
    public var text: String
    public var ctx: Int
    /// nil: every chunk the text holds.
    public var chunks: Int?

    public init(text: String, ctx: Int = 512, chunks: Int? = nil) {
        self.text = text; self.ctx = ctx; self.chunks = chunks
    }
}

/// A `batch` manifest, validated: every path absolute, gates merged down to each type entry.
public struct Manifest: Sendable, Equatable {
    public struct TypeEntry: Sendable, Equatable {
        /// Lower case, one of the known types.
        public var type: String
        /// Top level, model and entry gates merged (the entry wins per key).
        public var gates: Gates
    }

    public struct Model: Sendable, Equatable {
        public var name: String
        /// The checkpoint directory.
        public var path: String
        public var types: [TypeEntry]
        public var calibration: Calibration
        /// The model's name when `path` is a hub cache snapshot (named by its commit hash).
        public var directoryName: String? = nil
    }

    /// The manifest file itself (absolute, standardized).
    public var path: String
    public var output: String
    public var eval: EvalSettings
    /// nil: the executor picks (all cores).
    public var threads: Int?
    public var models: [Model]

    public static let knownTypes = [
        "f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_k_s", "q5_0", "q5_1", "q4_k_m", "q4_k_s", "q4_0", "q4_1",
        "iq4_nl", "nf4", "q3_k_l", "q3_k_m", "q3_k_s", "q2_k",
    ]

    /// Reads and validates the manifest at `path`; every fault is a `ManifestError` naming `path:line:col`.
    public static func load(path: String, knownTypes: [String] = Manifest.knownTypes, checkFiles: Bool = true) throws -> Manifest {
        let absolute = standardize(path, relativeTo: FileManager.default.currentDirectoryPath)
        let text: String
        do {
            // InputFile: a FIFO or device given as the manifest is refused instead of waited on
            text = String(decoding: try InputFile.readAll(absolute), as: UTF8.self)
        } catch {
            throw ManifestError(file: path, line: 0, column: 0, message: "cannot read the manifest (\(error.fault))")
        }
        return try parse(yaml: text, path: absolute, displayPath: path, knownTypes: knownTypes, checkFiles: checkFiles)
    }

    /// Validates manifest text as if read from `path` (relative paths in it resolve against `path`'s directory).
    /// - Parameter environment: where a model named `ORG/NAME` is looked for (`HubCache.root`).
    public static func parse(yaml: String, path: String, displayPath: String? = nil, knownTypes: [String] = Manifest.knownTypes,
                             checkFiles: Bool = true, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Manifest {
        let absolute = standardize(path, relativeTo: FileManager.default.currentDirectoryPath)
        let reader = ManifestReader(file: displayPath ?? path,
                                    directory: (absolute as NSString).deletingLastPathComponent,
                                    knownTypes: knownTypes.map { $0.lowercased() }, checkFiles: checkFiles, environment: environment)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let e as YamlError {
            throw reader.error(from: e)
        }
        guard let root else { throw reader.error(at: nil, "the manifest is empty") }
        return try reader.manifest(root, path: absolute)
    }

    static func standardize(_ path: String, relativeTo directory: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        return URL(fileURLWithPath: expanded, relativeTo: URL(fileURLWithPath: directory, isDirectory: true))
            .standardizedFileURL.path
    }
}

/// A manifest fault, printed as compilers print them so editors jump to the spot.
public struct ManifestError: FileFault, Equatable {
    public var file: String
    /// 1-based; 0 when the fault is not at a place in the text (unreadable file).
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file; self.line = line; self.column = column; self.message = message
    }

    public var path: String { file }
    public var fault: String { line > 0 ? "\(line):\(column): \(message)" : message }

    public var description: String {
        // one line whatever the YAML held: values are quoted shortened where they are named, and
        // the whole is freed of control characters here
        line > 0 ? "\(displayName(file)):\(line):\(column): \(oneLine(message))" : "\(displayName(file)): \(oneLine(message))"
    }
}

/// Walks the composed YAML tree; each check reports the node it looked at.
private struct ManifestReader {
    let file: String
    let directory: String
    let knownTypes: [String]
    let checkFiles: Bool
    let environment: [String: String]

    static let topKeys = ["output", "eval", "threads", "calibration", "types", "gates", "models"]
    static let evalKeys = ["text", "ctx", "chunks"]
    static let modelKeys = ["name", "path", "types", "gates", "calibration"]
    static let typeEntryKeys = ["type", "gates"]
    static let calibrationKeys = ["imatrix", "calibrate"]

    func error(at node: Node?, _ message: String) -> ManifestError {
        ManifestError(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1, message: oneLine(message, limit: 300))
    }

    func error(from e: YamlError) -> ManifestError {
        let r = yamlError(e)
        return ManifestError(file: r.file, line: r.line, column: r.column, message: oneLine(r.message, limit: 300))
    }

    private func yamlError(_ e: YamlError) -> ManifestError {
        switch e {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let detail = context.map { "\(problem) (\($0.text) at line \($0.mark.line))" } ?? problem
            return ManifestError(file: file, line: mark.line, column: mark.column, message: "YAML: \(detail)")
        case let .duplicatedKeysInMapping(duplicates, context):
            return ManifestError(file: file, line: context.mark.line, column: context.mark.column,
                                 message: "duplicate key \(duplicates.joined(separator: ", "))")
        case let .reader(problem, offset, _, yaml):
            // The reader reports a byte offset (bad encoding); turn it into a line for the editor.
            let prefix = yaml.utf8.prefix(offset ?? 0)
            let line = prefix.reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            let column = prefix.count - (prefix.lastIndex(of: UInt8(ascii: "\n")).map { prefix.distance(from: prefix.startIndex, to: $0) + 1 } ?? 0) + 1
            return ManifestError(file: file, line: line, column: column, message: "YAML: \(problem)")
        default:
            return ManifestError(file: file, line: 1, column: 1, message: "YAML: \(e)")
        }
    }

    // MARK: Kinds

    /// The resolved YAML tag (quoted scalars are strings, `512` an int, `~` null).
    func kind(_ node: Node) -> Tag.Name { Tag.Name(rawValue: node.tag.rawValue) }

    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a map"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar:
            switch kind(node) {
            case .null: return "nothing"
            case .int, .float: return "a number"
            case .bool: return "true/false"
            default: return "\"\(displayName(node.string ?? ""))\""
            }
        }
    }

    /// The map's entries in order, refusing keys outside `allowed` (listed in the message so the fix is obvious).
    func map(_ node: Node, _ what: String, allowed: [String]) throws -> [(key: String, keyNode: Node, value: Node)] {
        guard case .mapping(let m) = node else {
            throw error(at: node, "\(what): expected a map, got \(describe(node))")
        }
        var out: [(key: String, keyNode: Node, value: Node)] = []
        for (k, v) in m {
            guard case .scalar = k, let key = k.string else { throw error(at: k, "\(what): keys must be plain names") }
            guard allowed.contains(key) else {
                throw error(at: k, "unknown key '\(displayName(key))' in \(what); allowed: \(allowed.joined(separator: ", "))")
            }
            out.append((key, k, v))
        }
        return out
    }

    func string(_ node: Node, _ what: String) throws -> String {
        guard case .scalar = node, kind(node) != .null, let s = node.string, !s.isEmpty else {
            throw error(at: node, "\(what): expected a string, got \(describe(node))")
        }
        return s
    }

    func number(_ node: Node, _ what: String) throws -> Double {
        let value: Double?
        switch kind(node) {
        case .int: value = node.int.map(Double.init)
        case .float: value = node.float
        default: value = nil
        }
        guard case .scalar = node, let value, value.isFinite else {
            throw error(at: node, "\(what): expected a number, got \(describe(node))")
        }
        return value
    }

    func positiveInt(_ node: Node, _ what: String, minimum: Int = 1) throws -> Int {
        guard kind(node) == .int, let i = node.int else {
            throw error(at: node, "\(what): expected a whole number, got \(describe(node))")
        }
        guard i >= minimum else { throw error(at: node, "\(what) must be at least \(minimum), got \(i)") }
        return i
    }

    func list(_ node: Node, _ what: String) throws -> [Node] {
        guard case .sequence(let s) = node else {
            throw error(at: node, "\(what): expected a list, got \(describe(node))")
        }
        return Array(s)
    }

    // MARK: Paths

    enum FileKind { case file, directory }

    func path(_ node: Node, _ what: String, mustExist kind: FileKind?) throws -> String {
        let p = Manifest.standardize(try string(node, what), relativeTo: directory)
        guard checkFiles, let kind else { return p }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            throw error(at: node, "\(what): \(displayName(p)) does not exist")
        }
        switch kind {
        case .directory where !isDir.boolValue: throw error(at: node, "\(what): \(displayName(p)) is not a directory")
        case .file where isDir.boolValue: throw error(at: node, "\(what): \(displayName(p)) is a directory, expected a file")
        case .file:
            // a FIFO or device would hang the hashing and reading of it
            var st = stat()
            if stat(p, &st) == 0, let why = InputFile.notRegular(st.st_mode) { throw error(at: node, "\(what): \(displayName(p)) \(why), expected a regular file") }
            return p
        default: return p
        }
    }

    /// A model's `path`: a directory relative to the manifest, or — when no such directory exists —
    /// `ORG/NAME[@REVISION]` from the local Hugging Face cache (with the model's name).
    func modelPath(_ node: Node) throws -> (String, String?) {
        let raw = try string(node, "path")
        let p = Manifest.standardize(raw, relativeTo: directory)
        if checkFiles, !FileManager.default.fileExists(atPath: p), HubCache.parse(raw) != nil {
            do {
                let location = try ModelLocation.resolve(raw, environment: environment)
                return (location.path, location.directoryName)
            } catch .notInHubCache(let id, let looked, let fetch) {
                throw self.error(at: node, "path: \(displayName(p)) does not exist, and \(displayName(id)) is not in the Hugging Face cache "
                                 + "(no \(displayName(looked))); fetch it with `\(fetch)`")
            } catch {
                throw self.error(at: node, "path: \(error.fault)")
            }
        }
        return (try path(node, "path", mustExist: .directory), nil)
    }

    // MARK: Sections

    func manifest(_ root: Node, path: String) throws -> Manifest {
        let entries = try map(root, "the manifest", allowed: Self.topKeys)
        var output: String?
        var eval: EvalSettings?
        var threads: Int?
        var calibration = Calibration.none
        var types: [Manifest.TypeEntry]?
        var typesNode: Node?
        var gates = Gates()
        var modelsNode: Node?
        for (key, _, value) in entries {
            switch key {
            case "output": output = try self.path(value, "output", mustExist: nil)
            case "eval": eval = try evalSettings(value)
            case "threads": threads = try positiveInt(value, "threads")
            case "calibration": calibration = try self.calibration(value)
            case "gates": gates = try self.gates(value, "gates")
            case "types": typesNode = value
            case "models": modelsNode = value
            default: break
            }
        }
        // Entries keep only their own gates here; each model merges them over its own and the top level's.
        if let typesNode { types = try typeList(typesNode, what: "types") }
        guard let output else { throw error(at: root, "missing required key 'output' (the output directory)") }
        guard let eval else { throw error(at: root, "missing required key 'eval' (with 'text', the evaluation text)") }
        guard let modelsNode else { throw error(at: root, "missing required key 'models' (a list of checkpoint directories)") }
        let modelNodes = try list(modelsNode, "models")
        guard !modelNodes.isEmpty else { throw error(at: modelsNode, "models: the list is empty; give at least one model") }
        var models: [Manifest.Model] = []
        var firstSeen: [String: Int] = [:]
        for node in modelNodes {
            let (model, nameNode) = try self.model(node, defaults: (types, gates, calibration))
            if let line = firstSeen[model.name] {
                throw error(at: nameNode, "duplicate model name '\(displayName(model.name))' (first at line \(line)); give each model a unique 'name'")
            }
            firstSeen[model.name] = nameNode.mark?.line ?? 0
            models.append(model)
        }
        return Manifest(path: path, output: output, eval: eval, threads: threads, models: models)
    }

    func evalSettings(_ node: Node) throws -> EvalSettings {
        var text: String?
        var ctx = 512
        var chunks: Int?
        for (key, _, value) in try map(node, "eval", allowed: Self.evalKeys) {
            switch key {
            case "text": text = try path(value, "eval.text", mustExist: .file)
            // Perplexity needs a few tokens per chunk: half of each chunk is context, half scored.
            case "ctx": ctx = try positiveInt(value, "eval.ctx", minimum: 4)
            case "chunks": chunks = try positiveInt(value, "eval.chunks")
            default: break
            }
        }
        guard let text else { throw error(at: node, "eval: missing required key 'text' (the evaluation text, plain or .gz)") }
        return EvalSettings(text: text, ctx: ctx, chunks: chunks)
    }

    func calibration(_ node: Node) throws -> Calibration {
        let entries = try map(node, "calibration", allowed: Self.calibrationKeys)
        guard entries.count <= 1 else {
            throw error(at: entries[1].keyNode, "calibration: give either 'imatrix' or 'calibrate', not both")
        }
        guard let (key, _, value) = entries.first else { return .none }
        let p = try path(value, "calibration.\(key)", mustExist: .file)
        return key == "imatrix" ? .imatrix(p) : .calibrate(p)
    }

    func gates(_ node: Node, _ what: String) throws -> Gates {
        var g = Gates()
        for (key, _, value) in try map(node, what, allowed: Gates.keys) {
            let v = try number(value, "\(what).\(key)")
            switch key {
            case "max_kld":
                guard v >= 0 else { throw error(at: value, "\(what).max_kld must not be negative, got \(v)") }
                g.maxKLD = v
            case "max_ppl_increase_pct": g.maxPPLIncreasePct = v
            case "max_size_mb":
                guard v > 0 else { throw error(at: value, "\(what).max_size_mb must be positive, got \(v)") }
                g.maxSizeMB = v
            case "min_same_top_pct":
                guard (0...100).contains(v) else { throw error(at: value, "\(what).min_same_top_pct must be between 0 and 100, got \(v)") }
                g.minSameTopPct = v
            default: break
            }
        }
        return g
    }

    /// A list of `q4_0` or `{type: q4_0, gates: {...}}` entries, each with only the gates it names.
    func typeList(_ node: Node, what: String) throws -> [Manifest.TypeEntry] {
        let items = try list(node, what)
        guard !items.isEmpty else { throw error(at: node, "\(what): the list is empty; give at least one type") }
        var out: [Manifest.TypeEntry] = []
        var firstSeen: [String: Int] = [:]
        for item in items {
            var typeNode = item
            var gates = Gates()
            if case .mapping = item {
                var found: Node?
                for (key, _, value) in try map(item, "a type entry", allowed: Self.typeEntryKeys) {
                    if key == "type" { found = value } else { gates = try self.gates(value, "gates") }
                }
                guard let found else { throw error(at: item, "a type entry needs 'type' (e.g. {type: q4_0, gates: {max_kld: 0.4}})") }
                typeNode = found
            } else if case .scalar = item {
            } else {
                throw error(at: item, "\(what): each entry is a type name or {type, gates}, got \(describe(item))")
            }
            let type = try string(typeNode, "type").lowercased()
            guard knownTypes.contains(type) else {
                throw error(at: typeNode, "unknown type '\(displayName(type))'; known: \(knownTypes.joined(separator: ", "))")
            }
            if let line = firstSeen[type] {
                throw error(at: typeNode, "duplicate type '\(displayName(type))' (first at line \(line))")
            }
            firstSeen[type] = typeNode.mark?.line ?? 0
            out.append(Manifest.TypeEntry(type: type, gates: gates))
        }
        return out
    }

    /// The model and the node its name came from (the `name` value, or `path` when the name is the directory's).
    func model(_ node: Node, defaults: (types: [Manifest.TypeEntry]?, gates: Gates, calibration: Calibration))
        throws -> (Manifest.Model, Node) {
        let entries = try map(node, "a model", allowed: Self.modelKeys)
        var name: String?
        var nameNode: Node?
        var path: String?
        var directoryName: String?
        var pathNode: Node?
        var gates = defaults.gates
        var calibration = defaults.calibration
        var typesNode: Node?
        for (key, _, value) in entries {
            switch key {
            case "name": name = try string(value, "name"); nameNode = value
            case "path": (path, directoryName) = try modelPath(value); pathNode = value
            case "gates": gates = try self.gates(value, "gates").merged(over: defaults.gates)
            case "calibration": calibration = try self.calibration(value)
            case "types": typesNode = value
            default: break
            }
        }
        guard let path, let pathNode else { throw error(at: node, "a model needs 'path' (its checkpoint directory)") }
        let ownTypes: [Manifest.TypeEntry]
        if let typesNode {
            ownTypes = try typeList(typesNode, what: "types")
        } else if let defaults = defaults.types {
            ownTypes = defaults
        } else {
            throw error(at: node, "no types for this model: give 'types' here or at the top level")
        }
        // Per key: top level < model < type entry (`gates` already holds the model's over the top level's).
        let types = ownTypes.map { Manifest.TypeEntry(type: $0.type, gates: $0.gates.merged(over: gates)) }
        let finalName = name ?? directoryName ?? (path as NSString).lastPathComponent
        let finalNode = nameNode ?? pathNode
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        // The name becomes a directory and file name under the output directory.
        guard !finalName.isEmpty, finalName.unicodeScalars.allSatisfy(allowed.contains), finalName != ".", finalName != ".." else {
            throw error(at: finalNode, "model name '\(displayName(finalName))' must be letters, digits, '.', '_' or '-'"
                        + (name == nil ? "; give the model a 'name'" : ""))
        }
        return (Manifest.Model(name: finalName, path: path, types: types, calibration: calibration, directoryName: directoryName), finalNode)
    }
}
