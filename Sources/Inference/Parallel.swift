import Dispatch
import Foundation

/// Hands out task indices to worker threads, for work items of uneven cost.
public final class ChunkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var next_ = 0
    private let n: Int
    public init(_ n: Int) { self.n = n }
    public func next() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard next_ < n else { return nil }
        next_ += 1
        return next_ - 1
    }
}

public enum Parallel {
    /// `body(i)` for every i in 0..<n, in `threads` contiguous ranges run at once: for rows or
    /// positions of even cost whose results land in disjoint slots. Returns when all are done.
    public static func forEach(_ n: Int, threads: Int, _ body: (Int) -> Void) {
        let t = max(1, min(threads, n))
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let b = body
            DispatchQueue.concurrentPerform(iterations: t) { i in
                for j in (i * n / t)..<((i + 1) * n / t) { b(j) }
            }
        }
    }
}
