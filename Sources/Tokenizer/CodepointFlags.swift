/// Per-code-point classes the pre-tokenizers need, from llama.cpp's `unicode_cpt_flags`
/// (`UnicodeTables`, generated from llama.cpp's unicode-data.cpp), one byte per code point.
enum CodepointFlags {
    static let number: UInt8 = 0x01       // \p{N}
    static let letter: UInt8 = 0x02       // \p{L}
    static let whitespace: UInt8 = 0x04   // \s (llama.cpp's unicode_set_whitespace)
    /// Set for every code point below 0x110000: llama.cpp's `flags.as_uint() != 0`, which is false
    /// only for positions outside the text being split.
    static let defined: UInt8 = 0x08
    static let punctuation: UInt8 = 0x10  // \p{P}
    static let symbol: UInt8 = 0x20       // \p{S}
    static let mark: UInt8 = 0x40         // \p{M}

    static let count = 0x110000

    /// Flags of every code point, built once (1.1 MB).
    static let table: [UInt8] = {
        let r = UnicodeTables.ranges
        var t = [UInt8](repeating: 0, count: count)
        t.withUnsafeMutableBufferPointer { p in
            for i in 1..<r.count {
                let start = Int(r[i - 1] >> 8), end = Int(r[i] >> 8)
                let cat = r[i - 1] & 0xFF
                var f = defined
                if cat & 0x02 != 0 { f |= number }
                if cat & 0x04 != 0 { f |= letter }
                if cat & 0x10 != 0 { f |= mark }
                if cat & 0x20 != 0 { f |= punctuation }
                if cat & 0x40 != 0 { f |= symbol }
                for c in start..<end { p[c] = f }
            }
            for c in UnicodeTables.whitespace { p[Int(c)] |= whitespace }
        }
        return t
    }()

    /// llama.cpp `unicode_tolower`, restricted to results the contraction matchers compare with
    /// (ASCII letters); any other code point is returned unchanged.
    @inline(__always)
    static func asciiLower(_ c: UInt32) -> UInt32 {
        if c >= 0x41 && c <= 0x5A { return c + 0x20 }
        if c < 0x80 { return c }
        for (from, to) in UnicodeTables.lowercaseToASCII where from == c { return to }
        return c
    }
}
