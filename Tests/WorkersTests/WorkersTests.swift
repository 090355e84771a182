import Dispatch
import Foundation
import Testing
import Workers

@Suite struct WorkersTests {
    /// Every index once, whatever the interleaving; none after stop().
    @Test func chunkCounterHandsOutEachIndexOnce() {
        let counter = ChunkCounter(10_000)
        let seen = OwnedBuffer(byteCount: 10_000)
        seen.raw.initializeMemory(as: UInt8.self, repeating: 0, count: 10_000)
        let s = SendablePointer(seen.raw.assumingMemoryBound(to: UInt8.self))
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            while let i = counter.next() { s.p[i] += 1 }
        }
        #expect((0..<10_000).allSatisfy { s.p[$0] == 1 })
        let c2 = ChunkCounter(5)
        #expect(c2.next() == 0)
        c2.stop()
        #expect(c2.next() == nil)
    }

    @Test func firstErrorKeepsTheFirst() {
        struct E: Error, Equatable { let n: Int }
        let f = FirstError<E>()
        #expect(f.error == nil)
        f.record(E(n: 1))
        f.record(E(n: 2))
        #expect(f.error == E(n: 1))
    }

    @Test func ownedBufferIsAlignedAndHoldsItsFloats() {
        let b = OwnedBuffer([1, 2.5, -3])
        #expect(Int(bitPattern: b.raw) % 64 == 0)
        #expect(b.byteCount == 12)
        #expect(Array(UnsafeBufferPointer(start: b.floats, count: 3)) == [1, 2.5, -3])
        #expect(OwnedBuffer(byteCount: 0).byteCount == 0)
    }

    @Test func parallelForEachCoversEveryIndex() {
        let out = OwnedBuffer(floats: 1000)
        let o = SendablePointer(out.floats)
        Parallel.forEach(1000, threads: 3) { i in o.p[i] = Float(i) }
        #expect((0..<1000).allSatisfy { out.floats[$0] == Float($0) })
    }
}
