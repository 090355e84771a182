/// llama.cpp's importance matrix ("imatrix"): for every weight matrix the model multiplies, the
/// sum over calibration tokens of the squared input activation of each column, and how many
/// tokens were summed. llama-quantize weighs each column's rounding error by sum/count.
public struct ImportanceMatrix: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// Σ x² per input column; `nMat` matrices (experts) of `sums.count / nMat` columns each,
        /// matrix j's column i at `j · ne0 + i` (llama-imatrix's `<name>.in_sum2`, ne = [ne0, nMat]).
        public var sums: [Float]
        /// Tokens summed per matrix (`<name>.counts`, ne = [1, nMat]).
        public var counts: [Float]

        public init(sums: [Float], counts: [Float]) {
            self.sums = sums
            self.counts = counts
        }

        public var nMat: Int { counts.count }
        public var ne0: Int { counts.isEmpty ? 0 : sums.count / counts.count }
    }

    /// Keyed by weight tensor name (`blk.0.attn_q.weight`).
    public var entries: [String: Entry]
    /// `imatrix.datasets`: the calibration text file names.
    public var datasets: [String]
    /// `imatrix.chunk_count`: chunks of calibration text evaluated.
    public var chunkCount: Int
    /// `imatrix.chunk_size`: tokens per chunk.
    public var chunkSize: Int
    /// Read from the legacy `.dat` format, whose sums are already (Σx²/count)·ncall and whose
    /// counts hold ncall.
    public var isLegacy: Bool

    public init(entries: [String: Entry] = [:], datasets: [String] = [], chunkCount: Int = 0, chunkSize: Int = 0,
                isLegacy: Bool = false) {
        self.entries = entries
        self.datasets = datasets
        self.chunkCount = chunkCount
        self.chunkSize = chunkSize
        self.isLegacy = isLegacy
    }
}
