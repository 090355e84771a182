import Foundation
import ModelMapping
import StrictJSON
import Testing

@Suite struct PreTokenizerTests {
    func tj(pre: String, normalizer: String = "null") throws -> JSONObject {
        try #require(JSONParser.parse("{\"normalizer\": \(normalizer), \"pre_tokenizer\": \(pre)}").objectValue)
    }

    static let byteLevel = #"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}"#
    static let byteLevelNoRegex = #"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}"#
    static func split(_ re: String) -> String {
        let escaped = JSONValue.string(re).serialized()
        return "{\"type\":\"Split\",\"pattern\":{\"Regex\":\(escaped)},\"behavior\":\"Isolated\",\"invert\":false}"
    }

    @Test func smollmStarcoderRefactShareAPipeline() throws {
        let t = try tj(pre: "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},\(Self.byteLevel)]}")
        #expect(PreTokenizerDetection.detect(t, tokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<empty_output>"]) == "smollm")
        #expect(PreTokenizerDetection.detect(t, tokens: ["<|endoftext|>", "<fim_prefix>", "<fim_middle>"]) == "starcoder")
        #expect(PreTokenizerDetection.detect(t, tokens: ["<|endoftext|>", "<fim_prefix>", "<empty_output>"]) == "refact")
        #expect(PreTokenizerDetection.detect(t, tokens: ["a", "b"]) == nil)
    }

    @Test func llama3AndQwen2() throws {
        let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let qwen2 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let l = try tj(pre: "{\"type\":\"Sequence\",\"pretokenizers\":[\(Self.split(llama3)),\(Self.byteLevelNoRegex)]}")
        #expect(PreTokenizerDetection.detect(l, tokens: []) == "llama-bpe")
        let q = try tj(pre: "{\"type\":\"Sequence\",\"pretokenizers\":[\(Self.split(qwen2)),\(Self.byteLevelNoRegex)]}", normalizer: #"{"type":"NFC"}"#)
        #expect(PreTokenizerDetection.detect(q, tokens: []) == "qwen2")
        // Qwen2's regex without its NFC normalizer is not Qwen2's tokenizer.
        let q2 = try tj(pre: "{\"type\":\"Sequence\",\"pretokenizers\":[\(Self.split(qwen2)),\(Self.byteLevelNoRegex)]}")
        #expect(PreTokenizerDetection.detect(q2, tokens: []) == nil)
        #expect(PreTokenizerDetection.detect(try tj(pre: Self.byteLevel), tokens: []) == "gpt-2")
        #expect(PreTokenizerDetection.detect(try tj(pre: Self.split("\\s+")), tokens: []) == nil)
        #expect(PreTokenizerDetection.describe(try tj(pre: Self.split("\\s+"))) == "Split(custom,Isolated)")
    }

    @Test func realSmolLM2TokenizerStructure() throws {
        // The tokenizer.json layout SmolLM2 ships (also what scripts/smollm2-checkpoint.py writes).
        let t = try tj(pre: "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},\(Self.byteLevel)]}")
        #expect(PreTokenizerDetection.describe(t) == "Digits(individual)+ByteLevel(regex)")
    }
}

@Suite struct SentencePieceTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures").path

    @Test func readsFixtureModel() throws {
        let m = try SentencePieceModel(path: Self.fixtures + "/checkpoints/llama-tied/tokenizer.model")
        #expect(m.pieces.count > 259)
        #expect(m.pieces[0].type == .unknown)
        #expect(m.pieces.contains { $0.piece == "<0x41>" && $0.type == .byte })
    }

    @Test func refusesGarbage() throws {
        let bytes: [UInt8] = [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]
        #expect(throws: (any Error).self) {
            try bytes.withUnsafeBytes { try SentencePieceModel(bytes: $0, path: "x.model") }
        }
        let empty: [UInt8] = [0x10, 0x01]
        #expect(throws: (any Error).self) {
            try empty.withUnsafeBytes { try SentencePieceModel(bytes: $0, path: "x.model") }
        }
    }
}
