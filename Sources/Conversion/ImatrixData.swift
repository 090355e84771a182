import GGUFWriter

/// What llama-quantize takes from an imatrix file (`--imatrix`): the per-tensor quantization
/// weights `load_imatrix` computes, plus what it records in the output's metadata. Conversion
/// only sees this; reading the file is the Calibration module's job.
public struct ImatrixData: Sendable {
    /// `imatrix_data`: weight tensor name → one weight per input column, all experts' slices one
    /// after another (`ne0 · n_expert` values).
    public var weights: [String: [Float]]
    /// The path as the user gave it (`quantize.imatrix.file`).
    public var file: String
    /// `imatrix.datasets` (the first becomes `quantize.imatrix.dataset`).
    public var datasets: [String]
    /// `imatrix.chunk_count` (`quantize.imatrix.chunks_count` when positive).
    public var chunkCount: Int

    public init(weights: [String: [Float]], file: String, datasets: [String] = [], chunkCount: Int = 0) {
        self.weights = weights
        self.file = file
        self.datasets = datasets
        self.chunkCount = chunkCount
    }

    /// `prepare_imatrix`: `--exclude-weights` drops entries whose name contains any pattern;
    /// `--include-weights` keeps only entries whose name contains one. llama-quantize refuses both
    /// at once.
    public func filtered(include: [String], exclude: [String]) -> ImatrixData {
        var d = self
        if !exclude.isEmpty {
            d.weights = d.weights.filter { e in !exclude.contains { e.key.contains(substring: $0) } }
        }
        if !include.isEmpty {
            d.weights = d.weights.filter { e in include.contains { e.key.contains(substring: $0) } }
        }
        return d
    }

    /// The KV overrides llama-quantize adds for an imatrix, in its order; each is set with
    /// gguf_set_val_*, which removes an existing key and appends. Strings pass through a 128-byte
    /// `val_str` (`strncpy(…, 127)`), integers through `(uint32_t)std::abs(val_i64)`.
    public var metadata: [(key: String, value: GGUFValue)] {
        var kv: [(key: String, value: GGUFValue)] = [(GGUFKey.Quantize.imatrixFile, .string(Self.valStr(file)))]
        if let first = datasets.first {
            kv.append((GGUFKey.Quantize.imatrixDataset, .string(Self.valStr(first))))
        }
        kv.append((GGUFKey.Quantize.imatrixEntriesCount, .uint32(UInt32(truncatingIfNeeded: weights.count.magnitude))))
        if chunkCount > 0 {
            kv.append((GGUFKey.Quantize.imatrixChunksCount, .uint32(UInt32(truncatingIfNeeded: chunkCount.magnitude))))
        }
        return kv
    }

    /// A C string copied into `char val_str[128]`: up to the first NUL, at most 127 bytes. A cut
    /// inside a multi-byte character backs off to the character boundary (llama.cpp would write
    /// the invalid bytes; a GGUF string here is valid UTF-8).
    static func valStr(_ s: String) -> String {
        var bytes = Array(s.utf8.prefix { $0 != 0 }.prefix(127))
        while String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The first non-finite weight, which llama-quantize refuses ("imatrix contains non-finite value").
    func firstNonFinite() -> (name: String, value: Float)? {
        for name in weights.keys.sorted() {
            if let v = weights[name]!.first(where: { !$0.isFinite }) { return (name, v) }
        }
        return nil
    }
}

extension String {
    /// `std::string::find(needle) != npos`, on bytes; an empty needle matches everything.
    func contains(substring needle: String) -> Bool {
        needle.isEmpty || utf8.firstRange(of: needle.utf8) != nil
    }
}
