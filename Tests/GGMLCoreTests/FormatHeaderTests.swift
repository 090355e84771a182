import Foundation
import GGMLCore
import Testing

/// The C kernels' header of type ids, block sizes and tables is generated from GGMLCore, so a
/// size is written down once. When this fails, the expected header is written beside the test's
/// temp directory and the message says where: copy it over the header in Sources/CKernels/include/.
@Suite struct FormatHeaderTests {
    @Test(arguments: [("ggml_format.h", GGMLTables.formatHeader()), ("ggml_iq_grids.h", GGMLTables.iqGridsHeader())])
    func checkedInHeaderIsCurrent(file: String, want: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("Sources/CKernels/include/\(file)").path
        let have = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        if have != want {
            let out = NSTemporaryDirectory() + file
            try want.write(toFile: out, atomically: true, encoding: .utf8)
            Issue.record("\(path) is not generated from GGMLTables: the current text is in \(out)")
        }
    }

    @Test func tablesMatchGGML() {
        #expect(GGMLType.q8_K.typeSize == GGMLTables.q8KBlockSumsOffset + 2 * (GGMLType.qkK / 16))
        #expect(GGMLTables.kvaluesIQ4NL.count == 16 && GGMLTables.kvaluesIQ4NL == GGMLTables.kvaluesIQ4NL.sorted())
    }
}
