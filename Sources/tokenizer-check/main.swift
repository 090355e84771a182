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

/// SHA-256 (FIPS 180-4), for the recorded digest of the wiki-eval ids.
func sha256(_ data: [UInt8]) -> String {
    let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
        0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
        0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
        0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
        0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]
    var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    var msg = data
    msg.append(0x80)
    while msg.count % 64 != 56 { msg.append(0) }
    let bits = UInt64(data.count) * 8
    for i in (0..<8).reversed() { msg.append(UInt8(truncatingIfNeeded: bits >> (UInt64(i) * 8))) }
    @inline(__always) func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
    var w = [UInt32](repeating: 0, count: 64)
    for chunk in stride(from: 0, to: msg.count, by: 64) {
        for i in 0..<16 {
            w[i] = UInt32(msg[chunk + 4 * i]) << 24 | UInt32(msg[chunk + 4 * i + 1]) << 16 | UInt32(msg[chunk + 4 * i + 2]) << 8 | UInt32(msg[chunk + 4 * i + 3])
        }
        for i in 16..<64 {
            let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
        for i in 0..<64 {
            let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
            let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ maj
            (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
    }
    return h.map { let s = String($0, radix: 16); return String(repeating: "0", count: 8 - s.count) + s }.joined()
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
