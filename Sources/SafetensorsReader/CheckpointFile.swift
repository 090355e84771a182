import MappedIO

/// One file of a checkpoint's weights — a `.safetensors` file or a PyTorch `.bin` — as the
/// converter reads it: tensors as byte ranges of the mmap, in the order convert_hf_to_gguf visits
/// them within the file.
public protocol CheckpointFile: AnyObject, Sendable {
    var path: String { get }
    var file: MappedFile { get }
    var tensors: [SafetensorsTensor] { get }
    /// String pairs the format keeps beside the tensors (safetensors' `__metadata__`).
    var metadata: [(key: String, value: String)] { get }
    /// The order convert_hf_to_gguf visits the tensors in: safetensors' `safe_open(...).keys()`
    /// is sorted by name, a state dict's `keys()` is its insertion order.
    var tensorsInReadOrder: [SafetensorsTensor] { get }
    func data(_ t: SafetensorsTensor) -> UnsafeRawBufferPointer
}

extension SafetensorsFile: CheckpointFile {
    public var tensorsInReadOrder: [SafetensorsTensor] {
        tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }
}

extension TorchFile: CheckpointFile {
    public var metadata: [(key: String, value: String)] { [] }
    public var tensorsInReadOrder: [SafetensorsTensor] { tensors }
}
