import Foundation
import MappedIO
import Testing

@Suite struct FileFaultTests {
    /// A module's own fault: the protocol renders it, as every module's enum is rendered.
    enum SampleFault: FileFault {
        case bad(path: String, detail: String)
        var path: String { switch self { case .bad(let p, _): return p } }
        var fault: String { switch self { case .bad(_, let d): return d } }
    }

    @Test func rendersPathAndFaultOnOneLine() {
        #expect("\(SampleFault.bad(path: "m/config.json", detail: "missing \"vocab_size\""))" == "m/config.json: missing \"vocab_size\"")
        // a fault with no file prints the fault alone
        #expect("\(SampleFault.bad(path: "", detail: "merge: no shard reports"))" == "merge: no shard reports")
        // file contents cannot break the line: control characters escaped in path and fault
        let hostile = SampleFault.bad(path: "a\nb.gguf", detail: "key \"x\ny\": bad\r")
        #expect(!"\(hostile)".contains("\n") && !"\(hostile)".contains("\r"), "\(hostile)")
        #expect("\(hostile)" == "a\\nb.gguf: key \"x\\ny\": bad\\r")
        // a long path is shortened in the middle
        let long = SampleFault.bad(path: String(repeating: "d/", count: 100) + "model.gguf", detail: "truncated")
        #expect("\(long)".count < 100 && "\(long)".hasSuffix("model.gguf: truncated"), "\(long)")
        #expect(!SampleFault.bad(path: "x", detail: "y").isWriteFault)
    }

    @Test func ioFaultsKeepTheSystemErrorAndOnlyWritesAreWriteFaults() {
        let w = FileIOError.writeFailed(path: "out.gguf", operation: "fsync failed", errno: EIO)
        #expect(w.isWriteFault && w.writeErrno == EIO)
        #expect("\(w)" == "out.gguf: fsync failed: \(String(cString: strerror(EIO)))")
        for e in [FileIOError.notFound(path: "a"), .cannotOpen(path: "a", errno: EACCES), .readFailed(path: "a", errno: EIO),
                  .cannotMap(path: "a", errno: ENOMEM), .destinationRefused(path: "a", reason: "is an input"),
                  .alreadyBeingWritten(path: "a"), .notRegular(path: "a", what: "is a FIFO (named pipe)", refusal: "refusing to read it")] {
            #expect(!e.isWriteFault, "\(e)")
            #expect("\(e)".hasPrefix("a: "), "\(e)")
        }
        #expect("\(FileIOError.notRegular(path: "p", what: "is a FIFO (named pipe)", refusal: "refusing to read it"))"
                == "p: is a FIFO (named pipe), not a regular file; refusing to read it")
    }
}
