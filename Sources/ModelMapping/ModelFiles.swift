import Foundation
import MappedIO

/// The files of a checkpoint directory that conversion and evaluation read besides the weights.
/// Several are read with Foundation, whose `open` would block forever on a FIFO, so commands check
/// them first (`preflight`), and mark them as inputs that no output of the run may replace.
public enum ModelFiles {
    public static let names = [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
        "added_tokens.json", "special_tokens_map.json", "chat_template.jinja", "README.md",
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    ]

    /// For a model directory, or a model file (a GGUF, or a `.safetensors` beside its config): each
    /// of `names` present must be a regular file (symlinks followed: a Hugging Face cache snapshot
    /// is all symlinks), and is remembered as an input. A missing file is the loader's business.
    public static func preflight(_ model: String) throws(FileIOError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDir) else { return }
        let dir: String
        if isDir.boolValue {
            dir = model
        } else {
            try InputFile.requireRegularIfPresent(model)
            InputRegistry.shared.remember(path: model)
            guard model.hasSuffix(".safetensors") else { return }
            dir = (model as NSString).deletingLastPathComponent
        }
        for name in names {
            let p = (dir as NSString).appendingPathComponent(name)
            try InputFile.requireRegularIfPresent(p)
            InputRegistry.shared.remember(path: p)
        }
    }
}
