// tokenizer-check: checks a real model's tokenizer against ids recorded from llama.cpp's llama-tokenize
// (Fixtures/tokenizer/make_tokenizer_fixtures.py), and times tokenization in this (release) build.
//
//   tokenizer-check MODEL.gguf|MODEL_DIR EXPECTED.json [--wiki-eval FILE] [--max-seconds S]
//   tokenizer-check MODEL.gguf --encode FILE [--no-parse-special] [--no-bos]
//
// The second form prints FILE's ids as llama-tokenize --ids does (for comparisons by hand); MODEL may
// also be a Hugging Face model directory.
//
// A GGUF is compared with llama-tokenize's ids (with and without parse special); a Hugging Face
// directory (tokenizer.json) with tokenizers' ids. The texts are Fixtures/tokenizer/cases.json and wiki-eval-20k.txt beside EXPECTED's directory. When
// EXPECTED records the ids of the whole wiki-eval.txt (count and SHA-256) and FILE is that text
// (same SHA-256), its ids are checked too; FILE is also the timing text (else the 20k text 25 times).
// Exit status 1 on any difference, or if the timing text takes more than S seconds (default 2).
import Crypto
import Foundation
import Tokenizer

func die(_ m: String) -> Never {
    FileHandle.standardError.write(Data("tokenizer-check: \(m)\n".utf8))
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
var wikiPath: String? = nil
var maxSeconds = 2.0
var positional: [String] = []
var encodePath: String? = nil
var parseSpecial = true
var addBOS = true
while !args.isEmpty {
    let a = args.removeFirst()
    switch a {
    case "--encode":
        guard !args.isEmpty else { die("--encode needs a path") }
        encodePath = args.removeFirst()
    case "--no-parse-special": parseSpecial = false
    case "--no-bos": addBOS = false
    case "--wiki-eval":
        guard !args.isEmpty else { die("--wiki-eval needs a path") }
        wikiPath = args.removeFirst()
    case "--max-seconds":
        guard !args.isEmpty, let s = Double(args.removeFirst()) else { die("--max-seconds needs a number") }
        maxSeconds = s
    default: positional.append(a)
    }
}
if let encodePath, positional.count == 1 {
    guard let d = FileManager.default.contents(atPath: encodePath) else { die("\(encodePath): cannot read") }
    do {
        var isDir: ObjCBool = false
        let t = FileManager.default.fileExists(atPath: positional[0], isDirectory: &isDir) && isDir.boolValue
            ? try Tokenizer(directory: positional[0]) : try Tokenizer(ggufPath: positional[0])
        let ids = t.encode(bytes: [UInt8](d), addSpecial: addBOS && t.addBOS, parseSpecial: parseSpecial)
        print("[" + ids.map(String.init).joined(separator: ", ") + "]")
        exit(0)
    } catch { die("\(error)") }
}
guard positional.count == 2 else { die("usage: tokenizer-check MODEL.gguf EXPECTED.json [--wiki-eval FILE] [--max-seconds S]") }
let (modelPath, expectedPath) = (positional[0], positional[1])
let fixtureDir = ((expectedPath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent

func readJSON(_ path: String) -> Any {
    guard let d = FileManager.default.contents(atPath: path), let o = try? JSONSerialization.jsonObject(with: d) else {
        die("\(path): cannot read JSON")
    }
    return o
}

var isDirectory: ObjCBool = false
let isDir = FileManager.default.fileExists(atPath: modelPath, isDirectory: &isDirectory) && isDirectory.boolValue
let tok: Tokenizer
let loadStart = DispatchTime.now().uptimeNanoseconds
do { tok = isDir ? try Tokenizer(directory: modelPath) : try Tokenizer(ggufPath: modelPath) } catch { die("\(error)") }
let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9
print(String(format: "tokenizer-check: %@: %@/%@, %d tokens, add_bos %@, loaded in %.3f s", modelPath, tok.kind.rawValue,
             tok.preTokenizerName, tok.vocabularySize, tok.addBOS ? "true" : "false", loadSeconds))

guard let expected = readJSON(expectedPath) as? [String: Any], let expCases = expected["cases"] as? [String: [String: [Int]]] else {
    die("\(expectedPath): no cases")
}
guard let caseList = readJSON(fixtureDir + "/cases.json") as? [[String: String]] else { die("\(fixtureDir)/cases.json: not a list") }
var texts = caseList.map { ($0["name"] ?? "", $0["text"] ?? "") }
guard let wiki20k = FileManager.default.contents(atPath: fixtureDir + "/wiki-eval-20k.txt") else { die("no \(fixtureDir)/wiki-eval-20k.txt") }
texts.append(("wiki-eval-20k", String(decoding: wiki20k, as: UTF8.self)))

var failures = 0
var checked = 0
for (name, text) in texts {
    guard let e = expCases[name], let llama = e["llama"] else { die("\(expectedPath): no ids for \"\(name)\"") }
    if isDir {
        // A tokenizer.json directory: Hugging Face tokenizers' encode(text).ids.
        guard expected["hf_checked"] as? Bool == true else { die("\(expectedPath): no tokenizers ids recorded") }
        let want = (e["hf"] ?? llama).map(Int32.init)
        let got = tok.encode(text, addSpecial: true, parseSpecial: true)
        checked += 1
        if got != want { failures += 1; print("DIFFERS: \(name): got \(got.count) ids, want \(want.count)") }
        continue
    }
    let want = llama.map(Int32.init)
    let wantNP = (e["llama_noparse"] ?? llama).map(Int32.init)
    let got = tok.encode(text, addSpecial: tok.addBOS, parseSpecial: true)
    let gotNP = tok.encode(text, addSpecial: tok.addBOS, parseSpecial: false)
    checked += 2
    if got != want { failures += 1; print("DIFFERS: \(name) (parse special): got \(got.count) ids, want \(want.count)") }
    if gotNP != wantNP { failures += 1; print("DIFFERS: \(name) (no parse special): got \(gotNP.count) ids, want \(wantNP.count)") }
}
print("tokenizer-check: \(checked - failures)/\(checked) encodings equal to \(isDir ? "tokenizers" : "llama-tokenize") (\(texts.count) texts)")

/// SHA-256, hex: the recorded digest of the wiki-eval ids.
func sha256(_ data: [UInt8]) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

// The whole evaluation text: ids checked by count and digest when the file is the recorded one.
var benchText: [UInt8]
if let wikiPath {
    guard let d = FileManager.default.contents(atPath: wikiPath) else { die("\(wikiPath): cannot read") }
    benchText = [UInt8](d)
    if let we = expected["wiki_eval"] as? [String: [String: Any]] {
        if sha256(benchText) == we["llama_noparse"]?["sha256_text"] as? String {
            let modes = isDir ? [("hf", true)] : [("llama_noparse", false), ("llama", true)]
            for (mode, parse) in modes {
                guard let rec = we[mode], let count = rec["count"] as? Int, let digest = rec["sha256_ids_int32le"] as? String else { continue }
                let ids = tok.encode(bytes: benchText, addSpecial: isDir || tok.addBOS, parseSpecial: parse)
                var blob: [UInt8] = []
                blob.reserveCapacity(ids.count * 4)
                for i in ids { withUnsafeBytes(of: i.littleEndian) { blob.append(contentsOf: $0) } }
                let ok = ids.count == count && sha256(blob) == digest
                if !ok { failures += 1 }
                print("tokenizer-check: \(wikiPath) (\(mode)): \(ids.count) ids, \(ok ? "equal to" : "DIFFERS from") \(isDir ? "tokenizers" : "llama-tokenize") (\(count) ids)")
            }
        } else {
            print("tokenizer-check: \(wikiPath) is not the recorded wiki-eval.txt (SHA-256 differs): ids not checked, timing only")
        }
    }
} else {
    benchText = []
    for _ in 0..<25 { benchText.append(contentsOf: wiki20k) }
}

// Timing: best of 3 (a fresh word cache each call, as every encode has).
var best = Double.infinity
var n = 0
for _ in 0..<3 {
    let t0 = DispatchTime.now().uptimeNanoseconds
    n = tok.encode(bytes: benchText, addSpecial: true, parseSpecial: false).count
    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
}
print(String(format: "tokenizer-check: %d bytes -> %d tokens in %.3f s (%.1f MB/s)", benchText.count, n, best, Double(benchText.count) / best / 1e6))
if best > maxSeconds {
    print("tokenizer-check: TOO SLOW (limit \(maxSeconds) s)")
    failures += 1
}
exit(failures == 0 ? 0 : 1)
