import GGMLCore
import GGUFWriter
import MappedIO
import Quantizers

/// The sizes every command needs of a model whatever its family: the KV cache, the memory
/// estimate, the vocabulary check, the per-layer observers.
public struct ModelDims: Sendable, Equatable {
    public var architecture: String
    public var nEmbd: Int
    public var nLayer: Int
    public var nHead: Int
    public var nHeadKV: Int
    public var headDim: Int
    public var nFF: Int
    public var nVocab: Int

    public init(architecture: String, nEmbd: Int, nLayer: Int, nHead: Int, nHeadKV: Int, headDim: Int, nFF: Int, nVocab: Int) {
        self.architecture = architecture
        self.nEmbd = nEmbd
        self.nLayer = nLayer
        self.nHead = nHead
        self.nHeadKV = nHeadKV
        self.headDim = headDim
        self.nFF = nFF
        self.nVocab = nVocab
    }

    /// Bounds far past any real model, so that hostile metadata fails in validation and not in an
    /// allocation.
    public static let maxLayers = 4096
    public static let maxWidth = 1 << 20
    public static let maxHeads = 1 << 14

    /// The memory the forward pass allocates for `tokens` positions in one batch, with a KV cache
    /// of `cacheTokens` positions (0 without a cache): the activations of one layer, the logits, the
    /// rope tables and the f32 copies of the norms. Nil when the figure overflows.
    public func workingSetBytes(tokens: Int, cacheTokens: Int) -> Int? {
        let kv = nHeadKV * headDim, q = nHead * headDim
        return checkedSum(
            checkedProduct(4, tokens, 4 * nEmbd + 3 * q + 2 * kv + 3 * nFF),   // one layer's activations
            checkedProduct(4, tokens, nVocab),                                  // logits
            checkedProduct(4, tokens, nEmbd, 2),                                // the output layer's input
            checkedProduct(4, 2, max(tokens, cacheTokens), headDim),            // cos/sin tables
            checkedProduct(4, 2, nLayer, cacheTokens, kv),                      // KV cache
            checkedProduct(4, nLayer, 6 * nEmbd + 2 * q + 2 * kv + 2 * headDim + nFF), // norms and biases as f32
            checkedProduct(4, (tokens + 63) / 64 * 64, kv))                     // packed keys for tiled attention
    }
}

/// A model family's inference side: built from validated tensors (`TensorSet`), it runs llama.cpp's
/// graph for its `general.architecture` with the shared layers of `Pass`. One type per family
/// (the `Families` module holds them with their conversion rules).
public protocol Architecture: Sendable {
    /// Reads the hyper-parameters and takes every tensor the forward pass uses, with the shape
    /// llama.cpp's loader demands (`create_tensor`). Throws on the first inconsistency.
    init(_ tensors: TensorSet) throws
    var dims: ModelDims { get }
    /// The embedding matrix (`token_embd.weight`).
    var tokenEmbd: Weight { get }
    /// The residual stream for `tokens`: embedding rows, scaled as the family does.
    func embed(_ tokens: [Int32], _ pass: Pass) -> Matrix
    /// Layer `il` on the residual stream `x`, in place.
    func layer(_ il: Int, _ x: Matrix, _ pass: Pass)
    /// Logits of every row of `x` (the residual stream leaving the last layer).
    func output(_ x: Matrix, _ pass: Pass) -> Matrix
}

extension Architecture {
    public func embed(_ tokens: [Int32], _ pass: Pass) -> Matrix { pass.embedRows(tokenEmbd, tokens, scale: nil) }
}

/// The tensors a family is built from, keyed by GGUF name, with the metadata of the file: what
/// `Architecture.init` reads through `hparams` and takes through `matrix`/`vector`, so that every
/// size is checked before it is used. In shape-only mode (a conversion plan proving its output
/// loadable before writing it) vectors are zeros and matrices point at no data: such a set
/// validates and is never run.
public struct TensorSet {
    public let path: String
    public let metadata: [String: GGUFValue]
    public let weights: [String: Weight]
    public let architecture: String

    public init(path: String, metadata: [String: GGUFValue], weights: [String: Weight]) throws {
        self.path = path
        self.metadata = metadata
        self.weights = weights
        guard let arch = metadata[GGUFKey.General.architecture]?.stringValue else { throw InferenceError.invalidModel(path: path, detail: "no general.architecture") }
        architecture = arch
    }

    /// Tensors known by shape only (`ne`, innermost first).
    public static func shapes(path: String, metadata: [String: GGUFValue], shapes: [String: [Int]]) throws -> TensorSet {
        var w: [String: Weight] = [:]
        for (name, ne) in shapes {
            let rows = ne.count > 1 ? ne.dropFirst().reduce(1) { $0 &* $1 } : 1
            w[name] = Weight(type: .f32, rows: rows, cols: ne.first ?? 0, data: shapeOnlyData, name: name, shapeOnly: true, ne: ne)
        }
        return try TensorSet(path: path, metadata: metadata, weights: w)
    }

    public func fail(_ m: String) -> InferenceError { .invalidModel(path: path, detail: m) }

    public func has(_ name: String) -> Bool { weights[name] != nil }

    /// The tensor `name` with shape `ne` in a type we can read.
    public func matrix(_ name: String, _ ne: [Int]) throws -> Weight {
        guard var t = weights[name] else { throw fail("missing tensor \(name)") }
        guard Self.sameShape(t.ne, ne) else {
            throw fail("tensor \(name) has shape \(Self.render(t.ne)), the hyper-parameters imply \(Self.render(ne))")
        }
        guard t.shapeOnly || Quantizers.quantizer(for: t.type) != nil else {
            throw fail("tensor \(name): type \(t.type.name) is not supported for inference")
        }
        // the key is the GGUF name whoever built the weight (a checkpoint loader need not set it)
        t.name = name
        return t
    }

    public func optionalMatrix(_ name: String, _ ne: [Int]) throws -> Weight? {
        has(name) ? try matrix(name, ne) : nil
    }

    /// A 1-D tensor of `n` values (a norm, a bias), as f32.
    public func vector(_ name: String, _ n: Int) throws -> [Float] {
        let w = try matrix(name, [n])
        var v = [Float](repeating: 0, count: n)
        if !w.shapeOnly { v.withUnsafeMutableBufferPointer { w.row(0, into: $0) } }
        return v
    }

    public func optionalVector(_ name: String, _ n: Int) throws -> [Float]? {
        has(name) ? try vector(name, n) : nil
    }

    /// `blk.N.<name>` present in layer 0 decides for every layer: all or none.
    public func allOrNone(_ suffix: String, layers: Int) throws -> Bool {
        let first = has(TensorName.block(0, suffix))
        for i in 1..<max(layers, 1) where has(TensorName.block(i, suffix)) != first {
            throw fail("tensor \(TensorName.block(i, suffix)) is \(first ? "missing" : "present"), but layer 0 \(first ? "has" : "has no") \(suffix)")
        }
        return first
    }

    // MARK: hyper-parameters (`<arch>.<key>`)

    public func int(_ k: ArchKey, default d: Int? = nil, in range: ClosedRange<Int>) throws -> Int {
        guard let raw = metadata[k(architecture)] else {
            guard let d else { throw fail("missing \(k(architecture))") }
            return d
        }
        guard let v = raw.intValue, range.contains(v) else {
            throw fail("\(k(architecture)) = \(Self.render(raw)) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    public func float(_ k: ArchKey, default d: Float, positive: Bool = false) throws -> Float {
        guard let raw = metadata[k(architecture)] else { return d }
        guard let v = raw.doubleValue, v.isFinite, positive ? v > 0 : v >= 0, Float(v).isFinite else {
            throw fail("\(k(architecture)) = \(Self.render(raw)) must be a finite \(positive ? "positive" : "non-negative") number")
        }
        return Float(v)
    }

    public func string(_ k: ArchKey) -> String? { metadata[k(architecture)]?.stringValue }

    public func isPresent(_ k: ArchKey) -> Bool { metadata[k(architecture)] != nil }

    /// A per-layer boolean array (`attention.sliding_window_pattern` as an array), nil when absent
    /// or not an array.
    public func boolArray(_ k: ArchKey, count: Int) throws -> [Bool]? {
        guard let raw = metadata[k(architecture)], case .array(_, let items) = raw else { return nil }
        guard items.count == count else { throw fail("\(k(architecture)) has \(items.count) entries for \(count) layers") }
        var out: [Bool] = []
        for item in items {
            if case .bool(let b) = item { out.append(b) }
            else if let i = item.intValue { out.append(i != 0) }
            else { throw fail("\(k(architecture)) holds a non-boolean entry") }
        }
        return out
    }

    /// `rope.dimension_count`: the rotated dims of each head (default all of `headDim`), even.
    public func ropeDims(headDim: Int) throws -> Int {
        let n = try int(GGUFKey.Rope.dimensionCount, default: headDim, in: 0...headDim)
        guard n % 2 == 0 else { throw fail("\(architecture).rope.dimension_count \(n) is odd") }
        return n
    }

    /// The attention geometry most families share: widths, heads, head size, feed-forward width,
    /// and the vocabulary from the embedding's rows.
    public func standardDims(embedding: String = TensorName.tokenEmbd) throws -> ModelDims {
        let nEmbd = try int(GGUFKey.LLM.embeddingLength, in: 1...ModelDims.maxWidth)
        let nLayer = try int(GGUFKey.LLM.blockCount, in: 1...ModelDims.maxLayers)
        let nHead = try int(GGUFKey.Attention.headCount, in: 1...ModelDims.maxHeads)
        let nHeadKV = try int(GGUFKey.Attention.headCountKv, default: nHead, in: 1...ModelDims.maxHeads)
        guard nHead % nHeadKV == 0 else {
            throw fail("\(architecture).attention.head_count_kv \(nHeadKV) does not divide head_count \(nHead)")
        }
        if !isPresent(GGUFKey.Attention.keyLength), nEmbd % nHead != 0 {
            throw fail("\(architecture).attention.head_count \(nHead) does not divide embedding_length \(nEmbd) (and no key_length is given)")
        }
        let headDim = try int(GGUFKey.Attention.keyLength, default: nEmbd / nHead, in: 1...ModelDims.maxWidth)
        let valueLength = try int(GGUFKey.Attention.valueLength, default: headDim, in: 1...ModelDims.maxWidth)
        guard valueLength == headDim else {
            throw fail("\(architecture).attention.value_length \(valueLength) differs from key_length \(headDim) (not supported)")
        }
        let (qWidth, o) = nHead.multipliedReportingOverflow(by: headDim)
        guard !o, qWidth <= ModelDims.maxWidth else { throw fail("head_count \(nHead) × key_length \(headDim) is absurd") }
        let nFF = try int(GGUFKey.LLM.feedForwardLength, in: 1...ModelDims.maxWidth)
        guard let embd = weights[embedding]?.ne else { throw fail("missing tensor \(embedding)") }
        guard embd.count >= 2, embd[1] >= 1, embd[1] <= 1 << 24 else {
            throw fail("tensor \(embedding) has shape \(Self.render(embd)), expected [\(nEmbd), n_vocab]")
        }
        return ModelDims(architecture: architecture, nEmbd: nEmbd, nLayer: nLayer, nHead: nHead, nHeadKV: nHeadKV,
                         headDim: headDim, nFF: nFF, nVocab: embd[1])
    }

    /// Shapes equal up to trailing 1s, as ggml compares `ne` (GGUF stores n_dims exactly, a
    /// writer may keep a trailing 1).
    public static func sameShape(_ a: [Int], _ b: [Int]) -> Bool {
        let n = max(a.count, b.count)
        for i in 0..<n where (i < a.count ? a[i] : 1) != (i < b.count ? b[i] : 1) { return false }
        return true
    }

    public static func render(_ ne: [Int]) -> String { "[" + ne.map(String.init).joined(separator: ", ") + "]" }

    public static func render(_ v: GGUFValue) -> String {
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

/// What shape-only weights point at: never read.
nonisolated(unsafe) let shapeOnlyData = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64))
