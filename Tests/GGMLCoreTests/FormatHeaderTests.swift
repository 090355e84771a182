import Foundation
import GGMLCore
import Testing

/// The C kernels' header of type ids, block sizes and tables is generated from GGMLCore, so a
/// size is written down once. When this fails, the expected header is written beside the test's
/// temp directory and the message says where: copy it over Sources/CKernels/include/ggml_format.h.
@Suite struct FormatHeaderTests {
    @Test func checkedInHeaderIsCurrent() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("Sources/CKernels/include/ggml_format.h").path
        let want = GGMLTables.formatHeader()
        let have = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        if have != want {
            let out = NSTemporaryDirectory() + "ggml_format.h"
            try want.write(toFile: out, atomically: true, encoding: .utf8)
            Issue.record("\(path) is not GGMLTables.formatHeader(): the current text is in \(out)")
        }
    }

    @Test func tablesMatchGGML() {
        #expect(GGMLType.q8_K.typeSize == GGMLTables.q8KBlockSumsOffset + 2 * (GGMLType.qkK / 16))
        #expect(GGMLTables.kvaluesIQ4NL.count == 16 && GGMLTables.kvaluesIQ4NL == GGMLTables.kvaluesIQ4NL.sorted())
    }
}
