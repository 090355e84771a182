import Calibration
import Conversion
import Foundation
import GGMLCore
import MappedIO
import Testing

private let fixtureRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// `--calibrate` with a budget, through the library API the CLI maps its options onto.
@Suite struct BudgetPlannerTests {
    let dir = fixtureRoot + "/eval/eval-llama"
    let calib = fixtureRoot + "/calibration/calib.txt"

    func sizeOf(_ target: ConvertTarget) -> ([String: GGMLType]) throws -> Int {
        { types in
            Calibrate.fileSize(try target.plan(directory: dir, preTokenizer: nil,
                                               options: Calibrate.withTypes(types, QuantizationPolicy.Options()), imatrix: nil).plan)
        }
    }

    @Test func planFitsTheBudgetAndReusesItsMeasurements() throws {
        let tmp = NSTemporaryDirectory() + "eq-budget-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let target = try #require(ConvertTarget(name: "q4_k_m"))
        let size = sizeOf(target)
        let q4 = try size([:])
        let sensFile = tmp + "/sensitivity.json"
        var settings = CalibrationSettings(text: calib, chunks: 4, ctx: 64, sensitivityChunks: 1, sensitivityFile: sensFile,
                                           gptqChunks: 2, budget: .bytes(q4 * 11 / 10))
        let r = try Calibrate.run(model: dir, opts: settings, threads: 2, fileSize: size)
        #expect(!r.types.isEmpty && !r.hessians.isEmpty && r.imatrix.chunkCount == 4)
        #expect(try size(r.types) <= q4 * 11 / 10)
        #expect(FileManager.default.fileExists(atPath: sensFile))

        // another budget from the same measurements: read back, not measured again
        settings.budget = .bitsPerWeight(6)
        var lines: [String] = []
        let r2 = try Calibrate.run(model: dir, opts: settings, threads: 2, log: { lines.append($0) }, fileSize: size)
        #expect(lines.contains { $0.contains("from \(sensFile)") })
        #expect(!lines.contains { $0.contains("sensitivity of") })
        #expect(r2.types.count == r.types.count)

        // a budget nothing fits is one error, not a file that is too big
        settings.budget = .bytes(1000)
        #expect(throws: CalibrationError.self) { try Calibrate.run(model: dir, opts: settings, threads: 2, fileSize: size) }
    }

    /// The planner may pick any i-quant for rows of whole super-blocks, but the ones llama-quantize
    /// refuses without importance weights only for tensors that have them.
    @Test func candidatesIncludeTheIQuants() {
        let wide = Sensitivity.candidates(cols: 512, name: "blk.0.ffn_up.weight", hasImportance: true)
        #expect(Set([GGMLType.iq1_s, .iq1_m, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq4_xs, .q2_K, .q8_0]).isSubset(of: Set(wide)))
        #expect(wide.map(\.bitsPerWeight).min() == GGMLType.iq1_s.bitsPerWeight && wide.map(\.bitsPerWeight).max() == 8.5)
        let noImatrix = Sensitivity.candidates(cols: 512, name: "blk.0.ffn_up.weight", hasImportance: false)
        #expect(Set(wide).subtracting(noImatrix) == [.iq1_s, .iq1_m, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs])
        // the token embedding never needs one
        #expect(Sensitivity.candidates(cols: 512, name: "token_embd.weight", hasImportance: false) == wide)
        // 576 columns: no 256-blocks at all
        #expect(!Sensitivity.candidates(cols: 576).contains { $0.blockSize == 256 })
    }

    @Test func sensitivityFileIsForOneModel() throws {
        let tmp = NSTemporaryDirectory() + "eq-sens-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var info = Sensitivity.TensorInfo(name: "blk.0.attn_q.weight", rows: 64, cols: 64)
        info.options = [TypePlanner.Option(type: .q4_K, bytes: 2304, loss: 0.01)]
        try SensitivityFile.write([info], to: tmp)
        #expect(throws: CalibrationError.self) { try SensitivityFile.read(tmp, expecting: [:]) }
        try "{\"format\": \"other\"}".write(toFile: tmp, atomically: true, encoding: .utf8)
        #expect(throws: CalibrationError.self) { try SensitivityFile.read(tmp, expecting: [:]) }
    }
}
