import Calibration
import Foundation
import GGUFWriter
import Families
import Inference
import MappedIO
import Testing
import Tokenizer

let calibrationFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/calibration").path

/// llama-imatrix's runs on Fixtures/calibration/tiny-llama.gguf (make_calibration_golden.py).
struct GoldenCase: Sendable, CustomStringConvertible {
    let name: String
    let nCtx: Int
    let chunks: Int
    let processOutput: Bool
    /// Tokens each entry counts: llama-imatrix skips micro-batches of fewer than 16 rows.
    let count: Int
    var description: String { name }
}

let goldenCases = [
    GoldenCase(name: "c32", nCtx: 32, chunks: 6, processOutput: true, count: 6 * 32),
    GoldenCase(name: "c520", nCtx: 520, chunks: 4, processOutput: true, count: 3 * 520 + 512),
    GoldenCase(name: "c1030", nCtx: 1030, chunks: 2, processOutput: false, count: 2 * 1024),
    GoldenCase(name: "c12", nCtx: 12, chunks: 1, processOutput: false, count: 0),
]

/// Reads an imatrix GGUF with the plain GGUF reader, checking the layout llama-imatrix writes.
func readImatrixGGUF(_ path: String) throws -> ImportanceMatrix {
    let f = try GGUFFile(path: path)
    #expect(f.metadata.map(\.key) == ["general.type", "imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"])
    #expect(f["general.type"] == .string("imatrix"))
    var m = ImportanceMatrix(datasets: f["imatrix.datasets"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                             chunkCount: f["imatrix.chunk_count"]?.intValue ?? -1, chunkSize: f["imatrix.chunk_size"]?.intValue ?? -1)
    #expect(f.tensors.count % 2 == 0)
    func floats(_ t: GGUFTensorInfo) -> [Float] {
        #expect(t.type == .f32)
        return Array(f.data(t).bindMemory(to: Float.self))
    }
    for i in stride(from: 0, to: f.tensors.count, by: 2) {
        let s = f.tensors[i], c = f.tensors[i + 1]
        #expect(s.name.hasSuffix(".in_sum2"))
        let name = String(s.name.dropLast(".in_sum2".count))
        #expect(c.name == name + ".counts")
        m.entries[name] = .init(sums: floats(s), counts: floats(c))
    }
    return m
}

/// The tiny vocabulary adds BOS (`tokenizer.ggml.add_bos_token`), id 1.
let tinyBOS: Int32 = 1

func tinyModel() throws -> (Model, [Int32]) {
    let path = calibrationFixtures + "/tiny-llama.gguf"
    let model = try Model(gguf: GGUFFile(path: path))
    let text = try #require(FileManager.default.contents(atPath: calibrationFixtures + "/calib.txt"))
    let tokens = ImatrixCollector.calibrationTokens(text: Array(text), tokenizer: try Tokenizer(ggufPath: path))
    return (model, tokens)
}

/// Keeps a copy of every product's input, per weight name.
final class CapturingEngine: MatMulEngine, @unchecked Sendable {
    let inner = GGMLEngine(threads: 2)
    var inputs: [String: [[Float]]] = [:]
    func multiply(_ w: Weight, _ x: Matrix, into out: Matrix) {
        for r in 0..<x.rows { inputs[w.name, default: []].append(Array(UnsafeBufferPointer(start: x.row(r), count: x.cols))) }
        inner.multiply(w, x, into: out)
    }
}

@Suite struct ImatrixCollectorTests {
    @Test func microBatchRule() {
        // all chunks of a group are sequences of one batch, split equally: 6 × 32 rows
        #expect(ImatrixCollector.recordedPositions(nCtx: 32, sequences: 6).allSatisfy { $0 })
        // three sequences: 170 + 170 + 170 + 10 positions each, ≥ 30 rows per micro-batch
        #expect(ImatrixCollector.recordedPositions(nCtx: 520, sequences: 3).allSatisfy { $0 })
        // one sequence left over: 512 + 8, and 8 rows are too few
        let last = ImatrixCollector.recordedPositions(nCtx: 520, sequences: 1)
        #expect(last.prefix(512).allSatisfy { $0 } && last.suffix(8).allSatisfy { !$0 })
        // one sequence per batch (n_ctx > n_batch / 2), split in order: 512 + 512 + 6
        let long = ImatrixCollector.recordedPositions(nCtx: 1030, sequences: 1)
        #expect(long.prefix(1024).allSatisfy { $0 } && long.suffix(6).allSatisfy { !$0 })
        // longer than a batch: batches of 2048 (4 micro-batches) then 10 positions, skipped
        let longer = ImatrixCollector.recordedPositions(nCtx: 2058, sequences: 1)
        #expect(longer.filter { $0 }.count == 2048)
        #expect(ImatrixCollector.recordedPositions(nCtx: 12, sequences: 1).allSatisfy { !$0 })
        // the default: four chunks of 512 as four sequences, 128 positions of each per micro-batch
        let d = ImatrixCollector.microBatches(nCtx: 512, sequences: 4)
        #expect(d.map(\.positions) == [0..<128, 128..<256, 256..<384, 384..<512] && d.allSatisfy { $0.rows == 512 })
        #expect(ImatrixCollector.recordedPositions(nCtx: 12, sequences: 2).allSatisfy { $0 })
    }

    /// The collector's sums against Σx² taken directly from every product's input.
    @Test(arguments: [false, true])
    func sumsAreSquaredInputs(processOutput: Bool) throws {
        let (model, tokens) = try tinyModel()
        let nCtx = 64, chunks = 3
        let options = ImatrixCollector.Options(nCtx: nCtx, maxChunks: chunks, processOutput: processOutput)
        let m = try ImatrixCollector(model: model, engine: GGMLEngine(threads: 2), threads: 2, options: options)
            .run(tokens: tokens, datasets: ["calib.txt"], bos: tinyBOS)
        let capture = CapturingEngine()
        let fw = Forward(model: model, engine: capture, threads: 2)
        for c in 0..<chunks {
            var chunk = Array(tokens[(c * nCtx)..<((c + 1) * nCtx)])
            chunk[0] = tinyBOS
            fw.logits(chunk).free()
        }
        var expected = Set(capture.inputs.keys.filter { $0.hasPrefix("blk.") })
        if processOutput { expected.insert("output.weight") }
        #expect(Set(m.entries.keys) == expected)
        #expect(m.entries.count == (processOutput ? 15 : 14))
        #expect(m.chunkCount == chunks && m.chunkSize == nCtx && m.datasets == ["calib.txt"])
        for (name, e) in m.entries {
            let rows = try #require(capture.inputs[name])
            #expect(rows.count == chunks * nCtx)
            #expect(e.counts == [Float(chunks * nCtx)])
            for j in 0..<e.ne0 {
                var direct = 0.0
                for r in rows { direct += Double(r[j]) * Double(r[j]) }
                #expect(abs(Double(e.sums[j]) - direct) <= 1e-5 * direct, "\(name)[\(j)]: \(e.sums[j]) vs \(direct)")
            }
        }
    }

    /// Our forward pass and chunking against llama-imatrix's file for the same model and text.
    @Test(arguments: goldenCases)
    func matchesLlamaImatrix(_ c: GoldenCase) throws {
        let ref = try readImatrixGGUF(calibrationFixtures + "/\(c.name).imatrix.gguf")
        let (model, tokens) = try tinyModel()
        let options = ImatrixCollector.Options(nCtx: c.nCtx, maxChunks: c.chunks, processOutput: c.processOutput)
        let m = try ImatrixCollector(model: model, engine: GGMLEngine(threads: 2), threads: 2, options: options)
            .run(tokens: tokens, datasets: ["calib.txt"], bos: tinyBOS)
        #expect(m.datasets == ref.datasets && m.chunkCount == ref.chunkCount && m.chunkSize == ref.chunkSize)
        #expect(m.sortedNames == ref.sortedNames)
        var worst = 0.0
        for (name, r) in ref.entries {
            guard let e = m.entries[name] else { Issue.record("\(name) missing"); continue }
            #expect(e.counts == r.counts && e.counts == [Float(c.count)])
            #expect(e.sums.count == r.sums.count)
            for (a, b) in zip(e.sums, r.sums) {
                let diff = Double(abs(a - b)), ref = Double(abs(b))
                worst = max(worst, diff / max(ref, 1e-30))
            }
        }
        #expect(worst < 1e-4, "\(c.name): max relative difference \(worst)")
    }

    /// llama-imatrix's own numbers written by our writer give its file byte for byte, in both formats.
    @Test(arguments: goldenCases)
    func writesLlamaImatrixBytes(_ c: GoldenCase) throws {
        let refPath = calibrationFixtures + "/\(c.name).imatrix.gguf"
        let ref = try readImatrixGGUF(refPath)
        let dir = NSTemporaryDirectory() + "eq-imatrix-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ref.write(to: dir + "/out.gguf", format: .gguf)
        #expect(FileManager.default.contents(atPath: dir + "/out.gguf") == FileManager.default.contents(atPath: refPath))
        try ref.write(to: dir + "/out.dat", format: .dat)
        #expect(FileManager.default.contents(atPath: dir + "/out.dat")
                == FileManager.default.contents(atPath: calibrationFixtures + "/\(c.name).imatrix.dat"))
        // nothing but the two outputs: the temporary files were renamed
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["out.dat", "out.gguf"])
    }

    @Test func nothingLeftOnError() throws {
        let m = ImportanceMatrix(entries: ["blk.0.ffn_up.weight": .init(sums: [1, 2], counts: [3])], datasets: ["x"],
                                 chunkCount: 1, chunkSize: 2)
        #expect(throws: FileIOError.self) { try m.write(to: "/nonexistent-dir/imatrix.gguf", format: .gguf) }
        #expect(throws: FileIOError.self) { try m.write(to: "/nonexistent-dir/imatrix.dat", format: .dat) }
    }

    @Test func tooShortText() throws {
        let (model, tokens) = try tinyModel()
        let collector = ImatrixCollector(model: model, engine: GGMLEngine(threads: 1), threads: 1,
                                         options: .init(nCtx: tokens.count / 2 + 1))
        #expect(throws: CalibrationError.self) { try collector.run(tokens: tokens, datasets: ["calib.txt"], bos: 1) }
    }
}

/// `HessianStream.collectAll`, the one walk `--calibrate` makes when GPTQ's chunks are the
/// importance matrix's: its Σx² must be the collector's, bit for bit, or the files would change.
@Suite struct OneWalkTests {
    func chunks(_ tokens: [Int32], nCtx: Int, count: Int) -> [[Int32]] {
        (0..<count).map { c in
            var ch = Array(tokens[(c * nCtx)..<((c + 1) * nCtx)])
            ch[0] = tinyBOS
            return ch
        }
    }

    @Test func givesTheCollectorsImatrixAndThePrefixStreamsHessians() throws {
        let (model, tokens) = try tinyModel()
        let nCtx = 64, n = 3
        var options = ImatrixCollector.Options(nCtx: nCtx, maxChunks: n)
        options.nBatch = 64
        options.nUbatch = 64
        let collector = ImatrixCollector(model: model, engine: GGMLEngine(threads: 2), threads: 2, options: options)
        #expect(collector.isPlainForward(chunks: n))
        // llama.cpp's defaults at 64 tokens: 32 sequences, micro-batches of 16 positions, run in pieces
        #expect(!ImatrixCollector(model: model, engine: GGMLEngine(threads: 2), threads: 2, options: .init(nCtx: 64)).isPlainForward(chunks: 32))
        // at 512: groups of 4 chunks, 128 positions of each a micro-batch; but a last group of 3
        // leaves micro-batches of 2 positions (6 rows), which are not recorded
        let c512 = ImatrixCollector(model: model, engine: GGMLEngine(threads: 2), threads: 2, options: .init(nCtx: 512))
        #expect(c512.isPlainForward(chunks: 32) && c512.isPlainForward(chunks: 2) && c512.isPlainForward(chunks: 1))
        #expect(!c512.isPlainForward(chunks: 3) && !c512.isPlainForward(chunks: 31))
        let m = try collector.run(tokens: tokens, datasets: ["calib.txt"], bos: tinyBOS)

        let cut = chunks(tokens, nCtx: nCtx, count: n)
        let stream = HessianStream(model: model, chunks: cut, threads: 2, spilling: true)
        let prefix = HessianStream(model: model, chunks: Array(cut.prefix(2)), threads: 2, spilling: true)
        let sums = try stream.collectAll(prefix: prefix, nonFinite: { _, _ in CancellationError() })
        #expect(Set(sums.keys) == Set(m.entries.keys) && sums.count == 14)
        for (name, e) in m.entries {
            let s = try #require(sums[name])
            #expect(s.sums.map(\.bitPattern) == e.sums.map(\.bitPattern) && [Float(s.tokens)] == e.counts, "\(name)")
        }
        // each stream reads its layers back: the same second moments as collecting them alone
        let all = HessianCollector.collect(model: model, chunks: cut, threads: 2)
        let first = HessianCollector.collect(model: model, chunks: Array(cut.prefix(2)), threads: 2)
        for name in m.entries.keys.sorted() {
            let a = try #require(stream.hessian(for: name)), b = try #require(prefix.hessian(for: name))
            let wantA = try #require(all.hessians[name]), wantB = try #require(first.hessians[name])
            #expect(a.values == wantA.values && a.tokens == wantA.tokens, "\(name)")
            #expect(b.values == wantB.values && b.tokens == wantB.tokens, "\(name)")
        }
    }

    /// A model whose activations stop being numbers fails the walk with the first input it spoils.
    @Test func namesTheFirstNonFiniteInput() throws {
        let (model, tokens) = try tinyModel()
        let name = "blk.0.attn_output.weight"
        let w = try #require(model.weightMatrices[name])
        let bad = UnsafeMutablePointer<Float>.allocate(capacity: w.rows * w.cols)
        defer { bad.deallocate() }
        bad.initialize(repeating: .infinity, count: w.rows * w.cols)
        let hostile = try model.replacing([name: Weight(type: .f32, rows: w.rows, cols: w.cols, data: UnsafeRawPointer(bad))], keepAlive: [])
        let stream = HessianStream(model: hostile, chunks: chunks(tokens, nCtx: 64, count: 2), threads: 2, spilling: true)
        #expect(throws: CalibrationError.nonFiniteActivations(path: "calib.txt", tensor: "blk.0.ffn_gate.weight", chunk: 0)) {
            _ = try stream.collectAll(nonFinite: { CalibrationError.nonFiniteActivations(path: "calib.txt", tensor: $0, chunk: $1) })
        }
    }
}
