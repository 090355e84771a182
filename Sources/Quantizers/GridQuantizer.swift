import GGMLCore

/// A ggml type seen as a grid of values, for quantizers that choose every element's level
/// themselves (calibrated rounding, GPTQ) while the block's scales stay what ggml's own search
/// picks: the search runs on one group of elements (`quantizeGroup`), the block's stored scales
/// give each element the values it can take (`grid`), and the chosen levels are written into the
/// block beside those scales (`storeLevels`). The blocks stay ordinary blocks of the type.
///
/// Element e of a block dequantizes to `scale[e] · levelValues[L] + offset[e]` for its stored
/// level L, with the same float operations as ggml's `dequantize_row_*` (so a grid value is
/// exactly what llama.cpp reads back).
public protocol GridQuantizer: BlockQuantizer {
    /// Elements whose scales ggml chooses together: the block (32) for the legacy types and
    /// iq4_nl, the super-block (QK_K = 256) for the k-quants.
    static var groupSize: Int { get }
    /// What each stored level is worth before its element's scale, in level order: consecutive
    /// integers except for iq4_nl's codebook. q8_0 leaves out −128, which ggml never writes.
    static var levelValues: [Float] { get }
    /// ggml's importance-weighted quantizer (llama-quantize `--imatrix`) on the `groupSize`
    /// elements at `x`, `importance` holding one imatrix value per element, written as one block.
    /// `rowMeanSquare` is the σ² ggml takes from the whole row for q4_0, q4_1, q5_0 and q5_1
    /// (the other types take it from the block itself and ignore this).
    static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                              into block: UnsafeMutableRawPointer)
    /// The scale and offset of each of the `groupSize` elements of `block`, from its stored
    /// (fp16, 6-bit, ...) scales.
    static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>)
    /// Replaces the levels of `block` (indices into `levelValues`, one per element), keeping its
    /// scales.
    static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer)
}

extension GridQuantizer {
    /// Bytes of one group's block(s).
    public static var groupBytes: Int { type.rowSize(groupSize)! }
}

extension Quantizers {
    /// The grid view of a type, or nil for types without one (floats, nf4).
    public static func gridQuantizer(for type: GGMLType) -> (any GridQuantizer.Type)? {
        quantizer(for: type) as? any GridQuantizer.Type
    }
}

/// Integers lo...hi as floats.
private func integerLevels(_ lo: Int, _ hi: Int) -> [Float] { (lo...hi).map(Float.init) }

// MARK: legacy types and iq4_nl: groups of 32, one fp16 scale (and min)

/// One group of a legacy type through the body of ggml's `quantize_row_*_impl`: the imatrix
/// weights with the row's σ², then `search` (make_qx_quants or make_qkx3_quants) into levels.
@inline(__always)
private func legacyGroup(
    _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ sigma2: Float,
    _ body: (_ weight: UnsafePointer<Float>, _ L: UnsafeMutableRawPointer, _ scratch: UnsafeMutablePointer<SIMD4<Float>>) -> Void
) {
    KQuant.withScratch(simd: KQuant.qkx2ScratchCount(n: 32), floats: 32, bytes: 32) { scratch, weight, L in
        KQuant.importanceWeights(x, qw, sigma2: sigma2, count: 32, into: weight)
        body(weight, L, scratch)
    }
}

extension Q4_0: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(-8, 7) }

    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        legacyGroup(x, importance, rowMeanSquare) { weight, L, _ in
            let d = KQuant.makeQXQuants(n: qk, nmax: 8, x: x, w: weight, L: L.bindMemory(to: Int8.self, capacity: qk))
            LegacyQuant.storeFP16(d, block)
            LegacyQuant.packNibbles(L.assumingMemoryBound(to: UInt8.self), block, 2)
        }
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        let d = LegacyQuant.loadFP16(block)
        for j in 0..<qk { scale[j] = d; offset[j] = 0 }
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        LegacyQuant.packNibbles(levels, block, 2)
    }
}

extension Q4_1: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(0, 15) }

    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        legacyGroup(x, importance, rowMeanSquare) { weight, lbuf, scratch in
            let L = lbuf.bindMemory(to: UInt8.self, capacity: qk)
            var min: Float = 0
            let d = KQuant.makeQKX3Quants(n: qk, nmax: 15, x: x, weights: weight, L: L, theMin: &min, scratch: scratch)
            LegacyQuant.storeFP16(d, block)
            LegacyQuant.storeFP16(-min, block, 2)
            LegacyQuant.packNibbles(L, block, 4)
        }
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        let d = LegacyQuant.loadFP16(block), m = LegacyQuant.loadFP16(block, 2)
        for j in 0..<qk { scale[j] = d; offset[j] = m }
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        LegacyQuant.packNibbles(levels, block, 4)
    }
}

extension Q5_0: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(-16, 15) }

    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        legacyGroup(x, importance, rowMeanSquare) { weight, L, _ in
            let d = KQuant.makeQXQuants(n: qk, nmax: 16, x: x, w: weight, L: L.bindMemory(to: Int8.self, capacity: qk))
            LegacyQuant.storeFP16(d, block)
            storeLevels(L.assumingMemoryBound(to: UInt8.self), into: block)
        }
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        let d = LegacyQuant.loadFP16(block)
        for j in 0..<qk { scale[j] = d; offset[j] = 0 }
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        LegacyQuant.packNibbles(levels, block, 6)
        block.storeBytes(of: LegacyQuant.fifthBitsWord(levels).littleEndian, toByteOffset: 2, as: UInt32.self)
    }
}

extension Q5_1: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(0, 31) }

    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        legacyGroup(x, importance, rowMeanSquare) { weight, lbuf, scratch in
            let L = lbuf.bindMemory(to: UInt8.self, capacity: qk)
            var min: Float = 0
            let d = KQuant.makeQKX3Quants(n: qk, nmax: 31, x: x, weights: weight, L: L, theMin: &min, scratch: scratch)
            LegacyQuant.storeFP16(d, block)
            LegacyQuant.storeFP16(-min, block, 2)
            storeLevels(L, into: block)
        }
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        let d = LegacyQuant.loadFP16(block), m = LegacyQuant.loadFP16(block, 2)
        for j in 0..<qk { scale[j] = d; offset[j] = m }
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        block.storeBytes(of: LegacyQuant.fifthBitsWord(levels).littleEndian, toByteOffset: 4, as: UInt32.self)
        LegacyQuant.packNibbles(levels, block, 8)
    }
}

extension Q8_0: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(-127, 127) }

    /// ggml ignores the imatrix for q8_0: amax / 127.
    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        quantizeRow(UnsafeBufferPointer(start: x, count: qk), into: UnsafeMutableRawBufferPointer(start: block, count: blockBytes))
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        let d = LegacyQuant.loadFP16(block)
        for j in 0..<qk { scale[j] = d; offset[j] = 0 }
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        for j in 0..<qk { block.storeBytes(of: Int8(truncatingIfNeeded: Int(levels[j]) - 127), toByteOffset: 2 + j, as: Int8.self) }
    }
}

extension IQ4_NL: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { kvaluesIQ4NL.map(Float.init) }

    /// ggml's weights for iq4_nl come from the block alone, so the row quantizer on one block is
    /// the group quantizer.
    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        quantizeRow(UnsafeBufferPointer(start: x, count: qk), importance: UnsafeBufferPointer(start: importance, count: qk),
                    into: UnsafeMutableRawBufferPointer(start: block, count: blockBytes))
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        let d = LegacyQuant.loadFP16(block)
        for j in 0..<qk { scale[j] = d; offset[j] = 0 }
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        LegacyQuant.packNibbles(levels, block, 2)
    }
}

// MARK: k-quants: super-blocks of 256, sub-block scales quantized to 4 or 6 bits

/// The k-quants' weights are per super-block, so the row quantizer on one super-block is the
/// group quantizer.
@inline(__always)
private func superBlock<Q: BlockQuantizer>(_: Q.Type, _ x: UnsafePointer<Float>, _ importance: UnsafePointer<Float>,
                                           _ block: UnsafeMutableRawPointer) {
    Q.quantizeRow(UnsafeBufferPointer(start: x, count: KQuant.qk), importance: UnsafeBufferPointer(start: importance, count: KQuant.qk),
                  into: UnsafeMutableRawBufferPointer(start: block, count: Q.type.rowSize(KQuant.qk)!))
}

extension Q2_K: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(0, 3) }

    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        superBlock(Self.self, x, importance, block)
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        let d = KQuant.loadFP16(block, 80), dmin = KQuant.loadFP16(block, 82)
        let sc = block.assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            let dl = d * Float(sc[j] & 0xF), ml = dmin * Float(sc[j] >> 4)
            for l in 0..<16 { scale[16 * j + l] = dl; offset[16 * j + l] = -ml }
        }
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        pack(levels, block)
    }
}

extension Q3_K: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(-4, 3) }

    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        superBlock(Self.self, x, importance, block)
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        let d = KQuant.loadFP16(block, 108)
        let sc = block.assumingMemoryBound(to: UInt8.self) + 96
        for j in 0..<16 {
            let dl = d * Float(Self.scale(j, sc))
            for l in 0..<16 { scale[16 * j + l] = dl; offset[16 * j + l] = 0 }
        }
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        pack(levels, block)
    }
}

/// q4_K and q5_K: sub-block j's scale d·sc_j and offset −dmin·m_j, as `dequantize_row_q4_K`
/// computes `d1 * q - m1`.
@inline(__always)
private func gridQ4Q5K(_ block: UnsafeRawPointer, _ scale: UnsafeMutablePointer<Float>, _ offset: UnsafeMutablePointer<Float>) {
    let d = KQuant.loadFP16(block, 0), dmin = KQuant.loadFP16(block, 2)
    let sc = (block + 4).assumingMemoryBound(to: UInt8.self)
    for j in 0..<8 {
        let (s, m) = KQuant.getScaleMinK4(j, sc)
        let dl = d * Float(s), ml = dmin * Float(m)
        for l in 0..<32 { scale[32 * j + l] = dl; offset[32 * j + l] = -ml }
    }
}

extension Q4_K: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(0, 15) }

    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        superBlock(Self.self, x, importance, block)
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        gridQ4Q5K(block, scale, offset)
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        KQuant.packQ4Q5K(levels, block, nmax: 15)
    }
}

extension Q5_K: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(0, 31) }

    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        superBlock(Self.self, x, importance, block)
    }

    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        gridQ4Q5K(block, scale, offset)
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        KQuant.packQ4Q5K(levels, block, nmax: 31)
    }
}

extension Q6_K: GridQuantizer {
    public static var groupSize: Int { qk }
    public static var levelValues: [Float] { integerLevels(-32, 31) }

    public static func quantizeGroup(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, rowMeanSquare: Float,
                                     into block: UnsafeMutableRawPointer) {
        superBlock(Self.self, x, importance, block)
    }

    /// `dequantize_row_q6_K` computes `d * sc * q` left to right: the scale is d·sc.
    public static func grid(of block: UnsafeRawPointer, scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>) {
        let d = KQuant.loadFP16(block, 208)
        let sc = (block + 192).assumingMemoryBound(to: Int8.self)
        for j in 0..<16 {
            let dl = d * Float(sc[j])
            for l in 0..<16 { scale[16 * j + l] = dl; offset[16 * j + l] = 0 }
        }
    }

    public static func storeLevels(_ levels: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        pack(levels, block.assumingMemoryBound(to: UInt8.self))
    }
}
