import GGMLCore
import GGUFWriter
import MappedIO

/// Owned f32 memory a `Weight` can view (pass it as `keepAlive`/storage so it outlives the model).
public final class FloatStorage: @unchecked Sendable {
    public let p: UnsafeMutablePointer<Float>
    public init(count: Int) { p = .allocate(capacity: max(count, 1)) }
    public convenience init(_ v: [Float]) {
        self.init(count: v.count)
        p.initialize(from: v, count: v.count)
    }
    deinit { p.deallocate() }
}
