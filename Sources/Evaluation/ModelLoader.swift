import Conversion
import Families
import Foundation
import GGMLCore
import GGUFWriter
import Inference
import MappedIO
import Tokenizer
import Workers

/// Opens what `perplexity`/`generate` are given: a GGUF file of any type we read, or a Hugging Face
/// checkpoint directory — the unquantized reference — whose tensors are used where they lie in the
/// mmap (bf16/f16/f32), with llama q/k rows permuted into copies as the converter would.
public enum ModelLoader {
    public static func load(_ path: String) throws -> Model {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw EvaluationError.noSuchModel(path: path)
        }
        if !isDir.boolValue { return try Model(gguf: GGUFFile.model(path)) }
        let plan = try ConversionPlan(directory: path, outType: .f32)
        var tensors: [String: Weight] = [:]
        var storage: [AnyObject] = [plan.checkpoint]
        for t in plan.tensors {
            let rows = t.ne.dropFirst().reduce(1, *)
            switch t.source {
            case .checkpoint(let file, let tensor, let permute):
                let type = t.sourceType
                // a trimmed tensor (Gemma 3's embedding) is its first rows
                let src = UnsafeRawBufferPointer(rebasing: file.data(tensor).prefix(t.sourceByteCount))
                if let heads = permute {
                    let buf = OwnedBuffer(byteCount: src.count)
                    let rowBytes = src.count / rows
                    let order = RowPermutation(rows: rows, heads: heads)
                    for r in 0..<rows {
                        buf.raw.advanced(by: r * rowBytes).copyMemory(from: src.baseAddress! + order[r] * rowBytes, byteCount: rowBytes)
                    }
                    storage.append(buf)
                    tensors[t.name] = Weight(type: type, rows: rows, cols: t.ne[0], data: UnsafeRawPointer(buf.raw), ne: t.ne)
                } else {
                    tensors[t.name] = Weight(type: type, rows: rows, cols: t.ne[0], data: src.baseAddress!, ne: t.ne)
                }
            case .generated(let values):
                let buf = OwnedBuffer(values)
                storage.append(buf)
                tensors[t.name] = Weight(type: .f32, rows: rows, cols: t.ne[0], data: UnsafeRawPointer(buf.raw), ne: t.ne)
            case .gguf(let f, let info):
                tensors[t.name] = Weight(type: info.type, rows: rows, cols: t.ne[0], data: f.data(info).baseAddress!, ne: t.ne)
            }
        }
        let meta = Dictionary(plan.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        return try Model(path: path, metadata: meta, tensors: tensors, storage: storage, family: plan.family)
    }
}

extension ModelLoader {
    /// The tokenizer of a GGUF file (its tokenizer.ggml.* metadata) or a checkpoint directory (the
    /// metadata its conversion writes, which `load` put into the model: the vocabulary the GGUF
    /// would hold, however the family's converter builds it),
    /// refused unless its vocabulary is the model's embedding (llama.cpp sizes `token_embd` from the
    /// vocabulary, so a mismatch is a broken file, and an id past the embedding a read past the weights).
    public static func tokenizer(_ path: String, for model: Model) throws -> Tokenizer {
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        let t = isDir.boolValue ? try Tokenizer(metadata: model.metadata.filter { $0.key.hasPrefix("tokenizer.") }, path: path)
                                : try Tokenizer(ggufPath: path)
        guard t.vocabularySize == model.hparams.nVocab else {
            throw EvaluationError.vocabularyMismatch(path: path, tokens: t.vocabularySize, rows: model.hparams.nVocab)
        }
        return t
    }

    /// Tokens of an evaluation text as llama-perplexity gets them: the file as its -f reads it
    /// (trailing newline dropped, escapes processed), special tokens added, not parsed.
    public static func evaluationTokens(textFile: String, tokenizer: Tokenizer) throws -> [Int32] {
        let bytes = try TextFile.read(textFile)
        let prompt = Tokenizer.llamaCppFilePrompt(bytes)
        return prompt.withUnsafeBytes { tokenizer.encode(utf8: $0, addSpecial: true, parseSpecial: false) }
    }
}
