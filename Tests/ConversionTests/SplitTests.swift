import Conversion
import Crypto
import Foundation
import GGMLCore
import GGUFWriter
import MappedIO
import Testing

/// Split output and input: llama-gguf-split's layout byte for byte, and every split read back.
@Suite struct SplitTests {
    func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    @Test func writesWhatLlamaGGUFSplitWrites() throws {
        let dir = (tempOutput("x") as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try ConversionPlan(directory: fixture("checkpoints/llama-untied-sharded"), outType: .q8_0)
        let s = try Converter(plan: plan, threads: 2).run(outfile: dir + "/llama-untied-sharded-q8_0.gguf", split: .tensors(5))
        // llama-gguf-split --split --split-max-tensors 5 of convert_hf_to_gguf's file (Fixtures/golden)
        let text = try String(contentsOfFile: fixture("golden/SHA256SUMS-gguf-split"), encoding: .utf8)
        let want = text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(s.paths.map { ($0 as NSString).lastPathComponent } == want.map { String($0[1]) })
        for (p, w) in zip(s.paths, want) { #expect(try sha256(p) == String(w[0]), "\(p)") }
        #expect(s.fileSize == s.paths.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) })

        // read back: the first split stands for all, its metadata without the split keys
        let files = try GGUFFile.model(s.paths[0])
        #expect(files.count == 5 && files.flatMap(\.tensors).map(\.name) == plan.tensors.map(\.name))
        #expect(GGUFFile.modelMetadata(files).map(\.key) == plan.metadata.map(\.key))
        let single = dir + "/single.gguf"
        _ = try Converter(plan: plan, threads: 2).run(outfile: single)
        let requantized = try QuantizePlan(base: GGUFSourcePlan(files), fileType: .mostlyQ4_0,
                                           model: QuantizePlan.model(from: GGUFFile.modelMetadata(files), path: s.paths[0]),
                                           allowRequantize: true, path: s.paths[0])
        let fromSingle = try QuantizePlan(base: GGUFSourcePlan(GGUFFile(path: single)), fileType: .mostlyQ4_0,
                                          model: QuantizePlan.model(from: GGUFFile(path: single).metadata, path: single),
                                          allowRequantize: true, path: single)
        _ = try Converter(plan: requantized, threads: 2).run(outfile: dir + "/a.gguf")
        _ = try Converter(plan: fromSingle, threads: 2).run(outfile: dir + "/b.gguf")
        #expect(try sha256(dir + "/a.gguf") == sha256(dir + "/b.gguf"))
    }

    @Test func refusesSplitsThatDoNotBelongTogether() throws {
        let dir = (tempOutput("x") as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try ConversionPlan(directory: fixture("checkpoints/llama-tied"), outType: .f16)
        let s = try Converter(plan: plan, threads: 2).run(outfile: dir + "/m.gguf", split: .tensors(4))
        let n = s.paths.count
        #expect(n == (plan.tensors.count + 3) / 4 && n >= 3)
        #expect(throws: GGUFError.badSplit(path: s.paths[1], detail: "is split 2 of \(n); give the first, m-00001-of-0000\(n).gguf")) {
            _ = try GGUFFile.model(s.paths[1])
        }
        try FileManager.default.moveItem(atPath: s.paths[2], toPath: dir + "/moved.gguf")
        #expect(throws: GGUFError.badSplit(path: s.paths[2], detail: "missing: split 3 of \(n) of \(displayName(s.paths[0]))")) {
            _ = try GGUFFile.model(s.paths[0])
        }
        // a file renamed into a split's place: its split.no says otherwise
        try FileManager.default.copyItem(atPath: s.paths[1], toPath: s.paths[2])
        #expect(throws: GGUFError.self) { _ = try GGUFFile.model(s.paths[0]) }
    }

    @Test func plansCutsAsLlamaGGUFSplitDoes() throws {
        let t = (0..<5).map { GGUFTensorInfo(name: "t\($0)", ne: [100], type: .f32) } // 400 bytes, 416 padded
        #expect(try GGUFSplitPlan(tensors: t, limit: .tensors(2), path: "p").ranges == [0..<2, 2..<4, 4..<5])
        #expect(try GGUFSplitPlan(tensors: t, limit: .tensors(5), path: "p").ranges == [0..<5])
        #expect(try GGUFSplitPlan(tensors: t, limit: .bytes(832), path: "p").ranges == [0..<2, 2..<4, 4..<5])
        #expect(try GGUFSplitPlan(tensors: t, limit: .bytes(831), path: "p").ranges == [0..<1, 1..<2, 2..<3, 3..<4, 4..<5])
        #expect(throws: GGUFError.self) { _ = try GGUFSplitPlan(tensors: t, limit: .bytes(415), path: "p") }
        #expect(GGUFSplitPlan.path(prefix: "d/M-Q8_0", split: 1, count: 12) == "d/M-Q8_0-00002-of-00012.gguf")
        #expect(GGUFSplitPlan.prefix(of: "d/M-Q8_0.gguf") == "d/M-Q8_0" && GGUFSplitPlan.prefix(of: "d/out") == "d/out")
    }
}
