import CZlib
import Foundation
import MappedIO

/// Reads an evaluation text: plain, or gzip-compressed (detected by its magic bytes, not the name).
public enum TextFile {
    public static func read(_ path: String) throws(FileError) -> [UInt8] {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw FileError(path: path, message: FileManager.default.fileExists(atPath: path) ? "cannot read" : "no such file")
        }
        let magic = (try? h.read(upToCount: 2)).map(Array.init) ?? []
        try? h.close()
        if magic != [0x1F, 0x8B] {
            guard let d = FileManager.default.contents(atPath: path) else { throw FileError(path: path, message: "cannot read") }
            return Array(d)
        }
        guard let gz = gzopen(path, "rb") else { throw FileError(path: path, message: "cannot open gzip stream") }
        defer { gzclose(gz) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw FileError(path: path, message: "corrupt gzip data") }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<Int(n)])
        }
        return out
    }
}
