/// GGUF metadata keys (gguf-py constants.py `Keys`), written down once. Architecture keys
/// (`<arch>.context_length`, …) are built by the families from `general.architecture`.
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
