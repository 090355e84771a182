import Foundation
import MappedIO

/// Writes llama-perplexity's `--kl-divergence-base` file as chunks are evaluated.
public final class LogitsFileWriter {
    let out: OutputFile
    var offset = 0
    public let nVocab: Int

    public init(path: String, nCtx: Int, nVocab: Int, tokens: [Int32]) throws {
        out = try OutputFile(path: path)
        self.nVocab = nVocab
        var header = Array("_logits_".utf8)
        for v in [Int32(nCtx), Int32(nVocab), Int32(tokens.count / nCtx)] { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
        try out.write(header, at: 0)
        offset = header.count
        var tokenBytes: [UInt8] = []
        tokenBytes.reserveCapacity(tokens.count * 4)
        for t in tokens { withUnsafeBytes(of: t.littleEndian) { tokenBytes += $0 } }
        try out.write(tokenBytes, at: offset)
        offset += tokens.count * 4
    }

    public func append(_ records: UnsafeRawBufferPointer) throws {
        try out.write(records, at: offset)
        offset += records.count
    }

    public func commit() throws { try out.commit() }
}

/// Reads a `--kl-divergence-base` file (ours or llama-perplexity's).
public final class LogitsFileReader {
    public let file: MappedFile
    public let nCtx: Int, nVocab: Int, nChunk: Int
    public let tokens: [Int32]
    let recordsStart: Int

    public init(path: String) throws {
        file = try MappedFile(path: path)
        func fail(_ m: String) -> EvaluationError { .logitsFile(path: path, detail: m) }
        guard file.size >= 20, Array(file.bytes(0..<8)) == Array("_logits_".utf8) else { throw fail("not a logits file (no _logits_ magic)") }
        let h = file.bytes(8..<20)
        nCtx = Int(Int32(littleEndian: h.loadUnaligned(as: Int32.self)))
        nVocab = Int(Int32(littleEndian: h.loadUnaligned(fromByteOffset: 4, as: Int32.self)))
        nChunk = Int(Int32(littleEndian: h.loadUnaligned(fromByteOffset: 8, as: Int32.self)))
        guard nCtx > 1, nVocab > 0, nChunk > 0 else { throw fail("header has n_ctx \(nCtx), n_vocab \(nVocab), n_chunk \(nChunk)") }
        guard let tokenBytes = checkedProduct(nCtx, nChunk, 4),
              let recordBytes = checkedProduct(KLDBase.recordLength(nVocab: nVocab), 2, nCtx - 1 - nCtx / 2, nChunk),
              let total = checkedSum(20, tokenBytes, recordBytes), file.size >= total else {
            throw fail("truncated: \(file.size) bytes, less than the header's n_ctx \(nCtx) × n_chunk \(nChunk) × n_vocab \(nVocab) promise")
        }
        let tb = file.bytes(20..<(20 + tokenBytes))
        tokens = (0..<(nCtx * nChunk)).map { Int32(littleEndian: tb.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        recordsStart = 20 + tokenBytes
    }

    /// The records of chunk `c`: one per scored position.
    public func chunk(_ c: Int) -> UnsafePointer<UInt16> {
        file.bytes(chunkRange(c)).baseAddress!.assumingMemoryBound(to: UInt16.self)
    }

    /// Drops chunk `c`'s pages from the mapping (they stay in the page cache).
    public func release(chunk c: Int) { file.adviseDone(chunkRange(c)) }

    func chunkRange(_ c: Int) -> Range<Int> {
        let per = KLDBase.recordLength(nVocab: nVocab) * (nCtx - 1 - nCtx / 2) * 2
        return (recordsStart + c * per)..<(recordsStart + (c + 1) * per)
    }
}
