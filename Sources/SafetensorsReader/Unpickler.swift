import MappedIO

/// The globals a state dict pickled by torch.save may name. They are modelled as data: REDUCE of
/// one of them builds a description (an empty OrderedDict, a tensor view of a storage), never a
/// call, and any other global is refused where it appears, before anything could use it.
enum TorchGlobal: Equatable {
    case orderedDict
    case rebuildTensorV2
    /// Written for dtypes that have no legacy storage class (float8, uint16, …), with an
    /// UntypedStorage and the dtype as an extra argument.
    case rebuildTensorV3
    case rebuildParameter
    /// A legacy typed storage class (torch.FloatStorage, …) as the persistent id names it.
    case storageType(SafetensorsDType, name: String)
    case untypedStorage
    /// A torch.dtype, the extra argument of _rebuild_tensor_v3.
    case dtype(SafetensorsDType, name: String)

    static let storageTypes: [String: SafetensorsDType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]
    static let dtypes: [String: SafetensorsDType] = [
        "float32": .f32, "float16": .f16, "bfloat16": .bf16, "float64": .f64,
        "int64": .i64, "int32": .i32, "int16": .i16, "int8": .i8, "uint8": .u8, "bool": .bool,
        "uint16": .u16, "uint32": .u32, "uint64": .u64,
        "float8_e4m3fn": .f8e4m3, "float8_e5m2": .f8e5m2, "float8_e8m0fnu": .f8e8m0,
    ]

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor_v3"): self = .rebuildTensorV3
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch.storage", "UntypedStorage"): self = .untypedStorage
        case ("torch", _):
            if let d = Self.storageTypes[name] {
                self = .storageType(d, name: name)
            } else if let d = Self.dtypes[name] {
                self = .dtype(d, name: name)
            } else {
                return nil
            }
        default: return nil
        }
    }

    var qualifiedName: String {
        switch self {
        case .orderedDict: "collections.OrderedDict"
        case .rebuildTensorV2: "torch._utils._rebuild_tensor_v2"
        case .rebuildTensorV3: "torch._utils._rebuild_tensor_v3"
        case .rebuildParameter: "torch._utils._rebuild_parameter"
        case .storageType(_, let n): "torch.\(n)"
        case .untypedStorage: "torch.storage.UntypedStorage"
        case .dtype(_, let n): "torch.\(n)"
        }
    }
}

/// What `persistent_load` receives for a storage: ('storage', storage_type, key, location, numel).
struct TorchStorage: Equatable {
    let key: String
    /// nil for an UntypedStorage, whose numel counts bytes.
    let dtype: SafetensorsDType?
    let numel: Int

    var elementSize: Int { dtype.map { $0.bits / 8 } ?? 1 }
    var typeName: String { dtype.map { "\($0.rawValue) storage" } ?? "UntypedStorage" }
}

/// The arguments of `_rebuild_tensor_v2`/`_v3`, kept unvalidated against the storage until the
/// state-dict key naming the tensor is known.
struct TorchTensorRecord {
    let storage: TorchStorage
    let dtype: SafetensorsDType
    let storageOffset: Int
    let size: [Int]
    let stride: [Int]
    /// A `conj`/`neg` bit set in the tensor metadata: the stored bytes are not the values.
    let lazyBit: String?
}

enum PickleKey: Hashable {
    case string(String), int(Int)

    var text: String {
        switch self {
        case .string(let s): s
        case .int(let i): String(i)
        }
    }
}

/// Lists and dicts are shared through the memo and filled after creation, hence reference types.
/// Once placed inside another container they are frozen: the pickler always fills a container
/// before handing it to its parent, and refusing later mutation rules out cycles and keeps every
/// container's depth fixed once it is measured.
final class PickleList {
    var items: [PickleValue] = []
    var frozen = false
    var depth = 1
}

final class PickleDict {
    let ordered: Bool
    private(set) var keys: [PickleKey] = []
    private(set) var values: [PickleValue] = []
    private var index: [PickleKey: Int] = [:]
    var frozen = false
    var depth = 1
    /// The first key set twice; Python keeps the first position with the last value, which for a
    /// state dict would silently drop a tensor.
    private(set) var duplicate: PickleKey?

    init(ordered: Bool) { self.ordered = ordered }

    var count: Int { keys.count }

    func set(_ key: PickleKey, _ value: PickleValue) {
        if let i = index[key] {
            values[i] = value
            if duplicate == nil { duplicate = key }
        } else {
            index[key] = keys.count
            keys.append(key)
            values.append(value)
        }
    }
}

enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case tuple([PickleValue], depth: Int)
    case list(PickleList)
    case dict(PickleDict)
    case global(TorchGlobal)
    case storage(TorchStorage)
    case tensor(TorchTensorRecord)

    /// Python's name for the type, for messages.
    var typeName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int: "int"
        case .float: "float"
        case .string: "str"
        case .tuple: "tuple"
        case .list: "list"
        case .dict(let d): d.ordered ? "OrderedDict" : "dict"
        case .global(let g): g.qualifiedName
        case .storage(let s): s.typeName
        case .tensor: "Tensor"
        }
    }

    var depth: Int {
        switch self {
        case .tuple(_, let d): d
        case .list(let l): l.depth
        case .dict(let d): d.depth
        case .storage, .tensor: 1
        case .none, .bool, .int, .float, .string, .global: 0
        }
    }
}

/// A pickle interpreter restricted to what torch.save writes for a state dict (protocol 2).
///
/// It mirrors torch's `_weights_only_unpickler` in what it refuses, and goes further: only the
/// opcodes and globals a state dict of plain tensors needs are known, every callable is modelled
/// as data, and the memo, stack, nesting and opcode count are bounded so that a hostile pickle
/// cannot make us allocate without limit.
struct Unpickler {
    /// A state dict of 200k tensors pickles to ~20 MB; the cap bounds the strings we copy.
    static let maxPickleSize = 128 << 20
    /// Each opcode creates at most one value, so this bounds what the stack, memo and containers
    /// can hold together (torch writes ~25 opcodes per tensor).
    static let maxOpcodes = 8_000_000
    static let maxMemo = 4_000_000
    /// torch nests tuples three deep; the cap keeps deallocation and any walk of a value shallow.
    static let maxNesting = 64
    static let maxMarks = 64
    static let maxGlobalLine = 256

    let bytes: UnsafeRawBufferPointer
    let path: String
    private var pos = 0
    private var stack: [PickleValue] = []
    /// Stack heights at each open MARK; nothing below the innermost one may be popped.
    private var marks: [Int] = []
    private var memo: [UInt32: PickleValue] = [:]
    private var storages: [String: TorchStorage] = [:]
    /// Where the current opcode starts, for messages.
    private var at = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    private func fail(_ m: String) -> TorchError { .badPickle(path: path, detail: m) }

    mutating func load() throws(TorchError) -> PickleValue {
        guard bytes.count <= Self.maxPickleSize else {
            throw fail("\(bytes.count) bytes exceed the limit of \(Self.maxPickleSize) for a state dict's pickle")
        }
        var opcodes = 0
        while true {
            at = pos
            guard pos < bytes.count else { throw fail("truncated: no STOP opcode before the end (\(bytes.count) bytes)") }
            opcodes += 1
            guard opcodes <= Self.maxOpcodes else { throw fail("more than \(Self.maxOpcodes) opcodes") }
            let op = bytes[pos]
            pos += 1
            switch op {
            case 0x80: // PROTO
                let v = try read(1)[0]
                guard at == 0, (2...5).contains(v) else {
                    throw fail(at == 0 ? "pickle protocol \(v) is not supported" : "PROTO at byte \(at) is not at the start")
                }
            case 0x95: // FRAME: framing only groups opcodes for buffered reads; the bytes are already mapped.
                let n = try uint(8)
                guard n <= UInt64(bytes.count - pos) else { throw fail("FRAME at byte \(at) of \(n) bytes runs past the end") }
            case 0x7d: try push(.dict(PickleDict(ordered: false))) // EMPTY_DICT
            case 0x5d: try push(.list(PickleList())) // EMPTY_LIST
            case 0x29: try push(.tuple([], depth: 1)) // EMPTY_TUPLE
            case 0x28: // MARK
                guard marks.count < Self.maxMarks else { throw fail("MARK nested more than \(Self.maxMarks) deep at byte \(at)") }
                marks.append(stack.count)
            case 0x74: try push(tuple(try popMark())) // TUPLE
            case 0x85: // TUPLE1
                let a = try pop()
                try push(tuple([a]))
            case 0x86: // TUPLE2
                let b = try pop(), a = try pop()
                try push(tuple([a, b]))
            case 0x87: // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                try push(tuple([a, b, c]))
            case 0x71: try put(UInt32(try read(1)[0])) // BINPUT
            case 0x72: try put(UInt32(try uint(4))) // LONG_BINPUT
            case 0x68: try get(UInt32(try read(1)[0])) // BINGET
            case 0x6a: try get(UInt32(try uint(4))) // LONG_BINGET
            case 0x4a: try push(.int(Int(Int32(truncatingIfNeeded: try uint(4))))) // BININT
            case 0x4b: try push(.int(Int(try read(1)[0]))) // BININT1
            case 0x4d: try push(.int(Int(try uint(2)))) // BININT2
            case 0x8a: try push(.int(try long1())) // LONG1
            case 0x47: // BINFLOAT (big-endian, unlike everything else)
                let b = try read(8)
                try push(.float(Double(bitPattern: b.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case 0x88: try push(.bool(true)) // NEWTRUE
            case 0x89: try push(.bool(false)) // NEWFALSE
            case 0x4e: try push(.none) // NONE
            case 0x58: try push(.string(try unicode(try uint(4)))) // BINUNICODE
            case 0x8c: try push(.string(try unicode(UInt64(try read(1)[0])))) // SHORT_BINUNICODE
            case 0x8d: try push(.string(try unicode(try uint(8)))) // BINUNICODE8
            case 0x63: try push(.global(try global())) // GLOBAL
            case 0x51: try push(.storage(try persistentLoad(try pop()))) // BINPERSID
            case 0x52: try reduce() // REDUCE
            case 0x73: // SETITEM
                let v = try pop(), k = try pop()
                try setItems(on: try top(), [(k, v)])
            case 0x75: // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("SETITEMS at byte \(at) has an odd number of items") }
                try setItems(on: try top(), stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) })
            case 0x61: // APPEND
                let v = try pop()
                try append(to: try top(), [v])
            case 0x65: // APPENDS
                let items = try popMark()
                try append(to: try top(), items)
            case 0x62: try build() // BUILD
            case 0x2e: // STOP
                guard marks.isEmpty, stack.count == 1 else {
                    throw fail("STOP at byte \(at) with \(stack.count) values on the stack and \(marks.count) open MARKs")
                }
                guard pos == bytes.count else { throw fail("\(bytes.count - pos) bytes after STOP") }
                return stack[0]
            default:
                throw .unsupportedOpcode(path: path, opcode: op, offset: at)
            }
        }
    }

    // MARK: - Reading operands

    private mutating func read(_ n: Int) throws(TorchError) -> UnsafeRawBufferPointer {
        guard n <= bytes.count - pos else {
            throw fail("truncated: opcode at byte \(at) needs \(n) more bytes, \(bytes.count - pos) remain")
        }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
    }

    private mutating func uint(_ n: Int) throws(TorchError) -> UInt64 {
        let b = try read(n)
        var v: UInt64 = 0
        for i in (0..<n).reversed() { v = v << 8 | UInt64(b[i]) }
        return v
    }

    /// LONG1: little-endian two's complement of 0–8 bytes (larger ints fit no tensor field).
    private mutating func long1() throws(TorchError) -> Int {
        let n = Int(try read(1)[0])
        guard n <= 8 else { throw fail("LONG1 at byte \(at) of \(n) bytes is out of range") }
        let b = try read(n)
        guard n > 0 else { return 0 }
        var v: UInt64 = b[n - 1] & 0x80 != 0 ? ~0 : 0
        for i in (0..<n).reversed() { v = v << 8 | UInt64(b[i]) }
        return Int(Int64(bitPattern: v))
    }

    private mutating func unicode(_ n: UInt64) throws(TorchError) -> String {
        guard n <= UInt64(bytes.count - pos) else {
            throw fail("truncated: string at byte \(at) of \(n) bytes runs past the end")
        }
        guard let s = String(validating: try read(Int(n)), as: UTF8.self) else {
            throw fail("string at byte \(at) is not valid UTF-8")
        }
        return s
    }

    private mutating func line() throws(TorchError) -> String {
        let start = pos
        let limit = min(bytes.count, pos + Self.maxGlobalLine)
        while pos < limit, bytes[pos] != 0x0a { pos += 1 }
        guard pos < limit else { throw fail("GLOBAL at byte \(at) has no name line within \(Self.maxGlobalLine) bytes") }
        let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        pos += 1
        guard let text else { throw fail("GLOBAL at byte \(at) is not valid UTF-8") }
        return text
    }

    private mutating func global() throws(TorchError) -> TorchGlobal {
        let module = try line(), name = try line()
        guard let g = TorchGlobal(module: module, name: name) else {
            throw .disallowedGlobal(path: path, module: module, name: name, offset: at)
        }
        return g
    }

    // MARK: - Stack and memo

    private mutating func push(_ v: PickleValue) throws(TorchError) {
        guard v.depth <= Self.maxNesting else { throw fail("values nested more than \(Self.maxNesting) deep at byte \(at)") }
        stack.append(v)
    }

    private mutating func pop() throws(TorchError) -> PickleValue {
        guard stack.count > (marks.last ?? 0) else { throw fail("opcode at byte \(at) pops an empty stack") }
        return stack.removeLast()
    }

    private func top() throws(TorchError) -> PickleValue {
        guard stack.count > (marks.last ?? 0), let v = stack.last else { throw fail("opcode at byte \(at) needs a value on the stack") }
        return v
    }

    private mutating func popMark() throws(TorchError) -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("opcode at byte \(at) needs a MARK") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func put(_ i: UInt32) throws(TorchError) {
        let v = try top()
        guard memo[i] != nil || memo.count < Self.maxMemo else { throw fail("memo exceeds \(Self.maxMemo) entries") }
        memo[i] = v
    }

    private mutating func get(_ i: UInt32) throws(TorchError) {
        guard let v = memo[i] else { throw fail("memo \(i) read at byte \(at) was never stored") }
        try push(v)
    }

    // MARK: - Containers

    private func freeze(_ v: PickleValue) throws(TorchError) {
        switch v {
        case .list(let l): l.frozen = true
        case .dict(let d):
            d.frozen = true
            if let k = d.duplicate { throw fail("key \"\(displayKey(k))\" is set twice in a dict") }
        default: break
        }
    }

    private func tuple(_ items: [PickleValue]) throws(TorchError) -> PickleValue {
        for v in items { try freeze(v) }
        return .tuple(items, depth: 1 + (items.map(\.depth).max() ?? 0))
    }

    private func key(_ v: PickleValue) throws(TorchError) -> PickleKey {
        switch v {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        default: throw fail("dict key at byte \(at) is \(withArticle(v.typeName)); only str and int keys are read")
        }
    }

    private func setItems(on target: PickleValue, _ items: [(PickleValue, PickleValue)]) throws(TorchError) {
        for (_, v) in items { try freeze(v) }
        guard case .dict(let d) = target else { throw fail("SETITEM(S) at byte \(at) on \(withArticle(target.typeName)), not a dict") }
        guard !d.frozen else { throw fail("SETITEM(S) at byte \(at) on a dict already placed in another container") }
        for (k, v) in items {
            d.set(try key(k), v)
            d.depth = max(d.depth, 1 + v.depth)
        }
        guard d.depth <= Self.maxNesting else { throw fail("values nested more than \(Self.maxNesting) deep at byte \(at)") }
    }

    private func append(to target: PickleValue, _ items: [PickleValue]) throws(TorchError) {
        for v in items { try freeze(v) }
        guard case .list(let l) = target else { throw fail("APPEND(S) at byte \(at) on \(withArticle(target.typeName)), not a list") }
        guard !l.frozen else { throw fail("APPEND(S) at byte \(at) on a list already placed in another container") }
        l.items += items
        l.depth = max(l.depth, 1 + (items.map(\.depth).max() ?? 0))
        guard l.depth <= Self.maxNesting else { throw fail("values nested more than \(Self.maxNesting) deep at byte \(at)") }
    }

    /// torch's only BUILD for a state dict sets the attributes of an OrderedDict (`_metadata`, the
    /// module versions `Module.state_dict()` attaches); they do not change its items.
    private mutating func build() throws(TorchError) {
        let state = try pop()
        let inst = try top()
        guard case .dict(let d) = inst, d.ordered else { throw fail("BUILD at byte \(at) on \(withArticle(inst.typeName)); only an OrderedDict's attributes are read") }
        guard case .dict = state else { throw fail("BUILD at byte \(at) with \(withArticle(state.typeName)) state, not a dict") }
        try freeze(state)
    }

    // MARK: - Callables as data

    private mutating func reduce() throws(TorchError) {
        let args = try pop()
        let callable = try top()
        guard case .global(let g) = callable else {
            throw .disallowedReduce(path: path, callable: withArticle(callable.typeName), offset: at)
        }
        guard case .tuple(let a, _) = args else { throw fail("REDUCE at byte \(at): arguments are \(withArticle(args.typeName)), not a tuple") }
        let result: PickleValue
        switch g {
        case .orderedDict:
            guard a.isEmpty else { throw fail("REDUCE at byte \(at): OrderedDict with \(a.count) arguments (torch.save passes none)") }
            result = .dict(PickleDict(ordered: true))
        case .rebuildTensorV2, .rebuildTensorV3:
            result = .tensor(try rebuildTensor(a, v3: g == .rebuildTensorV3))
        case .rebuildParameter:
            // _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its tensor.
            guard a.count == 3, case .tensor = a[0], case .bool = a[1], case .dict = a[2] else {
                throw fail("REDUCE at byte \(at): _rebuild_parameter expects (Tensor, bool, OrderedDict), got (\(a.map(\.typeName).joined(separator: ", ")))")
            }
            result = a[0]
        case .storageType, .untypedStorage, .dtype:
            throw .disallowedReduce(path: path, callable: g.qualifiedName, offset: at)
        }
        stack[stack.count - 1] = result
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`
    /// or `_rebuild_tensor_v3(…, backward_hooks, dtype[, metadata])`.
    private func rebuildTensor(_ a: [PickleValue], v3: Bool) throws(TorchError) -> TorchTensorRecord {
        let fn = v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2"
        let fixed = v3 ? 7 : 6
        func bad() -> TorchError {
            fail("REDUCE at byte \(at): \(fn) arguments (\(a.map(\.typeName).joined(separator: ", "))) are not what torch.save writes")
        }
        guard a.count == fixed || a.count == fixed + 1,
              case .storage(let storage) = a[0], case .int(let offset) = a[1],
              case .tuple(let sizeItems, _) = a[2], case .tuple(let strideItems, _) = a[3],
              case .bool = a[4], case .dict = a[5]
        else { throw bad() }
        func ints(_ items: [PickleValue]) throws(TorchError) -> [Int] {
            var out: [Int] = []
            for v in items {
                guard case .int(let i) = v else { throw bad() }
                out.append(i)
            }
            return out
        }
        let dtype: SafetensorsDType
        if v3 {
            guard storage.dtype == nil, case .global(.dtype(let d, _)) = a[6] else { throw bad() }
            dtype = d
        } else {
            guard let d = storage.dtype else { throw bad() }
            dtype = d
        }
        var lazyBit: String?
        if a.count == fixed + 1 {
            // get_tensor_metadata: {"conj": bool, "neg": bool} when either lazy bit is set.
            switch a[fixed] {
            case .none: break
            case .dict(let m):
                for (k, v) in zip(m.keys, m.values) {
                    guard case .bool(let on) = v else { throw bad() }
                    if on { lazyBit = k.text }
                }
            default: throw bad()
            }
        }
        return TorchTensorRecord(storage: storage, dtype: dtype, storageOffset: offset,
                                 size: try ints(sizeItems), stride: try ints(strideItems), lazyBit: lazyBit)
    }

    /// torch's `persistent_load` for ('storage', storage_type, key, location, numel); the data is
    /// not touched here, only described (the caller checks it against the zip entry).
    private mutating func persistentLoad(_ pid: PickleValue) throws(TorchError) -> TorchStorage {
        guard case .tuple(let t, _) = pid, t.count == 5, case .string("storage") = t[0] else {
            throw fail("persistent id at byte \(at) is \(withArticle(pid.typeName)), not ('storage', type, key, location, numel)")
        }
        let dtype: SafetensorsDType?
        switch t[1] {
        case .global(.storageType(let d, _)): dtype = d
        case .global(.untypedStorage): dtype = nil
        default: throw fail("persistent id at byte \(at) names \(withArticle(t[1].typeName)), not a storage type")
        }
        guard case .string(let key) = t[2], case .string = t[3], case .int(let numel) = t[4], numel >= 0 else {
            throw fail("persistent id at byte \(at) is not ('storage', type, key: str, location: str, numel: int ≥ 0)")
        }
        let s = TorchStorage(key: key, dtype: dtype, numel: numel)
        if let seen = storages[key] {
            // torch would silently keep the first reading; two readings of one storage are a forgery.
            guard seen == s else {
                throw .badStorage(path: path, key: key, detail: "named again at byte \(at) as \(numel) elements of \(s.typeName), first as \(seen.numel) of \(seen.typeName)")
            }
        } else {
            storages[key] = s
        }
        return s
    }
}

func displayKey(_ k: PickleKey) -> String { displayName(k.text) }
