/// GPT-2's byte ↔ printable character map (llama.cpp `unicode_byte_to_utf8_map`).
enum ByteLevel {
    /// The code point standing for each byte.
    static let byteToCodepoint: [UInt32] = {
        var map = [UInt32](repeating: 0, count: 256)
        var assigned = [Bool](repeating: false, count: 256)
        for b in 0x21...0x7E { map[b] = UInt32(b); assigned[b] = true }
        for b in 0xA1...0xAC { map[b] = UInt32(b); assigned[b] = true }
        for b in 0xAE...0xFF { map[b] = UInt32(b); assigned[b] = true }
        var n: UInt32 = 0
        for b in 0..<256 where !assigned[b] {
            map[b] = 256 + n
            n += 1
        }
        return map
    }()

    /// Code point → byte, -1 when the code point stands for no byte (code points < 0x144).
    static let codepointToByte: [Int16] = {
        var t = [Int16](repeating: -1, count: 0x144)
        for (b, c) in byteToCodepoint.enumerated() { t[Int(c)] = Int16(b) }
        return t
    }()

    /// UTF-8 of the character standing for byte `b`.
    static func encodedChar(_ b: UInt8) -> [UInt8] { Array(String(Character(Unicode.Scalar(byteToCodepoint[Int(b)])!)).utf8) }

    /// The raw bytes a byte-level token text stands for, or nil if a character stands for no byte.
    static func rawBytes(_ text: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var ok = true
        decodeScalars(text) { c in
            if c < 0x144, codepointToByte[Int(c)] >= 0 { out.append(UInt8(codepointToByte[Int(c)])) } else { ok = false }
        }
        return ok ? out : nil
    }

    /// llama.cpp `llama_decode_text`: each character back to its byte; a character that stands
    /// for no byte becomes `[UNK_BYTE_0x<hex>` + the whole token text + `]`, as llama.cpp writes it.
    static func decode(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        decodeScalars(text) { c in
            if c < 0x144, codepointToByte[Int(c)] >= 0 {
                out.append(UInt8(codepointToByte[Int(c)]))
            } else {
                out.append(contentsOf: Array("[UNK_BYTE_0x".utf8))
                for b in Unicode.Scalar(c).map({ Array(String(Character($0)).utf8) }) ?? [] {
                    let h = String(b, radix: 16)
                    out.append(contentsOf: Array((h.count < 2 ? "0" + h : h).utf8))
                }
                out.append(contentsOf: text)
                out.append(UInt8(ascii: "]"))
            }
        }
        return out
    }

    static func decodeScalars(_ text: [UInt8], _ body: (UInt32) -> Void) {
        for s in String(decoding: text, as: UTF8.self).unicodeScalars { body(s.value) }
    }
}

/// A byte-level BPE vocabulary prepared for merging: every string that takes part in a merge is
/// interned as a symbol id (vocabulary ids first, then strings that are merge parts or results but
/// not tokens), so that merging compares and hashes integers, never strings.
struct BPEModel: Sendable {
    let nVocab: Int32
    /// Symbol of the character standing for each byte.
    let byteSymbol: [Int32]
    /// (left, right) → rank << 32 | merged symbol.
    let merges: PairMap
    /// Texts of interned symbols that are not tokens (id - nVocab).
    let extraTexts: [[UInt8]]
    /// Raw (byte-level decoded) token bytes → id, for `ignore_merges` vocabularies.
    let rawTable: ByteKeyTable?
    /// The token whose text is this single ASCII byte, or -1.
    let asciiToken: [Int32]

    init(tokens: [[UInt8]], table: ByteKeyTable, merges mergeList: [String], ignoreMerges: Bool) {
        nVocab = Int32(tokens.count)
        var interner = table
        var extras: [[UInt8]] = []
        let n = nVocab
        func intern(_ b: [UInt8]) -> Int32 {
            if let id = interner.find(b) { return id }
            let id = n + Int32(extras.count)
            extras.append(b)
            interner.insert(b, value: id)
            return id
        }
        var pm = PairMap(capacity: mergeList.count)
        for (rank, m) in mergeList.enumerated() {
            let b = Array(m.utf8)
            // llama.cpp: word.find(' ', 1); a merge without a space is the pair ("", "").
            guard b.count > 1, let sp = b[1...].firstIndex(of: 0x20) else { continue }
            let first = Array(b[..<sp]), second = Array(b[(sp + 1)...])
            let a = intern(first), c = intern(second), r = intern(first + second)
            pm.insertIfAbsent(PairMap.key(a, c), UInt64(rank) << 32 | UInt64(UInt32(bitPattern: r)))
        }
        byteSymbol = (0..<256).map { intern(ByteLevel.encodedChar(UInt8($0))) }
        merges = pm
        extraTexts = extras
        asciiToken = (0..<128).map { table.find([UInt8($0)]) ?? -1 }
        if ignoreMerges {
            var raw = ByteKeyTable(capacity: tokens.count)
            for (i, t) in tokens.enumerated() {
                if let r = ByteLevel.rawBytes(t) { raw.insert(r, value: Int32(i)) }
            }
            rawTable = raw
        } else {
            rawTable = nil
        }
    }
}

/// Per-call state of byte-level BPE: work buffers and a cache of words already tokenized.
struct BPESession {
    let model: BPEModel
    // Code points of the fragment, their byte offsets and flags.
    var cpts: [UInt32] = []
    var offsets: [Int32] = []
    var flags: [UInt8] = []
    var ends: [Int] = []
    var clean: [UInt8] = []
    // Merge work buffers.
    var sym: [Int32] = []
    var prev: [Int32] = []
    var next: [Int32] = []
    var heap = BinaryHeap<Bigram>()
    // Word cache: raw word bytes → ids[start ..< start + len].
    var cache = ByteKeyTable(capacity: 4096)
    var cacheLen: [Int32] = []
    var cacheIDs: [Int32] = []
    static let maxCacheEntries = 1 << 20

    init(model: BPEModel) { self.model = model }

    struct Bigram: HeapOrdered {
        var rank: Int32
        var left: Int32
        var right: Int32
        var leftSym: Int32
        var rightSym: Int32
        var result: Int32
        @inline(__always) func before(_ o: Bigram) -> Bool { rank != o.rank ? rank < o.rank : left < o.left }
    }

    /// Splits one text fragment into words with the pre-tokenizer, then BPE-merges each word.
    mutating func tokenize(_ text: UnsafeRawBufferPointer, pre: PreTokenizer, into out: inout [Int32]) {
        decode(text)
        var ends = self.ends
        self.ends = []
        ends.removeAll(keepingCapacity: true)
        cpts.withUnsafeBufferPointer { c in
            flags.withUnsafeBufferPointer { f in
                Splitter.split(pre, c, f, into: &ends)
            }
        }
        // Words are cut from the text as llama.cpp rebuilds it from code points: the input itself
        // when it is valid UTF-8, else the re-encoded text with U+FFFD for bad bytes.
        let offsets = self.offsets
        let clean = self.clean
        if clean.isEmpty {
            encodeWords(text, ends, offsets, into: &out)
        } else {
            clean.withUnsafeBytes { encodeWords($0, ends, offsets, into: &out) }
        }
        self.ends = ends
    }

    mutating func encodeWords(_ buf: UnsafeRawBufferPointer, _ ends: [Int], _ offsets: [Int32], into out: inout [Int32]) {
        var start = 0
        for e in ends {
            encodeWord(UnsafeRawBufferPointer(rebasing: buf[Int(offsets[start])..<Int(offsets[e])]), into: &out)
            start = e
        }
    }

    /// llama.cpp `unicode_cpts_from_utf8` (a bad byte is U+FFFD and consumes one byte), with
    /// each code point's byte offset and pre-tokenizer flags.
    mutating func decode(_ t: UnsafeRawBufferPointer) {
        cpts.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        flags.removeAll(keepingCapacity: true)
        clean.removeAll(keepingCapacity: true)
        let n = t.count
        var i = 0
        var bad = false
        let table = CodepointFlags.table
        table.withUnsafeBufferPointer { ft in
            while i < n {
                let b0 = t[i]
                var c: UInt32
                var len = 1
                if b0 < 0x80 {
                    c = UInt32(b0)
                } else if b0 & 0x40 == 0 {
                    c = 0xFFFD; bad = true
                } else if b0 & 0x20 == 0 {
                    if i + 1 < n, t[i + 1] & 0xC0 == 0x80 {
                        c = UInt32(b0 & 0x1F) << 6 | UInt32(t[i + 1] & 0x3F); len = 2
                    } else { c = 0xFFFD; bad = true }
                } else if b0 & 0x10 == 0 {
                    if i + 2 < n, t[i + 1] & 0xC0 == 0x80, t[i + 2] & 0xC0 == 0x80 {
                        c = UInt32(b0 & 0x0F) << 12 | UInt32(t[i + 1] & 0x3F) << 6 | UInt32(t[i + 2] & 0x3F); len = 3
                    } else { c = 0xFFFD; bad = true }
                } else if b0 & 0x08 == 0 {
                    if i + 3 < n, t[i + 1] & 0xC0 == 0x80, t[i + 2] & 0xC0 == 0x80, t[i + 3] & 0xC0 == 0x80 {
                        c = UInt32(b0 & 0x07) << 18 | UInt32(t[i + 1] & 0x3F) << 12 | UInt32(t[i + 2] & 0x3F) << 6 | UInt32(t[i + 3] & 0x3F)
                        len = 4
                        if c >= 0x110000 { c = 0xFFFD; bad = true } // llama.cpp cannot re-encode these either
                    } else { c = 0xFFFD; bad = true }
                } else {
                    c = 0xFFFD; bad = true
                }
                cpts.append(c)
                offsets.append(Int32(i))
                flags.append(ft[Int(c)])
                i += len
            }
        }
        offsets.append(Int32(n))
        if bad {
            // Re-encode every code point (surrogates and overlong forms included, as llama.cpp does).
            var off: [Int32] = []
            off.reserveCapacity(cpts.count + 1)
            for c in cpts {
                off.append(Int32(clean.count))
                Self.appendUTF8(c, &clean)
            }
            off.append(Int32(clean.count))
            offsets = off
        }
    }

    static func appendUTF8(_ c: UInt32, _ out: inout [UInt8]) {
        if c < 0x80 {
            out.append(UInt8(c))
        } else if c < 0x800 {
            out.append(0xC0 | UInt8(c >> 6)); out.append(0x80 | UInt8(c & 0x3F))
        } else if c < 0x10000 {
            out.append(0xE0 | UInt8(c >> 12)); out.append(0x80 | UInt8((c >> 6) & 0x3F)); out.append(0x80 | UInt8(c & 0x3F))
        } else {
            out.append(0xF0 | UInt8(c >> 18)); out.append(0x80 | UInt8((c >> 12) & 0x3F))
            out.append(0x80 | UInt8((c >> 6) & 0x3F)); out.append(0x80 | UInt8(c & 0x3F))
        }
    }

    /// One pre-token: from the cache, or merged and cached.
    mutating func encodeWord(_ word: UnsafeRawBufferPointer, into out: inout [Int32]) {
        if let e = cache.entry(word) {
            let s = Int(cache.values[e]), l = Int(cacheLen[e])
            out.append(contentsOf: cacheIDs[s..<(s + l)])
            return
        }
        let before = out.count
        merge(word, into: &out)
        if cache.count < Self.maxCacheEntries {
            cache.insert(word, value: Int32(cacheIDs.count))
            cacheLen.append(Int32(out.count - before))
            cacheIDs.append(contentsOf: out[before...])
        }
    }

    @inline(__always)
    func emit(_ s: Int32, into out: inout [Int32]) {
        if s < model.nVocab {
            out.append(s)
            return
        }
        // Not a token: llama.cpp looks each byte of the text up as a one-byte token.
        for b in model.extraTexts[Int(s - model.nVocab)] where b < 0x80 {
            let t = model.asciiToken[Int(b)]
            if t >= 0 { out.append(t) }
        }
    }

    /// llama.cpp `llm_tokenizer_bpe_session::tokenize` for one word: start from one symbol per
    /// byte, repeatedly merge the adjacent pair of lowest rank (leftmost first).
    mutating func merge(_ word: UnsafeRawBufferPointer, into out: inout [Int32]) {
        if let raw = model.rawTable, let id = raw.find(word) {
            out.append(id)
            return
        }
        let n = word.count
        if n == 0 { return }
        if n == 1 {
            emit(model.byteSymbol[Int(word[0])], into: &out)
            return
        }
        sym.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
        for i in 0..<n {
            sym.append(model.byteSymbol[Int(word[i])])
            prev.append(Int32(i - 1))
            next.append(i + 1 == n ? -1 : Int32(i + 1))
        }
        for i in 1..<n { addBigram(Int32(i - 1), Int32(i)) }
        while !heap.isEmpty {
            let b = heap.pop()
            let l = Int(b.left), r = Int(b.right)
            guard sym[l] == b.leftSym, sym[r] == b.rightSym else { continue } // outdated
            sym[l] = b.result
            sym[r] = -1
            let nr = next[r]
            next[l] = nr
            if nr >= 0 { prev[Int(nr)] = Int32(l) }
            addBigram(prev[l], Int32(l))
            addBigram(Int32(l), next[l])
        }
        var i: Int32 = 0
        while i >= 0 {
            emit(sym[Int(i)], into: &out)
            i = next[Int(i)]
        }
    }

    @inline(__always)
    mutating func addBigram(_ l: Int32, _ r: Int32) {
        if l < 0 || r < 0 { return }
        let a = sym[Int(l)], b = sym[Int(r)]
        guard let v = model.merges.find(PairMap.key(a, b)) else { return }
        heap.push(Bigram(rank: Int32(truncatingIfNeeded: v >> 32), left: l, right: r, leftSym: a, rightSym: b,
                        result: Int32(truncatingIfNeeded: v & 0xFFFF_FFFF)))
    }
}
