import FuzzTargets

#if FUZZING
// Built by Benchmarks/fuzz.sh with -sanitize=fuzzer,address: libFuzzer's main calls this.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = fuzzTorch(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
// The ordinary build: replays the files given as arguments (a crasher, a corpus) and prints each outcome.
@main struct Replay {
    static func main() { replayFiles(target: "torch", fuzzTargets["torch"]!) }
}
#endif
