import Foundation
import MappedIO
import StrictJSON

/// Hyper-parameters from `config.json`, read the way convert_hf_to_gguf's `find_hparam` does.
public struct ModelConfig: Sendable {
    public let path: String
    public let json: JSONObject
    /// `architectures[0]`: the Hugging Face class, which picks the family.
    public let architecture: String
    public let blockCount: Int
    public let contextLength: Int?
    public let embeddingLength: Int
    public let feedForwardLength: Int?
    public let headCount: Int
    public let headCountKV: Int?
    /// `head_dim` as the config states it.
    public let headDim: Int?
    public let rmsNormEps: Double?
    public let vocabSize: Int?
    public let tieWordEmbeddings: Bool
    /// `rope_parameters` (new transformers) or `rope_scaling`, with `rope_theta` mirrored in; the
    /// `full_attention` entry when the model has per-layer-type parameters.
    public let rope: JSONObject
    /// The rope base of sliding-window layers (`sliding_attention.rope_theta`, or a local-theta key).
    public let ropeThetaSliding: Double?

    /// `architectures[0]` of a model directory's config.json (what picks the family).
    public static func architecture(directory: String) throws -> (path: String, json: JSONObject, architecture: String) {
        let p = (directory as NSString).appendingPathComponent("config.json")
        let json = try readJSONObject(p)
        guard let archs = json["architectures"]?.arrayValue, let a = archs.first?.stringValue else {
            throw ModelFileError.config(path: p, detail: "no \"architectures\" entry")
        }
        return (p, json, a)
    }

    /// - Parameter defaults: values transformers' config class fills in for keys config.json
    ///   leaves out (convert_hf_to_gguf reads `AutoConfig.from_pretrained(...).to_dict()`), applied
    ///   when transformers can load the config (`loadedThroughTransformers`).
    public init(path: String, json raw: JSONObject, defaults: JSONObject = JSONObject()) throws {
        var json = raw
        if Self.loadedThroughTransformers(raw) {
            for (k, v) in defaults.entries where json[k] == nil { json.set(k, v) }
        }
        self.path = path
        self.json = json
        func fail(_ m: String) -> ModelFileError { .config(path: path, detail: m) }
        guard let archs = json["architectures"]?.arrayValue, let arch = archs.first?.stringValue else {
            throw fail("no \"architectures\" entry")
        }
        architecture = arch
        func int(_ keys: [String]) throws -> Int? {
            for k in keys {
                guard let v = json[k], !v.isNull else { continue }
                guard let i = v.intValue, i >= 0, i <= Int(UInt32.max) else { throw fail("\"\(k)\" must be a non-negative integer") }
                return i
            }
            return nil
        }
        func required(_ keys: [String]) throws -> Int {
            guard let v = try int(keys), v > 0 else { throw fail("missing or zero \"\(keys[0])\"") }
            return v
        }
        blockCount = try required(["num_hidden_layers", "n_layers", "num_layers", "n_layer"])
        contextLength = try int(["max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"])
        embeddingLength = try required(["hidden_size", "n_embd", "dim"])
        feedForwardLength = try int(["prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner", "hidden_dim"])
        headCount = try required(["num_attention_heads", "n_head", "n_heads"])
        headCountKV = try int(["num_key_value_heads", "n_kv_heads"])
        headDim = try int(["head_dim"])
        if let kv = headCountKV, kv == 0 || headCount % kv != 0 {
            throw fail("num_key_value_heads \(kv) does not divide num_attention_heads \(headCount)")
        }
        var eps: Double? = nil
        for k in ["rms_norm_eps", "norm_eps"] {
            if let v = json[k], !v.isNull {
                guard let d = v.doubleValue else { throw fail("\"\(k)\" must be a number") }
                eps = d
                break
            }
        }
        rmsNormEps = eps
        vocabSize = try int(["vocab_size"])
        tieWordEmbeddings = json["tie_word_embeddings"]?.boolValue ?? false
        var rope = (json["rope_parameters"]?.objectValue ?? json["rope_scaling"]?.objectValue) ?? JSONObject()
        var sliding = rope["sliding_attention"]?["rope_theta"]?.doubleValue
        if rope["full_attention"] == nil && rope["sliding_attention"] == nil {
            for k in ["local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta", "rope_local_base_freq"] {
                if let v = json[k], !v.isNull { sliding = v.doubleValue; break }
            }
            for k in ["global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"] {
                if let v = json[k], !v.isNull { if rope["rope_theta"] == nil { rope.append("rope_theta", v) }; break }
            }
            if rope["rope_type"] == nil, let t = rope["type"] { rope.append("rope_type", t) }
            if rope["original_max_position_embeddings"] == nil, let o = json["original_max_position_embeddings"], !o.isNull {
                rope.append("original_max_position_embeddings", o)
            }
        }
        self.rope = rope["full_attention"]?.objectValue ?? rope
        ropeThetaSliding = sliding
    }

    /// An integer hyper-parameter by the first of `keys` present.
    public func int(_ keys: [String]) -> Int? {
        for k in keys { if let v = json[k], !v.isNull { return v.intValue } }
        return nil
    }

    public func double(_ keys: [String]) -> Double? {
        for k in keys { if let v = json[k], !v.isNull { return v.doubleValue } }
        return nil
    }

    public var ropeDimension: Int { headDim ?? embeddingLength / headCount }
    /// convert_hf_to_gguf reads `AutoConfig.from_pretrained(...).to_dict()` — the config class's
    /// defaults and derived fields filled in — only when config.json names a `model_type`;
    /// otherwise it falls back to the JSON as written.
    public static func loadedThroughTransformers(_ json: JSONObject) -> Bool { json["model_type"]?.stringValue != nil }
    public var loadedThroughTransformers: Bool { Self.loadedThroughTransformers(json) }
    public var kvHeads: Int { headCountKV ?? headCount }

    /// `partial_rotary_factor` (in rope_parameters with new transformers, top-level with old).
    public var partialRotaryFactor: Double? { rope["partial_rotary_factor"]?.doubleValue ?? double(["partial_rotary_factor"]) }

    /// Rotated dims per head for a partial rotary factor, as convert computes them:
    /// `int(factor * hidden_size) // n_head`.
    public func rotaryDims(factor: Double) -> Int { Int((factor * Double(embeddingLength)).rounded(.towardZero)) / headCount }
}

/// A JSON file that must hold an object; errors name the file.
/// - Parameter skipping: top-level members checked but not built (see `JSONParser.parse(_:skipping:)`).
public func readJSONObject(_ path: String, skipping: Set<String> = []) throws -> JSONObject {
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw FileManager.default.fileExists(atPath: path) ? ModelFileError.unreadable(path: path) : ModelFileError.missing(path: path)
    }
    let r: Result<JSONValue, JSONError> = data.withUnsafeBytes { raw in
        do throws(JSONError) { return .success(try JSONParser.parse(raw, skipping: skipping)) } catch { return .failure(error) }
    }
    let v: JSONValue
    do { v = try r.get() } catch { throw ModelFileError.invalidJSON(path: path, detail: "\(error)") }
    guard let o = v.objectValue else { throw ModelFileError.notJSONObject(path: path) }
    return o
}

/// `readJSONObject`, or nil when the file does not exist.
public func readOptionalJSONObject(_ path: String, skipping: Set<String> = []) throws -> JSONObject? {
    FileManager.default.fileExists(atPath: path) ? try readJSONObject(path, skipping: skipping) : nil
}
