import Calibration
import MappedIO

/// An importance-matrix file, GGUF or legacy `.dat` (the reader tells them by the magic), with
/// every entry's weights read.
@Sendable public func fuzzImatrix(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
    Scratch.shared.with([("input.imatrix", data)]) { dir in
        do {
            let m = try ImatrixReader.read(path: dir + "/input.imatrix")
            blackHole(m.allQuantWeights().reduce(0) { $0 + $1.value.count })
            return .accepted
        } catch {
            return rejected(error)
        }
    }
}
