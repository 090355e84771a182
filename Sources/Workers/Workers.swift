import Dispatch
import Foundation

// The ground floor every parallel loop stands on: one pointer wrapper for handing memory to worker
// threads, one work queue, one owned buffer.

/// A pointer (or any value) handed to worker threads that touch disjoint parts of what it points
/// at, while its owner outlives them (`concurrentPerform` returns only when every worker is done).
public struct SendablePointer<P>: @unchecked Sendable {
    public let p: P
    public init(_ p: P) { self.p = p }
}

/// Hands out task indices 0..<n to worker threads, for work items of uneven cost; `stop()` makes
/// every later `next()` return nil (a worker failed).
public final class ChunkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var next_ = 0
    private var stopped = false
    private let n: Int
    public init(_ n: Int) { self.n = n }

    public func next() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard !stopped, next_ < n else { return nil }
        next_ += 1
        return next_ - 1
    }

    public func stop() {
        lock.lock(); defer { lock.unlock() }
        stopped = true
    }
}

/// The first error any worker reports.
public final class FirstError<Failure: Error>: @unchecked Sendable {
    private let lock = NSLock()
    private var error_: Failure?
    public init() {}

    public func record(_ e: Failure) {
        lock.lock(); defer { lock.unlock() }
        if error_ == nil { error_ = e }
    }

    public var error: Failure? {
        lock.lock(); defer { lock.unlock() }
        return error_
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

/// Owned, 64-byte aligned memory a weight view can point into; kept alive as a model's storage.
public final class OwnedBuffer: @unchecked Sendable {
    public let raw: UnsafeMutableRawPointer
    public let byteCount: Int

    public init(byteCount: Int) {
        self.byteCount = byteCount
        raw = .allocate(byteCount: max(byteCount, 1), alignment: 64)
    }

    /// Room for `count` floats.
    public convenience init(floats count: Int) { self.init(byteCount: count * MemoryLayout<Float>.stride) }

    public convenience init(_ v: [Float]) {
        self.init(floats: v.count)
        v.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    public var floats: UnsafeMutablePointer<Float> { raw.assumingMemoryBound(to: Float.self) }

    deinit { raw.deallocate() }
}
