@testable import Conversion
import Crypto
import Foundation
import GGUFWriter
import MappedIO
import SafetensorsReader
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures").path

func fixture(_ rel: String) -> String { (fixtures as NSString).appendingPathComponent(rel) }

func tempOutput(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "eq-conv-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return (d as NSString).appendingPathComponent(name)
}

/// Our output against GGUFs that llama.cpp's convert_hf_to_gguf.py wrote for the same tiny
/// checkpoints (Fixtures/make_fixtures.py): the whole file must be byte-identical.
@Suite struct GoldenTests {
    static let variants = ["llama-tied", "llama-untied-sharded", "mistral", "qwen2",
                           "gemma", "gemma2", "gemma3", "qwen3", "phi3", "phi3-longrope", "minicpm", "smollm3", "phi2"]
    static let cases = variants.flatMap { v in OutType.allCases.map { (v, $0) } }

    /// PyTorch .bin versions (Fixtures/torch/make_bin_checkpoints.py): tensors in state-dict order,
    /// one file and two shards with an index, as convert_hf_to_gguf.py converts them.
    @Test(arguments: ["llama-tied-bin", "llama-untied-sharded-bin"], [OutType.f16, .q8_0])
    func pytorchBinByteIdenticalToConvertHFToGGUF(_ variant: String, _ type: OutType) throws {
        let out = tempOutput("\(variant)-\(type.rawValue).gguf")
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        let plan = try ConversionPlan(directory: fixture("checkpoints/\(variant)"), outType: type)
        #expect(plan.checkpoint.files.allSatisfy { $0 is TorchFile })
        _ = try Converter(plan: plan, threads: 2).run(outfile: out)
        let ours = try Data(contentsOf: URL(fileURLWithPath: out))
        let theirs = try Data(contentsOf: URL(fileURLWithPath: fixture("golden/\(variant)-\(type.rawValue).gguf")))
        #expect(ours == theirs, "\(variant) \(type)")
    }

    @Test(arguments: cases)
    func byteIdenticalToConvertHFToGGUF(_ c: (String, OutType)) throws {
        let (variant, type) = c
        let golden = fixture("golden/\(variant)-\(type.rawValue).gguf")
        let out = tempOutput("\(variant)-\(type.rawValue).gguf")
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        let plan = try ConversionPlan(directory: fixture("checkpoints/\(variant)"), outType: type)
        _ = try Converter(plan: plan, threads: 2).run(outfile: out)

        let ours = try GGUFFile(path: out)
        let theirs = try GGUFFile(path: golden)
        // Compare piecewise first so that a failure says what differs.
        #expect(ours.metadata.map(\.key) == theirs.metadata.map(\.key))
        for (k, v) in theirs.metadata { #expect(ours[k] == v, "\(variant) \(type): key \(k)") }
        #expect(ours.tensors.map(\.name) == theirs.tensors.map(\.name))
        for t in theirs.tensors {
            guard let o = ours.tensor(named: t.name) else { continue }
            #expect(o.type == t.type && o.ne == t.ne, "\(t.name)")
            #expect(ours.data(o).elementsEqual(theirs.data(t)), "\(variant) \(type): data of \(t.name)")
        }
        let a = try Data(contentsOf: URL(fileURLWithPath: out))
        let b = try Data(contentsOf: URL(fileURLWithPath: golden))
        #expect(a == b, "\(variant) \(type): files differ")
    }
}

/// bf16 → bf16 copies the stored bytes only when convert's round trip through f32 would keep them:
/// it quiets NaNs, so any NaN (signalling or not, either sign, in a vector body or the tail) sends
/// the tensor through the row converter.
@Suite struct BF16IdentityTests {
    @Test(arguments: [(UInt16(0x7FC0), true), (0x7F81, true), (0xFF81, true), (0xFFC1, true),
                      (0x7F80, false), (0xFF80, false), (0x3F80, false), (0x0001, false)])
    func nanDetection(_ c: (UInt16, Bool)) {
        for at in [0, 31, 32, 70] {  // first vector, its last lane, the second vector, the scalar tail
            var v = [UInt16](repeating: 0x3F80, count: 71)
            v[at] = c.0
            #expect(v.withUnsafeBytes { Converter.hasBF16NaN($0) } == c.1, "0x\(String(c.0, radix: 16)) at \(at)")
        }
    }
}

/// The forward-pass checkpoints (Fixtures/eval: one per family, transformers' configs, two of them
/// without `model_type`, which convert_hf_to_gguf then reads as plain JSON) converted to f32 have
/// the SHA-256 convert_hf_to_gguf.py's files had (Fixtures/eval/SHA256SUMS-convert_hf_to_gguf-f32).
@Suite struct EvalCheckpointConversionTests {
    static let sums: [(String, String)] = {
        let text = (try? String(contentsOfFile: fixture("eval/SHA256SUMS-convert_hf_to_gguf-f32"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { l in
            let p = l.split(separator: " ", omittingEmptySubsequences: true)
            return p.count == 2 ? (String(p[1]), String(p[0])) : nil
        }
    }()

    @Test func everyFamilyIsListed() { #expect(Self.sums.count == 10) }

    @Test(arguments: sums)
    func sameSHA256AsConvertHFToGGUF(_ c: (String, String)) throws {
        let out = tempOutput("\(c.0)-f32.gguf")
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        _ = try Converter(plan: ConversionPlan(directory: fixture("eval/\(c.0)"), outType: .f32), threads: 2).run(outfile: out)
        let data = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() == c.1, "\(c.0)")
    }
}
