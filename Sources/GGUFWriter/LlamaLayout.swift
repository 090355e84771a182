import MappedIO

/// The hyper-parameters of a llama-family model (`llama`, `qwen2`) and the proof that its tensors
/// have the shapes they imply. Built from GGUF-style metadata and tensor shapes (a GGUF file, or a
/// checkpoint mapped to GGUF names) before any buffer is sized from them: every count is bounded,
/// every division is by a checked divisor, and every tensor the forward pass touches exists with
/// the shape llama.cpp's loader would demand (`create_tensor` with its expected `ne`).
public struct LlamaLayout: Sendable, Equatable {
    public let architecture: String
    public let nEmbd: Int
    public let nLayer: Int
    public let nHead: Int
    public let nHeadKV: Int
    public let headDim: Int
    public let nFF: Int
    public let nVocab: Int
    public let ropeDims: Int
    public let rmsEps: Float
    public let ropeBase: Float
    /// `output.weight` is absent: the output layer is the token embedding (tied).
    public let tiedOutput: Bool
    public let hasRopeFreqs: Bool
    /// Layers whose q/k/v projections have biases (Qwen2 has them, llama usually not).
    public let hasQKVBias: Bool

    public static let architectures = ["llama", "qwen2"]
    /// Bounds far past any real model, so that hostile metadata fails here and not in an allocation.
    public static let maxLayers = 4096
    public static let maxWidth = 1 << 20
    public static let maxHeads = 1 << 14

    /// - Parameters:
    ///   - metadata: GGUF keys (`llama.embedding_length`, …).
    ///   - shapes: GGUF tensor name → `ne` (innermost first).
    public init(path: String, metadata: [String: GGUFValue], shapes: [String: [Int]]) throws(FileError) {
        func fail(_ m: String) -> FileError { FileError(path: path, message: m) }
        guard let arch = metadata["general.architecture"]?.stringValue else {
            throw fail("no general.architecture; supported for inference: \(Self.architectures.joined(separator: ", "))")
        }
        guard Self.architectures.contains(arch) else {
            throw fail("unsupported architecture \(displayName(arch)) for inference (\(Self.architectures.joined(separator: ", ")))")
        }
        architecture = arch
        func int(_ k: String, default d: Int? = nil, in range: ClosedRange<Int>) throws(FileError) -> Int {
            guard let raw = metadata["\(arch).\(k)"] else {
                guard let d else { throw fail("missing \(arch).\(k)") }
                return d
            }
            guard let v = raw.intValue, range.contains(v) else {
                throw fail("\(arch).\(k) = \(Self.render(raw)) is out of range \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        func float(_ k: String, default d: Float, positive: Bool) throws(FileError) -> Float {
            guard let raw = metadata["\(arch).\(k)"] else { return d }
            guard let v = raw.doubleValue, v.isFinite, positive ? v > 0 : v >= 0, Float(v).isFinite else {
                throw fail("\(arch).\(k) = \(Self.render(raw)) must be a finite \(positive ? "positive" : "non-negative") number")
            }
            return Float(v)
        }
        nEmbd = try int("embedding_length", in: 1...Self.maxWidth)
        nLayer = try int("block_count", in: 1...Self.maxLayers)
        nHead = try int("attention.head_count", in: 1...Self.maxHeads)
        nHeadKV = try int("attention.head_count_kv", default: nHead, in: 1...Self.maxHeads)
        guard nHead % nHeadKV == 0 else {
            throw fail("\(arch).attention.head_count_kv \(nHeadKV) does not divide head_count \(nHead)")
        }
        if metadata["\(arch).attention.key_length"] == nil, nEmbd % nHead != 0 {
            throw fail("\(arch).attention.head_count \(nHead) does not divide embedding_length \(nEmbd) (and no key_length is given)")
        }
        headDim = try int("attention.key_length", default: nEmbd / nHead, in: 1...Self.maxWidth)
        let valueLength = try int("attention.value_length", default: headDim, in: 1...Self.maxWidth)
        guard valueLength == headDim else {
            throw fail("\(arch).attention.value_length \(valueLength) differs from key_length \(headDim) (not supported)")
        }
        let (qWidth, o) = nHead.multipliedReportingOverflow(by: headDim)
        guard !o, qWidth <= Self.maxWidth else { throw fail("head_count \(nHead) × key_length \(headDim) is absurd") }
        ropeDims = try int("rope.dimension_count", default: headDim, in: 0...headDim)
        guard ropeDims % 2 == 0 else { throw fail("\(arch).rope.dimension_count \(ropeDims) is odd") }
        nFF = try int("feed_forward_length", in: 1...Self.maxWidth)
        rmsEps = try float("attention.layer_norm_rms_epsilon", default: 1e-5, positive: false)
        ropeBase = try float("rope.freq_base", default: 10000, positive: true)

        func expect(_ name: String, _ ne: [Int]) throws(FileError) {
            guard let got = shapes[name] else { throw fail("missing tensor \(name)") }
            guard Self.sameShape(got, ne) else {
                throw fail("tensor \(name) has shape \(Self.render(got)), the hyper-parameters imply \(Self.render(ne))")
            }
        }
        guard let embd = shapes["token_embd.weight"] else { throw fail("missing tensor token_embd.weight") }
        guard embd.count >= 2, embd[1] >= 1 else { throw fail("tensor token_embd.weight has shape \(Self.render(embd)), expected [\(nEmbd), n_vocab]") }
        nVocab = embd[1]
        try expect("token_embd.weight", [nEmbd, nVocab])
        tiedOutput = shapes["output.weight"] == nil
        if !tiedOutput { try expect("output.weight", [nEmbd, nVocab]) }
        try expect("output_norm.weight", [nEmbd])
        hasRopeFreqs = shapes["rope_freqs.weight"] != nil
        if hasRopeFreqs { try expect("rope_freqs.weight", [ropeDims / 2]) }
        let kvWidth = nHeadKV * headDim
        hasQKVBias = shapes["blk.0.attn_q.bias"] != nil
        for i in 0..<nLayer {
            let p = "blk.\(i)."
            try expect(p + "attn_norm.weight", [nEmbd])
            try expect(p + "attn_q.weight", [nEmbd, qWidth])
            try expect(p + "attn_k.weight", [nEmbd, kvWidth])
            try expect(p + "attn_v.weight", [nEmbd, kvWidth])
            try expect(p + "attn_output.weight", [qWidth, nEmbd])
            try expect(p + "ffn_norm.weight", [nEmbd])
            try expect(p + "ffn_gate.weight", [nEmbd, nFF])
            try expect(p + "ffn_up.weight", [nEmbd, nFF])
            try expect(p + "ffn_down.weight", [nFF, nEmbd])
            for (b, width) in [("attn_q.bias", qWidth), ("attn_k.bias", kvWidth), ("attn_v.bias", kvWidth)] {
                if hasQKVBias { try expect(p + b, [width]) }
                else if shapes[p + b] != nil { throw fail("tensor \(p + b) is present, but layer 0 has no attn_q.bias") }
            }
        }
    }

    /// The memory the forward pass allocates for `tokens` positions in one batch, with a KV cache
    /// of `cacheTokens` positions (0 without a cache): the activations of one layer, the logits, the
    /// rope tables and the f32 copies of the norms. Nil when the figure overflows.
    public func workingSetBytes(tokens: Int, cacheTokens: Int) -> Int? {
        let kv = nHeadKV * headDim, q = nHead * headDim
        return checkedSum(
            checkedProduct(4, tokens, 3 * nEmbd + 2 * q + 2 * kv + 2 * nFF),   // one layer's activations
            checkedProduct(4, tokens, nVocab),                                  // logits
            checkedProduct(4, tokens, nEmbd, 2),                                // the output layer's input
            checkedProduct(4, max(tokens, cacheTokens), ropeDims),              // cos/sin tables
            checkedProduct(4, 2, nLayer, cacheTokens, kv),                      // KV cache
            checkedProduct(4, nLayer, 2 * nEmbd + 2 * q + 2 * kv),              // norms and biases as f32
            checkedProduct(4, (tokens + 63) / 64 * 64, kv))                     // packed keys for tiled attention
    }

    /// Shapes equal up to trailing 1s, as ggml compares `ne` (GGUF stores n_dims exactly, a
    /// writer may keep a trailing 1).
    static func sameShape(_ a: [Int], _ b: [Int]) -> Bool {
        let n = max(a.count, b.count)
        for i in 0..<n where (i < a.count ? a[i] : 1) != (i < b.count ? b[i] : 1) { return false }
        return true
    }

    static func render(_ ne: [Int]) -> String { "[" + ne.map(String.init).joined(separator: ", ") + "]" }

    static func render(_ v: GGUFValue) -> String {
        switch v {
        case .string(let s): return "\"\(displayName(s))\""
        case .array: return "an array"
        case .float32(let f): return "\(f)"
        case .float64(let d): return "\(d)"
        case .bool(let b): return "\(b)"
        case .uint64(let u): return "\(u)"
        default: return v.intValue.map(String.init) ?? "?"
        }
    }
}
