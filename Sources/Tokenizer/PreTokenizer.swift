/// The word splitters llama.cpp applies before byte-level BPE (`llm_tokenizer_bpe` regex lists,
/// `unicode_regex_split`). Each is a port of llama.cpp's hand-written matcher, not a regex
/// engine, so that quirks match too.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (+ `\s+`):
    /// llama.cpp `unicode_regex_split_custom_gpt2`.
    case gpt2
    /// `\p{N}` isolated, then the GPT-2 regex (starcoder, refact, smollm, ...).
    case digitsThenGPT2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:
    /// llama.cpp `unicode_regex_split_custom_llama3`.
    case llama3
    /// The llama3 regex with `\p{N}` instead of `\p{N}{1,3}`: `unicode_regex_split_custom_qwen2`.
    case qwen2
}

/// A split position list: `ends[i]` is the code point index where word i ends.
struct Splitter {
    typealias CP = UnsafeBufferPointer<UInt32>
    typealias FL = UnsafeBufferPointer<UInt8>
    static let outOfRange: UInt32 = 0xFFFF_FFFF

    static func split(_ kind: PreTokenizer, _ c: CP, _ f: FL, into ends: inout [Int]) {
        let n = c.count
        switch kind {
        case .gpt2: gpt2(c, f, 0, n, &ends)
        case .llama3: llama3(c, f, 0, n, &ends, digitRun: 3)
        case .qwen2: llama3(c, f, 0, n, &ends, digitRun: 1)
        case .digitsThenGPT2:
            // std::regex `\p{N}` over llama.cpp's collapsed text: every code point whose only category
            // is "number" is its own piece; the text between is split again by the GPT-2 matcher.
            var start = 0
            for i in 0..<n where f[i] & CodepointFlags.number != 0 {
                if i > start { gpt2(c, f, start, i, &ends) }
                ends.append(i + 1)
                start = i + 1
            }
            if start < n { gpt2(c, f, start, n, &ends) }
        }
    }

    // GPT2 system regex:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    static func gpt2(_ c: CP, _ f: FL, _ ini: Int, _ end: Int, _ ends: inout [Int]) {
        let L = CodepointFlags.letter, N = CodepointFlags.number, W = CodepointFlags.whitespace
        @inline(__always) func cpt(_ p: Int) -> UInt32 { p < end ? c[p] : outOfRange }
        @inline(__always) func fl(_ p: Int) -> UInt8 { p < end ? f[p] : 0 }
        var prevEnd = ini
        @inline(__always) func add(_ e: Int) -> Int {
            let len = e - prevEnd
            if len > 0 { ends.append(e) }
            prevEnd = e
            return len
        }
        var pos = ini
        while pos < end {
            let cp = c[pos]
            let flags = f[pos]
            // 's|'t|'re|'ve|'m|'ll|'d
            if cp == 0x27 && pos + 1 < end {
                let n1 = c[pos + 1]
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { // s t m d
                    pos += add(pos + 2)
                    continue
                }
                if pos + 2 < end {
                    let n2 = c[pos + 2]
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) { // re ve ll
                        pos += add(pos + 3)
                        continue
                    }
                }
            }
            var flags2 = cp == 0x20 ? fl(pos + 1) : flags
            // <space>?\p{L}+
            if flags2 & L != 0 {
                if cp == 0x20 { pos += 1 }
                while flags2 & L != 0 { pos += 1; flags2 = fl(pos) }
                _ = add(pos)
                continue
            }
            // <space>?\p{N}+
            if flags2 & N != 0 {
                if cp == 0x20 { pos += 1 }
                while flags2 & N != 0 { pos += 1; flags2 = fl(pos) }
                _ = add(pos)
                continue
            }
            // <space>?[^\s\p{L}\p{N}]+
            if flags2 & (W | L | N) == 0 && flags2 != 0 {
                if cp == 0x20 { pos += 1 }
                while flags2 & (W | L | N) == 0 && flags2 != 0 { pos += 1; flags2 = fl(pos) }
                _ = add(pos)
                continue
            }
            var nws = 0
            while fl(pos + nws) & W != 0 { nws += 1 }
            // \s+(?!\S)
            if nws > 1 && cpt(pos + nws) != outOfRange {
                pos += nws - 1
                _ = add(pos)
                continue
            }
            // \s+
            if nws > 0 {
                pos += nws
                _ = add(pos)
                continue
            }
            // no match
            pos += 1
            _ = add(pos)
        }
    }

    // LLAMA3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    // QWEN2: the same with \p{N} for \p{N}{1,3} (digitRun 1).
    static func llama3(_ c: CP, _ f: FL, _ ini: Int, _ end: Int, _ ends: inout [Int], digitRun: Int) {
        let L = CodepointFlags.letter, N = CodepointFlags.number, W = CodepointFlags.whitespace
        @inline(__always) func cpt(_ p: Int) -> UInt32 { p < end ? c[p] : outOfRange }
        @inline(__always) func fl(_ p: Int) -> UInt8 { p < end ? f[p] : 0 }
        var prevEnd = ini
        @inline(__always) func add(_ e: Int) -> Int {
            let len = e - prevEnd
            if len > 0 { ends.append(e) }
            prevEnd = e
            return len
        }
        var pos = ini
        while pos < end {
            let cp = c[pos]
            let flags = f[pos]
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if cp == 0x27 && pos + 1 < end {
                let n1 = CodepointFlags.asciiLower(c[pos + 1])
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {
                    pos += add(pos + 2)
                    continue
                }
                if pos + 2 < end {
                    let n2 = CodepointFlags.asciiLower(c[pos + 2])
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        pos += add(pos + 3)
                        continue
                    }
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(cp == 0x0D || cp == 0x0A || flags & N != 0) {
                if flags & L != 0 || fl(pos + 1) & L != 0 {
                    pos += 1
                    while fl(pos) & L != 0 { pos += 1 }
                    _ = add(pos)
                    continue
                }
            }
            // \p{N}{1,3} or \p{N}
            if flags & N != 0 {
                if digitRun == 1 {
                    pos += 1
                    _ = add(pos)
                    continue
                }
                var start = pos
                while fl(pos) & N != 0 {
                    pos += 1
                    if pos - start >= digitRun {
                        _ = add(pos)
                        start = pos
                    }
                }
                _ = add(pos)
                continue
            }
            // <space>?[^\s\p{L}\p{N}]+[\r\n]*
            var flags2 = cp == 0x20 ? fl(pos + 1) : flags
            if flags2 & (W | L | N) == 0 && flags != 0 {
                if cp == 0x20 { pos += 1 }
                while flags2 & (W | L | N) == 0 && flags2 != 0 { pos += 1; flags2 = fl(pos) }
                var c2 = cpt(pos)
                while c2 == 0x0D || c2 == 0x0A { pos += 1; c2 = cpt(pos) }
                _ = add(pos)
                continue
            }
            var nws = 0
            var lastRN = 0
            while fl(pos + nws) & W != 0 {
                let c2 = cpt(pos + nws)
                if c2 == 0x0D || c2 == 0x0A { lastRN = pos + nws + 1 }
                nws += 1
            }
            // \s*[\r\n]+
            if lastRN > 0 {
                pos = lastRN
                _ = add(pos)
                continue
            }
            // \s+(?!\S)
            if nws > 1 && cpt(pos + nws) != outOfRange {
                pos += nws - 1
                _ = add(pos)
                continue
            }
            // \s+
            if nws > 0 {
                pos += nws
                _ = add(pos)
                continue
            }
            pos += 1
            _ = add(pos)
        }
    }
}
