import FuzzTargets

#if FUZZING
// Built by Benchmarks/fuzz.sh with -sanitize=fuzzer,address: libFuzzer's main calls this.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = fuzzModel(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

// the GGUF-aware mutator (GGUFMutator.customMutator); libFuzzer finds it by this name in each binary
@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzCustomMutator(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    GGUFMutator.customMutator(data, size, maxSize, seed)
}
#else
// The ordinary build: replays the files given as arguments (a crasher, a corpus) and prints each outcome.
@main struct Replay {
    static func main() { replayFiles(target: "model", fuzzTargets["model"]!) }
}
#endif
