@testable import Calibration
import Conversion
import Evaluation
import Foundation
import Workers
import Inference
import GGMLCore
import MappedIO
import Quantizers
import Testing

private let fixtureRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// `--calibrate` with a budget, through the library API the CLI maps its options onto.
@Suite struct BudgetPlannerTests {
    let dir = fixtureRoot + "/eval/eval-llama"
    let calib = fixtureRoot + "/calibration/calib.txt"

    func sizeOf(_ target: ConvertTarget) -> ([String: GGMLType], ImatrixData?) throws -> Int {
        { types, im in
            Calibrate.fileSize(try target.plan(directory: dir, preTokenizer: nil,
                                               options: Calibrate.withTypes(types, QuantizationPolicy.Options()), imatrix: im).plan)
        }
    }

    @Test func planFitsTheBudgetAndReusesItsMeasurements() throws {
        let tmp = NSTemporaryDirectory() + "eq-budget-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let target = try #require(ConvertTarget(name: "q4_k_m"))
        let size = sizeOf(target)
        let q4 = try size([:], nil)
        let sensFile = tmp + "/sensitivity.json"
        var settings = CalibrationSettings(text: calib, chunks: 4, ctx: 64, sensitivityChunks: 1, sensitivityFile: sensFile,
                                           gptqChunks: 2, budget: .bytes(q4 * 11 / 10))
        let r = try Calibrate.run(model: dir, opts: settings, threads: 2, fileSize: size)
        #expect(!r.types.isEmpty && r.gptq != nil && r.imatrix.chunkCount == 4)
        // exactly as written: with the importance matrix's metadata
        #expect(try size(r.types, r.quantization(text: calib, base: .init(), threads: 1).imatrix) <= q4 * 11 / 10)
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

    /// A plan's mix is measured and each layer's predictions rescaled to its measured share.
    @Test func mixCheckScalesLayersWithinBounds() throws {
        let target = try #require(ConvertTarget(name: "q4_k_m"))
        var settings = CalibrationSettings(text: calib, chunks: 4, ctx: 64, sensitivityChunks: 1, gptqChunks: 2, budget: .bitsPerWeight(5))
        settings.sensitivityCtx = 64
        settings.measureSensitivity = true
        var lines: [String] = []
        let r = try Calibrate.run(model: dir, opts: settings, threads: 2, log: { lines.append($0) }, fileSize: sizeOf(target))
        #expect(lines.contains { $0.contains("mix measured") })
        let sens = try #require(r.sensitivity)
        let loss = Dictionary(uniqueKeysWithValues: r.sensitivities.map { i in (i.name, i.options.first { $0.type == r.types[i.name] }!.loss) })
        let check = try sens.check(types: r.types, predicted: loss, importance: r.imatrix.allQuantWeights())
        #expect(check.measured > 0 && check.predicted > 0)
        #expect(Set(check.scale.keys) == Set(r.types.keys))
        #expect(check.scale.values.allSatisfy { $0 >= 0.25 && $0 <= 4 })
        // the dominant type labels the file
        let d = try #require(r.dominantType)
        #expect(QuantizationPolicy.fileType(mostly: d) != nil)

        // The check and the mixes' measurement walk the layers together, one layer of each mix
        // quantized at a time; what they measure is what the whole mix, built at once and run
        // from the embedding, gives — bit for bit.
        var factor: (Hessian, GPTQ.Factor)?
        let importance = r.imatrix.allQuantWeights()
        let (whole, keep) = sens.quantized([r.types], names: Array(r.types.keys), importance: importance, factor: &factor)
        let mix = try sens.reference.replacing(whole[0], keepAlive: keep)
        let direct = sens.meanKLD(of: mix, changed: "token_embd.weight")
        #expect(check.measured == direct)
        let other = r.types.mapValues { _ in GGMLType.q8_0 }
        #expect(try sens.mixKLDs([r.types, other], importance: importance)[0].mean == direct)
        // a layer's share: the mix with that layer as it was, run from the embedding
        let layer1 = r.types.keys.filter { $0.hasPrefix("blk.1.") }
        #expect(!layer1.isEmpty)
        let restored = try mix.replacing(Dictionary(uniqueKeysWithValues: layer1.map { ($0, sens.weights[$0]!) }), keepAlive: [])
        let share = direct - sens.meanKLD(of: restored, changed: "token_embd.weight")
        let predicted = layer1.reduce(0) { $0 + loss[$1]! }
        let expected = predicted > 0 && share > 0 ? min(4, max(0.25, share / predicted)) : 1
        #expect(abs(check.scale[layer1[0]]! - expected) <= 1e-9 * expected)
    }

    /// The candidates' output errors are GPTQ's where GPTQ writes the type: never above
    /// importance-weighted rounding's in the same metric (rows where it would be are written
    /// rounded), and smaller for more bits.
    @Test func outputErrorsAreGPTQsAndOrdered() throws {
        let settings = CalibrationSettings(text: calib, chunks: 2, ctx: 64, gptqChunks: 2)
        let r = try Calibrate.run(model: dir, opts: settings, threads: 2) { _, _ in 0 }
        let model = try f32Copy(ModelLoader.load(dir), threads: 2)
        let name = try #require(model.weightMatrices.keys.sorted().first { $0.contains("ffn_up") })
        let w = try #require(model.weightMatrices[name])
        let factor = try GPTQ.Factor(try #require(r.gptq?.hessian(for: name)))
        let imp = try #require(r.imatrix.allQuantWeights()[name])
        let errs = Sensitivity.outputErrors(w, factor: factor, importance: imp, types: [.q4_0, .q8_0, .iq4_nl], maxRows: w.rows, threads: 2)
        #expect(Set(errs.keys) == [.q4_0, .q8_0, .iq4_nl])
        #expect(errs[.q8_0]! < errs[.q4_0]! && errs[.q8_0]! > 0)
        // rounding's error in the same metric, every row
        let q = try #require(Quantizers.quantizer(for: .q4_0))
        let rb = try #require(GGMLType.q4_0.rowSize(w.cols))
        var rounding = 0.0
        var row = [Float](repeating: 0, count: w.cols), deq = row
        var blocks = [UInt8](repeating: 0, count: rb)
        for i in 0..<w.rows {
            row.withUnsafeMutableBufferPointer { w.row(i, into: $0) }
            imp.withUnsafeBufferPointer { ip in
                row.withUnsafeBufferPointer { src in
                    blocks.withUnsafeMutableBytes { q.quantizeRow(src, importance: ip, into: $0) }
                }
            }
            blocks.withUnsafeBytes { b in deq.withUnsafeMutableBufferPointer { q.dequantizeRow(b, into: $0) } }
            for c in 0..<w.cols { deq[c] = row[c] - deq[c] }
            rounding += deq.withUnsafeBufferPointer { factor.quadraticForm($0.baseAddress!) }
        }
        #expect(errs[.q4_0]! <= rounding * (1 + 1e-4) && errs[.q4_0]! < rounding)
    }

    @Test func fileTypeLabelsOfMixes() {
        #expect(QuantizationPolicy.fileType(mostly: .q4_K) == .mostlyQ4_K_M)
        #expect(QuantizationPolicy.fileType(mostly: .q3_K) == .mostlyQ3_K_M)
        #expect(QuantizationPolicy.fileType(mostly: .iq4_nl) == .mostlyIQ4_NL)
        #expect(QuantizationPolicy.fileType(mostly: .iq2_xs) == .mostlyIQ2_XS)
        #expect(QuantizationPolicy.fileType(mostly: .q8_0) == .mostlyQ8_0)
    }

    /// The reference measured against itself is exactly the reference: nothing but the changed
    /// tensor moves the divergence, on the weights as they are and on an f32 copy. Exactly 0, not
    /// small: the negative entropy and the cross term are summed alike from the same stored
    /// probabilities, so no CPU's libm or rounding leaves a residue (one CI machine's was 2.2e-6).
    @Test func unchangedModelHasZeroDivergence() throws {
        let source = try ModelLoader.load(dir)
        let tokens = try ModelLoader.evaluationTokens(textFile: calib, tokenizer: ModelLoader.tokenizer(dir, for: source))
        var chunk = Array(tokens.prefix(64))
        if let b = source.chunkBOS { chunk[0] = b }
        for ref in [source, try f32Copy(source, threads: 2)] {
            let sens = Sensitivity(reference: ref, weights: source.weightMatrices, chunks: [chunk], threads: 2, scoredFrom: 16)
            for name in ["blk.0.attn_k.weight", "blk.1.ffn_down.weight", "token_embd.weight"] {
                let same = try ref.replacing([name: ref.weightMatrices[name]!], keepAlive: [])
                #expect(sens.meanKLD(of: same, changed: name) == 0, "\(name)")
            }
        }
    }

    /// A llama-quantize mix replaces the plan only when it measured lower by more than the
    /// measurement can tell: by twice the paired differences' standard error.
    @Test func mixWinsOnlyWhenMeasurablyLower() {
        let plan = (0..<192).map { 0.02 + 0.01 * sin(Double($0)) }
        #expect(!Sensitivity.measurablyLower(plan, than: plan))
        #expect(Sensitivity.measurablyLower(plan.map { $0 * 0.9 }, than: plan))
        #expect(!Sensitivity.measurablyLower(plan.map { $0 * 1.1 }, than: plan))
        // lower on average by 0.2% of the mean, each position off by ±5%: a coin flip
        let noisy = plan.enumerated().map { $0.element * (0.998 + ($0.offset % 2 == 0 ? 0.05 : -0.05)) }
        #expect(noisy.reduce(0, +) < plan.reduce(0, +))
        #expect(!Sensitivity.measurablyLower(noisy, than: plan))
        #expect(!Sensitivity.measurablyLower([0.01], than: [0.02]) && !Sensitivity.measurablyLower([0.01, 0.01], than: [0.02]))
    }

    /// One probe per layer: the layer's matrices quantized together and run to the end, its
    /// divergence shared among them by the change each makes alone to the layer's output. So the
    /// shares add up to that run's divergence, a matrix outside the layers is still measured
    /// alone (as `tensor` measures every matrix), and an unchanged matrix changes nothing.
    @Test func layerProbesShareEachLayersDivergence() throws {
        let source = try ModelLoader.load(dir)
        let tokens = try ModelLoader.evaluationTokens(textFile: calib, tokenizer: ModelLoader.tokenizer(dir, for: source))
        var chunk = Array(tokens.prefix(64))
        if let b = source.chunkBOS { chunk[0] = b }
        let ref = try f32Copy(source, threads: 2)
        let sens = Sensitivity(reference: ref, weights: source.weightMatrices, chunks: [chunk], threads: 2, scoredFrom: 16)
        let byLayer = try sens.analyze(importance: [:], probes: .layer)
        let alone = try sens.analyze(importance: [:], probes: .tensor)
        #expect(byLayer.map(\.name) == alone.map(\.name))
        for (a, b) in zip(byLayer, alone) {
            #expect(a.options.map(\.type) == b.options.map(\.type) && a.options.map(\.bytes) == b.options.map(\.bytes), "\(a.name)")
            if sens.firstLayer(a.name).map({ $0 >= ref.hparams.nLayer }) ?? true {
                #expect(a.probeKLD == b.probeKLD && a.probeKLD > 0, "\(a.name)")
            }
        }
        for l in 0..<ref.hparams.nLayer {
            let names = byLayer.filter { sens.firstLayer($0.name) == l }.map(\.name)
            #expect(names.count >= 7)
            var repl: [String: Weight] = [:]
            var keep: [AnyObject] = []
            for n in names {
                let (q, k) = Sensitivity.quantizedWeight(source.weightMatrices[n]!, type: .q4_0, importance: nil, threads: 2)
                repl[n] = q
                keep.append(k)
            }
            let joint = sens.meanKLD(of: try ref.replacing(repl, keepAlive: keep), changed: names[0])
            let shared = byLayer.filter { names.contains($0.name) }.reduce(0) { $0 + $1.probeKLD }
            #expect(joint > 0 && abs(shared - joint) <= 1e-6 * joint + 1e-10, "layer \(l): \(shared) vs \(joint)")
            let name = names[0], w = ref.weightMatrices[name]!
            #expect(try sens.layerChange(l, [name: w], keepAlive: ref) == 0)
        }
    }
}

/// Every weight matrix of `m` as an f32 copy.
func f32Copy(_ m: Model, threads: Int) throws -> Model {
    var repl: [String: Weight] = [:]
    var keep: [AnyObject] = []
    for (name, w) in m.weightMatrices where w.type != .f32 {
        let buf = OwnedBuffer(floats: w.rows * w.cols)
        for r in 0..<w.rows { w.row(r, into: UnsafeMutableBufferPointer(start: buf.floats + r * w.cols, count: w.cols)) }
        repl[name] = Weight(type: .f32, rows: w.rows, cols: w.cols, data: UnsafeRawPointer(buf.floats), name: name)
        keep.append(buf)
    }
    return repl.isEmpty ? m : try m.replacing(repl, keepAlive: keep)
}

/// The planner measures its mixes quantized with the writer's second moments, so the writer takes
/// each tensor the planner made instead of running GPTQ again: the same bytes either way.
@Suite struct PlannedTensorsReuseTests {
    @Test func writerTakesTheMeasuredTensorsBitForBit() throws {
        let dir = fixtureRoot + "/eval/eval-llama"
        let target = try #require(ConvertTarget(name: "q4_k_m"))
        var settings = CalibrationSettings(text: fixtureRoot + "/calibration/calib.txt", chunks: 4, ctx: 64, sensitivityChunks: 1,
                                           gptqChunks: 4, budget: .bitsPerWeight(5))
        settings.sensitivityCtx = 64
        let size: ([String: GGMLType], ImatrixData?) throws -> Int = { types, im in
            Calibrate.fileSize(try target.plan(directory: dir, preTokenizer: nil,
                                               options: Calibrate.withTypes(types, QuantizationPolicy.Options()), imatrix: im).plan)
        }
        let r = try Calibrate.run(model: dir, opts: settings, threads: 2, fileSize: size)
        let written = try #require(r.written)
        var alone = r
        alone.written = nil
        let reusing = try #require(Calibrate.encoder(r, threads: 2))
        let making = try #require(Calibrate.encoder(alone, threads: 1))
        let model = try ModelLoader.load(dir)
        var gptqTensors = 0
        let before = written.tensors.hits
        for (name, type) in r.types.sorted(by: { $0.key < $1.key }) where Quantizers.gridQuantizer(for: type) != nil {
            let w = try #require(model.weightMatrices[name])
            var rows = [Float](repeating: 0, count: w.rows * w.cols)
            rows.withUnsafeMutableBufferPointer { p in
                for i in 0..<w.rows { w.row(i, into: UnsafeMutableBufferPointer(rebasing: p[(i * w.cols)..<((i + 1) * w.cols)])) }
            }
            let t = PlannedTensor(name: name, sourceName: name, ne: [w.cols, w.rows], type: type, source: .generated([]))
            let n = try #require(type.rowSize(w.cols)) * w.rows
            var a = [UInt8](repeating: 0, count: n), b = [UInt8](repeating: 0xA5, count: n)
            let (ra, rb) = rows.withUnsafeBufferPointer { p in
                (a.withUnsafeMutableBytes { reusing(t, p, $0) }, b.withUnsafeMutableBytes { making(t, p, $0) })
            }
            #expect(ra == rb, "\(name)")
            guard ra else { continue }
            gptqTensors += 1
            #expect(a == b, "\(name) as \(type.name)")
        }
        #expect(gptqTensors > 0)
        // every one of them was the planner's, none made again
        #expect(written.tensors.hits - before == gptqTensors)
    }
}
