import Foundation
import GGUFWriter
import StrictJSON

// MARK: - generation_config.json

extension ModelNaming {
    mutating func applyGenerationConfig(_ g: JSONObject) throws(ModelNamingError) {
        func present(_ key: String) -> JSONValue? {
            guard let v = g[key], v != .null else { return nil }
            return v
        }
        func int32(_ key: String) throws(ModelNamingError) -> Int32?? {
            guard g[key] != nil else { return .none }
            guard let v = present(key) else { return .some(nil) }
            switch v {
            case .int(let i):
                guard let r = Int32(exactly: i) else { throw ModelNamingError("generation_config.json \(key) out of int32 range") }
                return .some(r)
            case .bool(let b): return .some(b ? 1 : 0)
            default: throw ModelNamingError("generation_config.json \(key) is not an integer")
            }
        }
        func float32(_ key: String) throws(ModelNamingError) -> Float?? {
            guard g[key] != nil else { return .none }
            guard let v = present(key) else { return .some(nil) }
            let d: Double
            switch v {
            case .int(let i): d = Double(i)
            case .double(let x): d = x
            case .bool(let b): d = b ? 1 : 0
            default: throw ModelNamingError("generation_config.json \(key) is not a number")
            }
            let f = Float(d)
            if f.isInfinite && d.isFinite { throw ModelNamingError("generation_config.json \(key) too large for float32") }
            return .some(f)
        }
        if let v = g["sequence"] {
            switch v {
            case .null: samplingSequence = nil
            case .string(let s): samplingSequence = s
            default: throw ModelNamingError("generation_config.json sequence is not a string")
            }
        }
        if let v = try int32("top_k") { samplingTopK = v }
        if let v = try float32("top_p") { samplingTopP = v }
        if let v = try float32("min_p") { samplingMinP = v }
        if let v = try float32("xtc_probability") { samplingXTCProbability = v }
        if let v = try float32("xtc_threshold") { samplingXTCThreshold = v }
        if let v = try float32("temperature") { samplingTemp = v }
        if let v = try int32("penalty_last_n") { samplingPenaltyLastN = v }
        if let v = try float32("penalty_repeat") { samplingPenaltyRepeat = v }
        else if let v = try float32("repetition_penalty") { samplingPenaltyRepeat = v }
        if let v = try int32("mirostat") { samplingMirostat = v }
        if let v = try float32("mirostat_tau") { samplingMirostatTau = v }
        if let v = try float32("mirostat_eta") { samplingMirostatEta = v }
    }
}
