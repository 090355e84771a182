import FuzzTargets

#if FUZZING
// Built by Benchmarks/fuzz.sh with -sanitize=fuzzer,address: libFuzzer's main calls this.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = fuzzGGUF(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerMutate")
func libFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

// Half the mutations are libFuzzer's own, half overwrite one numeric GGUF field (GGUFMutator):
// hyper-parameters, array lengths and tensor shapes that byte flips rarely reach intact.
@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzCustomMutator(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    if seed % 2 == 0, GGUFMutator.mutate(UnsafeMutableRawBufferPointer(start: data, count: maxSize), size: size, seed: seed) {
        return size
    }
    return libFuzzerMutate(data, size, maxSize)
}
#else
// The ordinary build: replays the files given as arguments (a crasher, a corpus) and prints each outcome.
@main struct Replay {
    static func main() { replayFiles(target: "gguf", fuzzTargets["gguf"]!) }
}
#endif
