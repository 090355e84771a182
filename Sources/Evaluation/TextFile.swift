import CZlib
import Foundation
import MappedIO

/// Reads an evaluation text: plain, or gzip-compressed (detected by its magic bytes, not the name).
/// A FIFO or device is refused at once (`InputFile`), and the text counts as an input that no
/// output of the run may overwrite.
public enum TextFile {
    public static func read(_ path: String) throws -> [UInt8] {
        let bytes = try InputFile.readAll(path)
        guard bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B else { return bytes }
        let (fd, _) = try InputFile.open(path)
        guard let gz = gzdopen(fd, "rb") else {
            close(fd)
            throw EvaluationError.gzip(path: path, detail: "cannot open gzip stream")
        }
        defer { gzclose(gz) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw EvaluationError.gzip(path: path, detail: "corrupt gzip data") }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<Int(n)])
        }
        return out
    }
}
