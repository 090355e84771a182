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

        str(GGUFKey.General.samplingSequence, samplingSequence)
        i32(GGUFKey.General.samplingTopK, samplingTopK)
        f32(GGUFKey.General.samplingTopP, samplingTopP)
        f32(GGUFKey.General.samplingMinP, samplingMinP)
        f32(GGUFKey.General.samplingXtcProbability, samplingXTCProbability)
        f32(GGUFKey.General.samplingXtcThreshold, samplingXTCThreshold)
        f32(GGUFKey.General.samplingTemp, samplingTemp)
        i32(GGUFKey.General.samplingPenaltyLastN, samplingPenaltyLastN)
        f32(GGUFKey.General.samplingPenaltyRepeat, samplingPenaltyRepeat)
        i32(GGUFKey.General.samplingMirostat, samplingMirostat)
        f32(GGUFKey.General.samplingMirostatTau, samplingMirostatTau)
        f32(GGUFKey.General.samplingMirostatEta, samplingMirostatEta)

        str(GGUFKey.General.name, name)
        str(GGUFKey.General.author, author)
        str(GGUFKey.General.version, version)
        str(GGUFKey.General.organization, organization)
        str(GGUFKey.General.finetune, finetune)
        str(GGUFKey.General.basename, basename)
        str(GGUFKey.General.description, description)
        str(GGUFKey.General.quantizedBy, quantizedBy)
        str(GGUFKey.General.sizeLabel, sizeLabel)
        str(GGUFKey.General.license, license)
        str(GGUFKey.General.licenseName, licenseName)
        str(GGUFKey.General.licenseLink, licenseLink)
        str(GGUFKey.General.url, url)
        str(GGUFKey.General.doi, doi)
        str(GGUFKey.General.uuid, uuid)
        str(GGUFKey.General.repoUrl, repoURL)
        str(GGUFKey.General.sourceUrl, sourceURL)
        str(GGUFKey.General.sourceDoi, sourceDOI)
        str(GGUFKey.General.sourceUuid, sourceUUID)
        str(GGUFKey.General.sourceRepoUrl, sourceRepoURL)

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

        if let tags, !tags.isEmpty { kv.append((GGUFKey.General.tags, .strings(tags))) }
        if let languages, !languages.isEmpty { kv.append((GGUFKey.General.languages, .strings(languages))) }
        return kv
    }
}
