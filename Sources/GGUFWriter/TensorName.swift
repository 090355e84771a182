/// GGUF tensor names (gguf-py `TENSOR_NAMES`), built and taken apart in one place.
public enum TensorName {
    public static let tokenEmbd = "token_embd.weight"
    public static let perLayerTokenEmbd = "per_layer_token_embd.weight"
    public static let outputNorm = "output_norm.weight"
    public static let output = "output.weight"
    public static let ropeFreqs = "rope_freqs.weight"

    /// `blk.<il>.<name>`.
    public static func block(_ il: Int, _ name: String) -> String { "blk.\(il).\(name)" }

    /// `blk.<il>.`, what every tensor of layer `il` starts with.
    public static func blockPrefix(_ il: Int) -> String { "blk.\(il)." }

    /// A tensor of some layer (`blk.*`).
    public static func isBlock(_ name: String) -> Bool { name.hasPrefix("blk.") }

    /// `blk.<il>.<rest>` → (il, rest).
    public static func blockParts(_ name: String) -> (layer: Int, rest: Substring)? {
        guard isBlock(name) else { return nil }
        let tail = name.dropFirst(4)
        guard let dot = tail.firstIndex(of: "."), let il = Int(tail[..<dot]) else { return nil }
        return (il, tail[tail.index(after: dot)...])
    }
}
