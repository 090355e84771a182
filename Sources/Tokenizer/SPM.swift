/// A SentencePiece vocabulary as llama.cpp's `llm_tokenizer_spm` uses it: any token text (of any
/// type) can be formed by merging, ranked by its score; what is left unmerged falls back to bytes.
struct SPMModel: Sendable {
    let table: ByteKeyTable
    /// llama.cpp `byte_to_token`: `<0xXX>`, else the one-byte token, else the unknown token
    /// (where llama.cpp would throw), else -1 (dropped).
    let byteToken: [Int32]

    init(table: ByteKeyTable, unknown: Int32?) {
        self.table = table
        let hex = Array("0123456789ABCDEF".utf8)
        byteToken = (0..<256).map { b -> Int32 in
            let name: [UInt8] = [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E]
            if let t = table.find(name) { return t }
            if b < 0x80, let t = table.find([UInt8(b)]) { return t }
            return unknown ?? -1
        }
    }
}

/// llama.cpp `llm_tokenizer_spm_session`, with reusable buffers.
struct SPMSession {
    var start: [Int32] = []
    var len: [Int32] = []
    var prev: [Int32] = []
    var next: [Int32] = []
    var heap = BinaryHeap<Bigram>()

    struct Bigram: HeapOrdered {
        var score: Float
        var left: Int32
        var right: Int32
        var size: Int32
        /// The comparator's priority: higher score first, then the leftmost.
        @inline(__always) func before(_ o: Bigram) -> Bool { score != o.score ? score > o.score : left < o.left }
    }

    mutating func tokenize(_ text: UnsafeRawBufferPointer, model: SPMModel, scores: [Float], into out: inout [Int32]) {
        start.removeAll(keepingCapacity: true)
        len.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
        let n = text.count
        if n == 0 { return }
        // Split into UTF-8 characters by their lead byte (unicode_len_utf8).
        var offs = 0
        var index: Int32 = 0
        while offs < n {
            let hi = text[offs] >> 4
            let l = min(hi == 0xF ? 4 : hi == 0xE ? 3 : hi >= 0xC ? 2 : 1, n - offs)
            start.append(Int32(offs))
            len.append(Int32(l))
            offs += l
            prev.append(index - 1)
            next.append(offs == n ? -1 : index + 1)
            index += 1
        }
        scores.withUnsafeBufferPointer { sc in
            for i in 1..<Int(index) { tryAddBigram(Int32(i - 1), Int32(i), text, model, sc) }
            while !heap.isEmpty {
                let b = heap.pop()
                let l = Int(b.left), r = Int(b.right)
                // Skip if either symbol was merged since.
                if len[l] == 0 || len[r] == 0 || len[l] + len[r] != b.size { continue }
                len[l] += len[r]
                len[r] = 0
                next[l] = next[r]
                if next[r] >= 0 { prev[Int(next[r])] = b.left }
                tryAddBigram(prev[l], b.left, text, model, sc)
                tryAddBigram(b.left, next[l], text, model, sc)
            }
        }
        var i: Int32 = 0
        while i != -1 {
            let s = Int(start[Int(i)]), l = Int(len[Int(i)])
            let piece = UnsafeRawBufferPointer(rebasing: text[s..<(s + l)])
            if let t = model.table.find(piece) {
                out.append(t)
            } else {
                // Symbols that did not form tokens are output as bytes.
                for b in piece {
                    let t = model.byteToken[Int(b)]
                    if t >= 0 { out.append(t) }
                }
            }
            i = next[Int(i)]
        }
    }

    @inline(__always)
    mutating func tryAddBigram(_ left: Int32, _ right: Int32, _ text: UnsafeRawBufferPointer, _ model: SPMModel,
                               _ scores: UnsafeBufferPointer<Float>) {
        if left == -1 || right == -1 { return }
        let s = Int(start[Int(left)])
        let size = Int(len[Int(left)] + len[Int(right)])
        guard let t = model.table.find(UnsafeRawBufferPointer(rebasing: text[s..<(s + size)])) else { return }
        heap.push(Bigram(score: scores[Int(t)], left: left, right: right, size: Int32(size)))
    }
}
