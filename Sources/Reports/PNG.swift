import CZlib

/// The smallest valid PNG for an RGB picture: one IHDR, one IDAT, IEND. Every scanline uses filter
/// 0 (none); the plot is mostly flat colour, which deflate compresses well without filtering.
enum PNGEncoder {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    static func encode(width: Int, height: Int, rgb: [UInt8]) -> [UInt8] {
        precondition(width > 0 && height > 0 && rgb.count == width * height * 3, "RGB buffer does not match its size")
        var out = signature
        var header: [UInt8] = []
        append32(&header, UInt32(width))
        append32(&header, UInt32(height))
        header += [8, 2, 0, 0, 0] // 8 bits per channel, truecolour, deflate, adaptive filters, no interlace
        chunk(&out, "IHDR", header)

        let stride = width * 3
        var raw = [UInt8]()
        raw.reserveCapacity(height * (stride + 1))
        for y in 0..<height {
            raw.append(0)
            raw += rgb[(y * stride)..<((y + 1) * stride)]
        }
        chunk(&out, "IDAT", deflate(raw))
        chunk(&out, "IEND", [])
        return out
    }

    /// A zlib stream (what IDAT holds), not raw deflate or gzip.
    static func deflate(_ data: [UInt8]) -> [UInt8] {
        var capacity = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { dst in
            data.withUnsafeBufferPointer { src in
                compress2(dst.baseAddress, &capacity, src.baseAddress, uLong(data.count), 9)
            }
        }
        // compressBound guarantees room, so only allocation failure is left, and nothing to recover.
        precondition(status == Z_OK, "zlib compress2 failed with status \(status)")
        return Array(out[0..<Int(capacity)])
    }

    private static func chunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        append32(&out, UInt32(data.count))
        let typed = Array(type.utf8) + data
        out += typed
        let crc = typed.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        append32(&out, UInt32(truncatingIfNeeded: crc))
    }

    private static func append32(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
}
