import Conversion
import Foundation
import GGUFWriter
import MappedIO
import SafetensorsReader
import Tokenizer

/// A GGUF file: the header, metadata and tensor table (GGUFFile), every tensor's bytes touched,
/// and the vocabulary in its metadata loaded and run on a short text.
@Sendable public func fuzzGGUF(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
    Scratch.shared.with([("input.gguf", data)]) { dir in
        do {
            let f = try GGUFFile(path: dir + "/input.gguf")
            var sum = 0
            for t in f.tensors where t.byteCount > 0 {
                let b = f.data(t)
                sum &+= Int(b[0]) &+ Int(b[b.count - 1])
            }
            for (k, v) in f.metadata { sum &+= k.utf8.count &+ (v.intValue ?? 0) &+ (v.stringValue?.utf8.count ?? 0) }
            if f["tokenizer.ggml.model"] != nil {
                let tok = try Tokenizer(gguf: f)
                exerciseTokenizer(tok)
            }
            blackHole(sum)
            return .accepted
        } catch {
            return rejected(error)
        }
    }
}

/// One safetensors file: the JSON header and the byte ranges it claims, each touched.
@Sendable public func fuzzSafetensors(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
    checkpointFile(data, name: "model.safetensors", open: SafetensorsFile.init(path:))
}

/// One PyTorch .bin file (torch.save's zip + pickle): the zip directory, the restricted
/// unpickling of the state dict, and the byte ranges of every tensor, each touched.
@Sendable public func fuzzTorch(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
    checkpointFile(data, name: "pytorch_model.bin", open: TorchFile.init(path:))
}

/// Opens `data` as the checkpoint file `name` and touches the first and last byte of every tensor.
func checkpointFile(_ data: UnsafeRawBufferPointer, name: String, open: (String) throws -> any CheckpointFile) -> FuzzOutcome {
    Scratch.shared.with([(name, data)]) { dir in
        do {
            let f = try open(dir + "/" + name)
            var sum = 0
            for t in f.tensors where !t.range.isEmpty {
                let b = f.data(t)
                sum &+= Int(b[0]) &+ Int(b[b.count - 1]) &+ t.elementCount &+ t.shape.count
            }
            blackHole(sum + f.metadata.count)
            return .accepted
        } catch {
            return rejected(error)
        }
    }
}

/// The files a Hugging Face checkpoint directory may hold (Container part names).
public let checkpointFiles: Set<String> = [
    "config.json", "model.safetensors", "model.safetensors.index.json",
    "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
    "pytorch_model.bin", "pytorch_model.bin.index.json",
    "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "added_tokens.json",
    "special_tokens_map.json", "generation_config.json", "README.md", "chat_template.jinja",
]

/// A checkpoint directory (a Container of `checkpointFiles`): the conversion plan — config.json,
/// the safetensors shards and their index, tokenizer metadata, naming — and every planned tensor's
/// source bytes touched, as `edgequant convert` reads them before writing.
@Sendable public func fuzzCheckpoint(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
    Scratch.shared.with(Container.parts(data, allowed: checkpointFiles)) { dir in
        do {
            let plan = try ConversionPlan(directory: dir, outType: .f32)
            var sum = plan.metadata.count
            for t in plan.tensors {
                if case .checkpoint(let file, let tensor, _) = t.source, !tensor.range.isEmpty {
                    let b = file.data(tensor)
                    sum &+= Int(b[0]) &+ Int(b[b.count - 1])
                }
            }
            blackHole(sum)
            return .accepted
        } catch {
            return rejected(error)
        }
    }
}

/// The files `Tokenizer(directory:)` reads, a GGUF vocabulary, and the text to encode (`text`).
public let tokenizerFiles: Set<String> = [
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "added_tokens.json", "config.json",
    "special_tokens_map.json", "vocab.gguf", "text",
]

/// A tokenizer (a Container): `vocab.gguf` if present, else the directory's tokenizer.json /
/// tokenizer.model with tokenizer_config.json and added_tokens.json; then `text` (or a fixed
/// sample) encoded with and without special-token parsing, and decoded back.
@Sendable public func fuzzTokenizer(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
    let parts = Container.parts(data, allowed: tokenizerFiles)
    let text = parts.first { $0.name == "text" }.map { Array($0.bytes.prefix(4096)) }
    return Scratch.shared.with(parts.filter { $0.name != "text" }) { dir in
        do {
            let tok = parts.contains { $0.name == "vocab.gguf" }
                ? try Tokenizer(ggufPath: dir + "/vocab.gguf") : try Tokenizer(directory: dir)
            exerciseTokenizer(tok, text: text)
            return .accepted
        } catch {
            return rejected(error)
        }
    }
}

let sampleText = Array("Hello world! <s> 123 4567 ça  va? 日本語 \u{1F600}\n\t<|endoftext|> don't I'm".utf8)

func exerciseTokenizer(_ tok: Tokenizer, text: [UInt8]? = nil) {
    let bytes = text ?? sampleText
    for parseSpecial in [false, true] {
        let ids = tok.encode(bytes: bytes, addSpecial: true, parseSpecial: parseSpecial)
        blackHole(tok.decodeBytes(ids).count)
        for id in ids.prefix(8) { blackHole(tok.piece(id, special: true).count) }
    }
}

@inline(never) func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }
