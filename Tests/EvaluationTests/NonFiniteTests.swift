import Conversion
import Evaluation
import Foundation
import GGUFWriter
import Families
import Inference
import MappedIO
import Testing

@Suite struct NonFiniteTests {
    /// A model whose weights hold inf has no perplexity: an error in one line, not `PPL = nan`.
    @Test func infWeightsFailInsteadOfGivingNaNPerplexity() throws {
        let dir = fixtures + "/eval/eval-llama"
        let ref = try LogitsFileReader(path: dir + ".logits")
        let gguf = NSTemporaryDirectory() + "eq-inf-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: gguf) }
        _ = try Converter(plan: ConversionPlan(directory: dir, outType: .f32), threads: 2).run(outfile: gguf)
        let offset: Int
        do {
            let f = try GGUFFile(path: gguf)
            let t = try #require(f.tensors.first { $0.name == "output_norm.weight" })
            offset = f.dataStart + t.offset
        }
        let h = try #require(FileHandle(forUpdatingAtPath: gguf))
        try h.seek(toOffset: UInt64(offset))
        h.write(Data([Float](repeating: .infinity, count: 4).withUnsafeBytes { Array($0) }))
        try h.close()

        let model: Model
        do { model = try ModelLoader.load(gguf) } catch {
            // refusing such weights when loading is as good
            #expect(!"\(error)".contains("\n"))
            return
        }
        let fw = Forward(model: model, engine: F32Engine(threads: 2), threads: 2)
        let logits = NSTemporaryDirectory() + "eq-inf-\(UUID().uuidString).logits"
        do {
            let out = try Evaluation(forward: fw, nCtx: ref.nCtx, bos: model.chunkBOS)
                .run(tokens: ref.tokens, source: "eval-llama.logits", maxChunks: 1, reference: .none, saveLogits: logits)
            Issue.record("evaluated to PPL \(out.perplexity.ppl)")
        } catch let error as EvaluationError {
            #expect(error.fault.contains("logits are not finite"), "\(error)")
            #expect(error.path == model.path)
            #expect(!error.description.contains("\n"))
        }
        // and the reference log-probs it was saving are not left behind
        #expect(!FileManager.default.fileExists(atPath: logits))
        #expect(!FileManager.default.fileExists(atPath: OutputFile.tempName(for: logits)))
    }

    @Test func fifoTextIsRefusedAtOnce() throws {
        let fifo = NSTemporaryDirectory() + "eq-fifo-\(UUID().uuidString).txt"
        #expect(mkfifo(fifo, 0o644) == 0)
        defer { try? FileManager.default.removeItem(atPath: fifo) }
        let result = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var message = "hung" }
        let box = Box()
        Thread.detachNewThread {
            do { _ = try TextFile.read(fifo); box.message = "read" } catch { box.message = (error as? FileIOError)?.fault ?? "\(error)" }
            result.signal()
        }
        if result.wait(timeout: .now() + 5) == .timedOut {
            let fd = open(fifo, O_WRONLY | O_NONBLOCK) // release the reader stuck in open()
            if fd >= 0 { close(fd) }
            _ = result.wait(timeout: .now() + 5)
        }
        #expect(box.message.contains("is a FIFO"), "\(box.message)")
    }

    @Test func gzipTextStillReads() throws {
        let plain = NSTemporaryDirectory() + "eq-text-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: plain); try? FileManager.default.removeItem(atPath: plain + ".gz") }
        try Data("hello gzip\n".utf8).write(to: URL(fileURLWithPath: plain))
        let gz = Process()
        gz.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gz.arguments = ["gzip", "-k", plain]
        try gz.run()
        gz.waitUntilExit()
        #expect(try TextFile.read(plain + ".gz") == Array("hello gzip\n".utf8))
        #expect(try TextFile.read(plain) == Array("hello gzip\n".utf8))
    }
}
