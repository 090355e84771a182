import MappedIO

/// The pieces of a SentencePiece `tokenizer.model` (a `ModelProto` protobuf). Only what GGUF
/// needs is decoded — piece, score, type — with a bounds-checked wire-format reader, so that a
/// corrupt file is an error, not a crash.
public struct SentencePieceModel: Sendable {
    /// sentencepiece_model.proto `SentencePiece.Type`.
    public enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public struct Piece: Sendable {
        public var piece: String
        public var score: Float
        public var type: PieceType
    }

    public let pieces: [Piece]

    public init(path: String) throws {
        let f = try MappedFile(path: path)
        try self.init(bytes: f.all, path: path)
    }

    public init(bytes: UnsafeRawBufferPointer, path: String) throws {
        var r = ProtoReader(buf: bytes, path: path)
        var pieces: [Piece] = []
        while !r.atEnd {
            let (field, wire) = try r.key()
            if field == 1 && wire == 2 {
                var sub = try r.submessage()
                var p = Piece(piece: "", score: 0, type: .normal)
                while !sub.atEnd {
                    let (f2, w2) = try sub.key()
                    switch (f2, w2) {
                    case (1, 2): p.piece = try sub.string()
                    case (2, 5): p.score = Float(bitPattern: try sub.fixed32())
                    case (3, 0):
                        let t = try sub.varint()
                        guard let pt = PieceType(rawValue: Int(truncatingIfNeeded: t)) else {
                            throw ModelFileError.sentencePiece(path: path, detail: "piece \(pieces.count): unknown piece type \(t)")
                        }
                        p.type = pt
                    default: try sub.skip(wire: w2)
                    }
                }
                pieces.append(p)
            } else {
                try r.skip(wire: wire)
            }
        }
        guard !pieces.isEmpty else { throw ModelFileError.sentencePiece(path: path, detail: "no pieces: not a SentencePiece model") }
        self.pieces = pieces
    }
}

struct ProtoReader {
    let buf: UnsafeRawBufferPointer
    let path: String
    var pos = 0

    var atEnd: Bool { pos >= buf.count }

    func fail(_ m: String) -> ModelFileError { .sentencePiece(path: path, detail: "invalid protobuf at byte \(pos): \(m)") }

    mutating func varint() throws(ModelFileError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < buf.count else { throw fail("truncated varint") }
            let b = buf[pos]
            pos += 1
            guard shift < 64 else { throw fail("varint too long") }
            v |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    mutating func key() throws(ModelFileError) -> (Int, Int) {
        let k = try varint()
        return (Int(truncatingIfNeeded: k >> 3), Int(k & 7))
    }

    mutating func fixed32() throws(ModelFileError) -> UInt32 {
        guard pos + 4 <= buf.count else { throw fail("truncated fixed32") }
        defer { pos += 4 }
        return UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: pos, as: UInt32.self))
    }

    mutating func lengthDelimited() throws(ModelFileError) -> UnsafeRawBufferPointer {
        let n = try varint()
        guard n <= UInt64(buf.count - pos) else { throw fail("length \(n) runs past the end") }
        defer { pos += Int(n) }
        return UnsafeRawBufferPointer(rebasing: buf[pos..<(pos + Int(n))])
    }

    mutating func submessage() throws(ModelFileError) -> ProtoReader {
        ProtoReader(buf: try lengthDelimited(), path: path)
    }

    mutating func string() throws(ModelFileError) -> String {
        let b = try lengthDelimited()
        guard let s = String(validating: b, as: UTF8.self) else { throw fail("string is not UTF-8") }
        return s
    }

    mutating func skip(wire: Int) throws(ModelFileError) {
        switch wire {
        case 0: _ = try varint()
        case 1: guard pos + 8 <= buf.count else { throw fail("truncated fixed64") }; pos += 8
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw fail("unsupported wire type \(wire)")
        }
    }
}
