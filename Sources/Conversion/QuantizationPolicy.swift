import Foundation
import GGMLCore
import GGUFWriter

/// llama.cpp's choice of each tensor's type for a file type (`llama-quant.cpp`:
/// `tensor_allows_quantization`, `llama_tensor_get_type_impl`, `tensor_type_fallback`), ported so
/// that our files have exactly llama-quantize's mix. Tensors are visited in llama-quantize's order,
/// because the attn_v counter (`use_more_bits`) depends on it.
public struct QuantizationPolicy: Sendable {
    public struct Options: Sendable {
        /// `--tensor-type PATTERN=TYPE`: regex searched in the tensor name (pattern lower-cased, as
        /// llama-quantize does); the first match wins.
        public var tensorTypes: [(pattern: String, type: GGMLType)] = []
        public var outputTensorType: GGMLType?
        public var tokenEmbeddingType: GGMLType?
        public var pure = false
        /// Set by QuantizePlan when it is given an imatrix; set by a caller that sizes a plan without
        /// one but will quantize it with one (the size-budget planner), so that the policy takes the
        /// same branches and the types that require an imatrix are not refused.
        public var hasImatrix = false
        public init() {}
    }

    /// What the policy needs to know of the model (`hparams` in llama.cpp).
    public struct Model: Sendable {
        public var architecture: String
        public var blockCount: Int
        public var headCount: Int
        public var headCountKV: Int
        public var expertCount: Int = 0

        public init(architecture: String, blockCount: Int, headCount: Int, headCountKV: Int, expertCount: Int = 0) {
            self.architecture = architecture
            self.blockCount = blockCount
            self.headCount = headCount
            self.headCountKV = headCountKV
            self.expertCount = expertCount
        }

        var nGQA: Int { headCountKV > 0 ? headCount / headCountKV : 0 }
        /// llama.cpp's LLM_TYPE_70B: 80 layers with grouped-query attention.
        var is70B: Bool { blockCount == 80 && (architecture == "qwen2" || headCount != headCountKV) }
    }

    enum Category { case output, tokenEmbd, attnQKV, attnKVB, attnV, attnK, attnQ, attnOutput, ffnUp, ffnGate, ffnDown, other }

    public let fileType: LlamaFileType
    public let model: Model
    public let options: Options

    public init(fileType: LlamaFileType, model: Model, options: Options = Options()) {
        self.fileType = fileType
        self.model = model
        self.options = options
    }

    /// `llama_ftype_get_default_type`.
    public static func defaultType(_ f: LlamaFileType) -> GGMLType {
        switch f {
        case .allF32: .f32
        case .mostlyF16: .f16
        case .mostlyBF16: .bf16
        case .mostlyQ4_0: .q4_0
        case .mostlyQ4_1: .q4_1
        case .mostlyQ5_0: .q5_0
        case .mostlyQ5_1: .q5_1
        case .mostlyQ8_0: .q8_0
        case .mostlyQ2_K: .q2_K
        case .mostlyQ3_K_S, .mostlyQ3_K_M, .mostlyQ3_K_L: .q3_K
        case .mostlyQ4_K_S, .mostlyQ4_K_M: .q4_K
        case .mostlyQ5_K_S, .mostlyQ5_K_M: .q5_K
        case .mostlyQ6_K: .q6_K
        case .mostlyIQ4_NL: .iq4_nl
        case .mostlyIQ2_XXS: .iq2_xxs
        case .mostlyIQ2_XS, .mostlyIQ2_S: .iq2_xs
        case .mostlyIQ2_M: .iq2_s
        case .mostlyIQ3_XXS: .iq3_xxs
        case .mostlyIQ3_XS, .mostlyIQ3_S, .mostlyIQ3_M: .iq3_s
        case .mostlyIQ1_S: .iq1_s
        case .mostlyIQ1_M: .iq1_m
        case .mostlyIQ4_XS: .iq4_xs
        }
    }

    /// The file type a mix whose largest share is `t` is labelled with (`general.file_type`), as
    /// llama-quantize would label a file of mostly `t`: the "medium" mix where a type has several.
    public static func fileType(mostly t: GGMLType) -> LlamaFileType? {
        let preferred: [LlamaFileType] = [.mostlyQ3_K_M, .mostlyQ4_K_M, .mostlyQ5_K_M, .mostlyIQ2_XS, .mostlyIQ3_S]
        return preferred.first { defaultType($0) == t } ?? LlamaFileType.allCases.first { defaultType($0) == t }
    }

    /// llama_model_loader's `weight_name_comparer`: by layer (non-`blk.` tensors first), then name.
    public static func fileOrder(_ a: String, _ b: String) -> Bool {
        let la = layer(a) ?? -1, lb = layer(b) ?? -1
        if la != lb { return la < lb }
        return a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    static func layer(_ name: String) -> Int? {
        guard TensorName.isBlock(name) else { return nil }
        let rest = name.dropFirst(4)
        var digits = Substring("")
        var sign = ""
        var r = rest[...]
        if r.first == "-" || r.first == "+" { sign = String(r.first!); r = r.dropFirst() }
        digits = r.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return nil }
        return Int(sign + digits)
    }

    static func category(_ name: String) -> Category {
        if name == TensorName.output { return .output }
        if name == TensorName.tokenEmbd || name == TensorName.perLayerTokenEmbd { return .tokenEmbd }
        if name.contains("attn_qkv.weight") { return .attnQKV }
        if name.contains("attn_kv_b.weight") { return .attnKVB }
        if name.contains("attn_v.weight") { return .attnV }
        if name.contains("attn_k.weight") { return .attnK }
        if name.contains("attn_q.weight") { return .attnQ }
        if name.contains("attn_output.weight") { return .attnOutput }
        if name.contains("ffn_up") { return .ffnUp }
        if name.contains("ffn_gate") { return .ffnGate }
        if name.contains("ffn_down") { return .ffnDown }
        return .other
    }

    /// `tensor_allows_quantization`, for the tensor names of the architectures we write.
    public static func allowsQuantization(name: String, ne: [Int]) -> Bool {
        guard name.hasSuffix("weight"), !name.contains("_norm.weight") else { return false }
        for excluded in ["ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
                         "ssm_conv1d", "shortconv.conv.weight", "attn_rel_b.weight", ".position_embd", ".rel_pos"] where name.contains(excluded) {
            return false
        }
        return name != "position_embd.weight" && name != "token_types.weight"
    }

    /// Target types for tensors given in llama-quantize order; `current` is each tensor's type now.
    public func assignTypes(names: [String], ne: [[Int]], current: [GGMLType]) throws(PolicyError) -> [GGMLType] {
        var state = State(nFFN: model.blockCount)
        let categories = names.map(Self.category)
        state.nAttentionWV = categories.filter { $0 == .attnV || $0 == .attnQKV || $0 == .attnKVB }.count
        state.hasTiedEmbeddings = !categories.contains(.output)
        let defaultType = Self.defaultType(fileType)
        let patterns = try options.tensorTypes.map { (p, t) throws(PolicyError) -> (NSRegularExpression, GGMLType) in
            do { return (try NSRegularExpression(pattern: p.lowercased()), t) } catch {
                throw PolicyError(message: "invalid --tensor-type pattern \"\(p)\"")
            }
        }
        var out: [GGMLType] = []
        for i in names.indices {
            let name = names[i]
            // ggml_n_dims: trailing 1s do not count.
            let dims = ne[i].lastIndex(where: { $0 != 1 }).map { $0 + 1 } ?? 1
            guard dims >= 2, Self.allowsQuantization(name: name, ne: ne[i]) else { out.append(current[i]); continue }
            let cat = categories[i]
            if let t = options.tokenEmbeddingType, cat == .tokenEmbd { out.append(t); continue }
            if let t = options.outputTensorType, cat == .output { out.append(t); continue }
            var newType = defaultType
            if defaultType.isQuantized {
                var manual = false
                for (re, t) in patterns where re.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil {
                    newType = t
                    manual = true
                    break
                }
                if !manual && !options.pure {
                    newType = try impl(&state, newType, name: name, ne: ne[i], category: cat)
                }
                newType = try fallback(newType, name: name, ncols: ne[i][0])
            }
            out.append(newType)
        }
        return out
    }

    struct State {
        var nAttentionWV = 0, iAttentionWV = 0
        var nFFN: Int
        var iFFNDown = 0, iFFNGate = 0, iFFNUp = 0
        var hasTiedEmbeddings = true
        init(nFFN: Int) { self.nFFN = nFFN }
    }

    static func useMoreBits(_ i: Int, _ n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    /// `tensor_type_fallback`.
    func fallback(_ t: GGMLType, name: String, ncols: Int) throws(PolicyError) -> GGMLType {
        guard ncols % t.blockSize != 0 else { return t }
        var r: GGMLType
        switch t {
        case .iq1_s, .iq1_m, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq4_xs: r = .iq4_nl
        case .q2_0, .q2_K, .q3_K, .tq1_0, .tq2_0: r = .q4_0
        case .q4_K: r = .q5_0
        case .q5_K: r = .q5_1
        case .q6_K: r = .q8_0
        default:
            guard t.blockSize <= 32 else { throw PolicyError(message: "no fallback type for \(t.name) (tensor \(name))") }
            r = t
        }
        if ncols % r.blockSize != 0 { r = .f16 }
        return r
    }

    /// `tensor_requires_imatrix`: the types ggml cannot quantize sensibly without importance weights
    /// (iq2_xxs, iq2_xs and iq1_s assert on NULL; llama-quantize also insists for iq1_m, iq2_s, iq3_xxs), except for the embedding and output.
    public static func requiresImatrix(name: String, type: GGMLType) -> Bool {
        if name == TensorName.output || name == TensorName.tokenEmbd || name == TensorName.perLayerTokenEmbd { return false }
        switch type {
        case .iq3_xxs, .iq2_xxs, .iq2_xs, .iq2_s, .iq1_m, .iq1_s: return true
        default: return false
        }
    }

    /// The 2-bit and 1-bit mixes, which llama.cpp treats as one group.
    static let lowBitMixes: Set<LlamaFileType> = [.mostlyIQ2_XXS, .mostlyIQ2_XS, .mostlyIQ1_S, .mostlyIQ2_S, .mostlyIQ2_M, .mostlyIQ1_M]

    /// `llama_tensor_get_type_impl` for the file types we write, branch for branch in llama.cpp's order.
    func impl(_ s: inout State, _ type: GGMLType, name: String, ne: [Int], category: Category) throws(PolicyError) -> GGMLType {
        var newType = type
        let f = fileType
        let nExpert = model.expertCount
        func layerInfo(_ i: Int, _ n: Int) -> (Int, Int) { (i, n) } // dense models: counters are the layer
        if category == .output || (s.hasTiedEmbeddings && category == .tokenEmbd) {
            let nx = ne[0]
            if nx % newType.blockSize != 0 {
                newType = .q8_0
            } else if Self.lowBitMixes.contains(f) || f == .mostlyIQ3_XXS {
                newType = .q5_K
            } else if newType != .q8_0 {
                newType = .q6_K
            }
        } else if category == .tokenEmbd {
            if [.mostlyIQ2_XXS, .mostlyIQ2_XS, .mostlyIQ1_S, .mostlyIQ1_M].contains(f) {
                newType = .q2_K
            } else if f == .mostlyIQ2_S || f == .mostlyIQ2_M || f == .mostlyIQ3_XXS {
                newType = .iq3_s
            }
        } else if Self.lowBitMixes.contains(f) {
            let twoS = f == .mostlyIQ2_S || f == .mostlyIQ2_M
            if category == .attnV || category == .attnQKV || category == .attnKVB {
                newType = model.nGQA >= 4 || nExpert >= 4 ? .q4_K : twoS ? .iq3_s : .q2_K
                s.iAttentionWV += 1
            } else if nExpert == 8 && category == .attnK {
                newType = .q4_K
            } else if category == .ffnDown {
                if s.iFFNDown < s.nFFN / 8 { newType = twoS ? .iq3_s : .q2_K }
                s.iFFNDown += 1
            } else if category == .attnOutput {
                if nExpert == 8 {
                    newType = .q5_K
                } else if f == .mostlyIQ1_S || f == .mostlyIQ1_M {
                    newType = .iq2_xxs
                } else if twoS {
                    newType = .iq3_s
                }
            }
        } else if category == .attnV || category == .attnQKV || category == .attnKVB {
            if f == .mostlyQ2_K {
                newType = model.nGQA >= 4 ? .q4_K : .q3_K
            } else if f == .mostlyIQ3_XXS {
                newType = model.nGQA >= 4 ? .q4_K : !options.hasImatrix ? .iq3_s : .iq3_xxs
            } else if (f == .mostlyIQ3_XS || f == .mostlyIQ3_S) && model.nGQA >= 4 {
                newType = .q4_K
            } else if f == .mostlyIQ3_M {
                newType = .q4_K
            } else if f == .mostlyQ3_K_M {
                newType = s.iAttentionWV < 2 ? .q5_K : .q4_K
            } else if f == .mostlyQ3_K_L {
                newType = .q5_K
            } else if (f == .mostlyIQ4_NL || f == .mostlyIQ4_XS) && model.nGQA >= 4 {
                newType = .q5_K
            } else if (f == .mostlyQ4_K_M || f == .mostlyQ5_K_M) && Self.useMoreBits(s.iAttentionWV, s.nAttentionWV) {
                newType = .q6_K
            } else if f == .mostlyQ4_K_S && s.iAttentionWV < 4 {
                newType = .q5_K
            }
            if model.is70B && (newType == .q3_K || newType == .q4_K) { newType = .q5_K }
            if nExpert == 8 { newType = .q8_0 }
            s.iAttentionWV += 1
        } else if category == .attnK {
            if nExpert == 8 {
                newType = .q8_0
            } else if f == .mostlyIQ3_XS {
                newType = .iq3_xxs
            } else if f == .mostlyIQ3_XXS {
                newType = .iq2_s
            }
        } else if category == .attnQ {
            if f == .mostlyIQ3_XS {
                newType = .iq3_xxs
            } else if f == .mostlyIQ3_XXS {
                newType = .iq2_s
            }
        } else if category == .ffnDown {
            let (iLayer, nLayer) = layerInfo(s.iFFNDown, s.nFFN)
            if f == .mostlyQ2_K {
                newType = .q3_K
            } else if f == .mostlyIQ3_XXS && !options.hasImatrix {
                newType = iLayer < nLayer / 8 ? .q4_K : .q3_K
            } else if f == .mostlyQ3_K_M {
                newType = iLayer < nLayer / 16 ? .q5_K : .q4_K // arch != FALCON
            } else if f == .mostlyIQ3_M && (iLayer < nLayer / 8 || (nExpert == 8 && Self.useMoreBits(iLayer, nLayer))) {
                newType = .q4_K
            } else if f == .mostlyQ3_K_L {
                newType = .q5_K
            } else if f == .mostlyQ4_K_M {
                if Self.useMoreBits(iLayer, nLayer) { newType = .q6_K }
            } else if iLayer < nLayer / 8 && (f == .mostlyIQ4_NL || f == .mostlyIQ4_XS) && !options.hasImatrix {
                newType = .q5_K
            } else if f == .mostlyQ5_K_M && Self.useMoreBits(iLayer, nLayer) {
                newType = .q6_K
            } else if f == .mostlyQ4_K_S && iLayer < nLayer / 8 {
                newType = .q5_K
            } else if (f == .mostlyQ4_0 || f == .mostlyQ5_0) && options.hasImatrix && iLayer < nLayer / 8 {
                newType = f == .mostlyQ4_0 ? .q4_1 : .q5_1
            }
            s.iFFNDown += 1
        } else if category == .attnOutput {
            if nExpert == 8 {
                if [.mostlyQ2_K, .mostlyIQ3_XS, .mostlyIQ3_XXS, .mostlyQ3_K_S, .mostlyQ3_K_M, .mostlyIQ4_NL, .mostlyQ4_K_S,
                    .mostlyQ4_K_M, .mostlyIQ3_S, .mostlyIQ3_M, .mostlyIQ4_XS].contains(f) { newType = .q5_K }
            } else {
                if f == .mostlyQ2_K { newType = .q3_K }
                else if f == .mostlyIQ3_XXS { newType = .iq3_s }
                else if f == .mostlyQ3_K_M { newType = .q4_K }
                else if f == .mostlyQ3_K_L { newType = .q5_K }
                else if f == .mostlyIQ3_M { newType = .q4_K }
            }
        } else if category == .ffnGate {
            let (iLayer, nLayer) = layerInfo(s.iFFNGate, s.nFFN)
            if f == .mostlyIQ3_XS && iLayer >= nLayer / 8 && iLayer < 7 * nLayer / 8 { newType = .iq3_xxs }
            s.iFFNGate += 1
        } else if category == .ffnUp {
            let (iLayer, nLayer) = layerInfo(s.iFFNUp, s.nFFN)
            if f == .mostlyIQ3_XS && iLayer >= nLayer / 8 && iLayer < 7 * nLayer / 8 { newType = .iq3_xxs }
            s.iFFNUp += 1
        }
        return newType
    }
}

public struct PolicyError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
