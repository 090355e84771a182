/// GGUF metadata keys (gguf-py constants.py `Keys`), written down once. Architecture keys
/// (`{arch}.context_length`, …) are `ArchKey`s, filled in with `general.architecture`.
public enum GGUFKey {
    /// `general.*`: what the model is (gguf-py `Keys.General`)
    public enum General {
        public static let alignment = "general.alignment"
        public static let architecture = "general.architecture"
        public static let author = "general.author"
        public static let basename = "general.basename"
        public static let description = "general.description"
        public static let doi = "general.doi"
        public static let fileType = "general.file_type"
        public static let finetune = "general.finetune"
        public static let languages = "general.languages"
        public static let license = "general.license"
        public static let licenseLink = "general.license.link"
        public static let licenseName = "general.license.name"
        public static let name = "general.name"
        public static let organization = "general.organization"
        public static let quantizationVersion = "general.quantization_version"
        public static let quantizedBy = "general.quantized_by"
        public static let repoUrl = "general.repo_url"
        public static let samplingMinP = "general.sampling.min_p"
        public static let samplingMirostat = "general.sampling.mirostat"
        public static let samplingMirostatEta = "general.sampling.mirostat_eta"
        public static let samplingMirostatTau = "general.sampling.mirostat_tau"
        public static let samplingPenaltyLastN = "general.sampling.penalty_last_n"
        public static let samplingPenaltyRepeat = "general.sampling.penalty_repeat"
        public static let samplingSequence = "general.sampling.sequence"
        public static let samplingTemp = "general.sampling.temp"
        public static let samplingTopK = "general.sampling.top_k"
        public static let samplingTopP = "general.sampling.top_p"
        public static let samplingXtcProbability = "general.sampling.xtc_probability"
        public static let samplingXtcThreshold = "general.sampling.xtc_threshold"
        public static let sizeLabel = "general.size_label"
        public static let sourceDoi = "general.source.doi"
        public static let sourceRepoUrl = "general.source.repo_url"
        public static let sourceUrl = "general.source.url"
        public static let sourceUuid = "general.source.uuid"
        public static let tags = "general.tags"
        public static let type = "general.type"
        public static let url = "general.url"
        public static let uuid = "general.uuid"
        public static let version = "general.version"
    }
    /// `tokenizer.ggml.*` (gguf-py `Keys.Tokenizer`)
    /// `split.*`: one file of a model split by llama-gguf-split (llama.cpp's `LLM_KV_SPLIT_*`)
    public enum Split {
        public static let no = "split.no"
        public static let count = "split.count"
        public static let tensorsCount = "split.tensors.count"
        public static let all = [no, count, tensorsCount]
    }

    public enum Tokenizer {
        public static let addBosToken = "tokenizer.ggml.add_bos_token"
        public static let addEosToken = "tokenizer.ggml.add_eos_token"
        public static let addSpacePrefix = "tokenizer.ggml.add_space_prefix"
        public static let bosTokenId = "tokenizer.ggml.bos_token_id"
        public static let eotTokenId = "tokenizer.ggml.eot_token_id"
        public static let merges = "tokenizer.ggml.merges"
        public static let model = "tokenizer.ggml.model"
        public static let normalizerLowercase = "tokenizer.ggml.normalizer.lowercase"
        public static let normalizerStripAccents = "tokenizer.ggml.normalizer.strip_accents"
        public static let pre = "tokenizer.ggml.pre"
        public static let scores = "tokenizer.ggml.scores"
        public static let tokenType = "tokenizer.ggml.token_type"
        public static let tokens = "tokenizer.ggml.tokens"
    }
    /// llama-imatrix files' `imatrix.*`
    public enum Imatrix {
        public static let chunkCount = "imatrix.chunk_count"
        public static let chunkSize = "imatrix.chunk_size"
        public static let datasets = "imatrix.datasets"
    }
    /// `quantize.imatrix.*`, written by llama-quantize --imatrix
    public enum Quantize {
        public static let imatrixChunksCount = "quantize.imatrix.chunks_count"
        public static let imatrixDataset = "quantize.imatrix.dataset"
        public static let imatrixEntriesCount = "quantize.imatrix.entries_count"
        public static let imatrixFile = "quantize.imatrix.file"
    }
    /// keys only edgequant writes
    public enum EdgeQuant {
        public static let requestedType = "edgequant.requested_type"
    }
}

/// A key under the architecture's name (`{arch}.context_length`): gguf-py spells these with an `{arch}`
/// placeholder; `key(arch)` fills it in, and `suffix` is what readers that know the architecture look up.
public struct ArchKey: Sendable, Hashable, CustomStringConvertible {
    public let suffix: String
    init(_ suffix: String) { self.suffix = suffix }
    public func callAsFunction(_ architecture: String) -> String { "\(architecture).\(suffix)" }
    public var description: String { "{arch}.\(suffix)" }
}

extension GGUFKey {
    /// `{arch}.*` hyper-parameters (gguf-py `Keys.LLM`)
    public enum LLM {
        public static let attnLogitSoftcapping = ArchKey("attn_logit_softcapping")
        public static let blockCount = ArchKey("block_count")
        public static let contextLength = ArchKey("context_length")
        public static let embeddingLength = ArchKey("embedding_length")
        public static let embeddingScale = ArchKey("embedding_scale")
        public static let expertCount = ArchKey("expert_count")
        public static let feedForwardLength = ArchKey("feed_forward_length")
        public static let finalLogitSoftcapping = ArchKey("final_logit_softcapping")
        public static let logitScale = ArchKey("logit_scale")
        public static let residualScale = ArchKey("residual_scale")
        public static let vocabSize = ArchKey("vocab_size")
    }
    /// `{arch}.attention.*` (gguf-py `Keys.Attention`)
    public enum Attention {
        public static let headCount = ArchKey("attention.head_count")
        public static let headCountKv = ArchKey("attention.head_count_kv")
        public static let keyLength = ArchKey("attention.key_length")
        public static let layerNormEpsilon = ArchKey("attention.layer_norm_epsilon")
        public static let layerNormRmsEpsilon = ArchKey("attention.layer_norm_rms_epsilon")
        public static let slidingWindow = ArchKey("attention.sliding_window")
        public static let slidingWindowPattern = ArchKey("attention.sliding_window_pattern")
        public static let valueLength = ArchKey("attention.value_length")
    }
    /// `{arch}.rope.*` (gguf-py `Keys.Rope`)
    public enum Rope {
        public static let dimensionCount = ArchKey("rope.dimension_count")
        public static let freqBase = ArchKey("rope.freq_base")
        public static let freqBaseSwa = ArchKey("rope.freq_base_swa")
        public static let scalingAttnFactor = ArchKey("rope.scaling.attn_factor")
        public static let scalingFactor = ArchKey("rope.scaling.factor")
        public static let scalingOriginalContextLength = ArchKey("rope.scaling.original_context_length")
        public static let scalingType = ArchKey("rope.scaling.type")
        public static let scalingYarnAttnFactor = ArchKey("rope.scaling.yarn_attn_factor")
        public static let scalingYarnBetaFast = ArchKey("rope.scaling.yarn_beta_fast")
        public static let scalingYarnBetaSlow = ArchKey("rope.scaling.yarn_beta_slow")
        public static let scalingYarnExtFactor = ArchKey("rope.scaling.yarn_ext_factor")
    }
}
