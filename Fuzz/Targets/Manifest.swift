import Batch

/// A batch manifest (YAML): parsed and validated as `edgequant batch` does, without checking
/// that the files it names exist.
@Sendable public func fuzzManifest(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
    let yaml = String(decoding: data, as: UTF8.self)
    do {
        let m = try Manifest.parse(yaml: yaml, path: "/fuzz/manifest.yaml", checkFiles: false)
        blackHole(m.models.count)
        return .accepted
    } catch {
        return rejected(error)
    }
}
