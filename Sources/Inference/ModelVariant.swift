import GGMLCore
import GGUFWriter
import MappedIO

/// Owned f32 memory a `Weight` can view (pass it as `keepAlive`/storage so it outlives the model).
public final class FloatStorage: @unchecked Sendable {
    public let p: UnsafeMutablePointer<Float>
    public init(count: Int) { p = .allocate(capacity: max(count, 1)) }
    public convenience init(_ v: [Float]) {
        self.init(count: v.count)
        p.initialize(from: v, count: v.count)
    }
    deinit { p.deallocate() }
}

extension Model {
    /// Every weight matrix of the model, keyed by GGUF name (a tied output appears once, as
    /// `token_embd.weight`).
    public var weightMatrices: [String: Weight] {
        var m: [String: Weight] = [:]
        m[tokenEmbd.name] = tokenEmbd
        m[output.name] = output
        for l in layers { for w in [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown] { m[w.name] = w } }
        return m
    }

    /// This model with some weight matrices replaced (keyed by GGUF name; `keepAlive` owns their
    /// memory): how the effect of quantizing one tensor alone is measured.
    public func replacing(_ replacements: [String: Weight], keepAlive: [AnyObject]) throws(FileError) -> Model {
        var tensors = weightMatrices
        for (name, w) in replacements {
            precondition(tensors[name] != nil, "no weight matrix \(name)")
            var w = w
            w.name = name
            tensors[name] = w
        }
        var owned: [AnyObject] = []
        func vector(_ name: String, _ v: [Float]?) {
            guard let v else { return }
            let s = FloatStorage(v)
            owned.append(s)
            tensors[name] = Weight(type: .f32, rows: 1, cols: v.count, data: UnsafeRawPointer(s.p), name: name)
        }
        vector("output_norm.weight", outputNorm)
        vector("rope_freqs.weight", ropeFreqs)
        for (i, l) in layers.enumerated() {
            vector("blk.\(i).attn_norm.weight", l.attnNorm)
            vector("blk.\(i).ffn_norm.weight", l.ffnNorm)
            vector("blk.\(i).attn_q.bias", l.bq)
            vector("blk.\(i).attn_k.bias", l.bk)
            vector("blk.\(i).attn_v.bias", l.bv)
        }
        return try Model(path: "(variant)", metadata: metadata, tensors: tensors, storage: storage + keepAlive + owned)
    }
}
