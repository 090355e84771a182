import Foundation
import GGUFWriter
import StrictJSON

// MARK: - GGUF keys

extension ModelNaming {
    /// The key/value pairs `Metadata.set_gguf_meta_model` adds, in its order. Like GGUFWriter,
    /// empty strings and empty arrays are skipped. (`general.architecture` and `general.type`
    /// come before these in convert's output and are not included.)
    public func ggufKeys() -> [(String, GGUFValue)] {
        var kv: [(String, GGUFValue)] = []
        func str(_ key: String, _ v: String?) {
            if let v, !v.isEmpty { kv.append((key, .string(v))) }
        }
        func f32(_ key: String, _ v: Float?) { if let v { kv.append((key, .float32(v))) } }
        func i32(_ key: String, _ v: Int32?) { if let v { kv.append((key, .int32(v))) } }

        str("general.sampling.sequence", samplingSequence)
        i32("general.sampling.top_k", samplingTopK)
        f32("general.sampling.top_p", samplingTopP)
        f32("general.sampling.min_p", samplingMinP)
        f32("general.sampling.xtc_probability", samplingXTCProbability)
        f32("general.sampling.xtc_threshold", samplingXTCThreshold)
        f32("general.sampling.temp", samplingTemp)
        i32("general.sampling.penalty_last_n", samplingPenaltyLastN)
        f32("general.sampling.penalty_repeat", samplingPenaltyRepeat)
        i32("general.sampling.mirostat", samplingMirostat)
        f32("general.sampling.mirostat_tau", samplingMirostatTau)
        f32("general.sampling.mirostat_eta", samplingMirostatEta)

        str("general.name", name)
        str("general.author", author)
        str("general.version", version)
        str("general.organization", organization)
        str("general.finetune", finetune)
        str("general.basename", basename)
        str("general.description", description)
        str("general.quantized_by", quantizedBy)
        str("general.size_label", sizeLabel)
        str("general.license", license)
        str("general.license.name", licenseName)
        str("general.license.link", licenseLink)
        str("general.url", url)
        str("general.doi", doi)
        str("general.uuid", uuid)
        str("general.repo_url", repoURL)
        str("general.source.url", sourceURL)
        str("general.source.doi", sourceDOI)
        str("general.source.uuid", sourceUUID)
        str("general.source.repo_url", sourceRepoURL)

        func sources(_ list: [Source]?, _ prefix: String) {
            guard let list else { return }
            kv.append(("general.\(prefix).count", .uint32(UInt32(truncatingIfNeeded: list.count))))
            for (i, e) in list.enumerated() {
                let p = "general.\(prefix).\(i)."
                str(p + "name", e.name)
                str(p + "author", e.author)
                str(p + "version", e.version)
                str(p + "organization", e.organization)
                str(p + "description", e.description)
                str(p + "url", e.url)
                str(p + "doi", e.doi)
                str(p + "uuid", e.uuid)
                str(p + "repo_url", e.repoURL)
            }
        }
        sources(baseModels, "base_model")
        sources(datasets, "dataset")

        if let tags, !tags.isEmpty { kv.append(("general.tags", .strings(tags))) }
        if let languages, !languages.isEmpty { kv.append(("general.languages", .strings(languages))) }
        return kv
    }
}
