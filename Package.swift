// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "edgequant",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "edgequant", targets: ["convert"]),
        .library(name: "SafetensorsReader", targets: ["SafetensorsReader"]),
        .library(name: "GGUFWriter", targets: ["GGUFWriter"]),
        .library(name: "Quantizers", targets: ["Quantizers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // ggml's type table and file-type enum: the one place format constants live.
        .target(name: "GGMLCore"),
        // A strict JSON parser: rejects duplicate keys, keeps key order, bounded depth.
        .target(name: "StrictJSON"),
        // mmap'd input, and output written at precomputed offsets into a temp file renamed when complete.
        .target(name: "MappedIO"),
        .target(name: "SafetensorsReader", dependencies: ["StrictJSON", "MappedIO"]),
        .target(name: "GGUFWriter", dependencies: ["GGMLCore", "MappedIO"]),
        .target(name: "Quantizers", dependencies: ["GGMLCore", "CQuants"]),
        // ggml's i-quant quantizers (lattice searches) in C, vectorised with runtime dispatch; the
        // lattices come from CKernels' generated ggml_iq_grids.h.
        .target(name: "CQuants", dependencies: ["CKernels"]),
        // The ground floor of every parallel loop: the pointer wrapper handed to workers, the work
        // queue, the owned buffer.
        .target(name: "Workers"),
        // The inference hot loops in C: Swift cannot compile one function for AVX2/AVX-512 and keep the
        // rest of the binary baseline x86-64, C can (per-function target attributes, runtime dispatch).
        .target(name: "CKernels"),
        // ggml-cpu's activation quantizers, vec_dot and a tiled matmul, for perplexity/KL measurement.
        .target(name: "Kernels", dependencies: ["GGMLCore", "CKernels", "Workers"]),
        // Hugging Face config/tokenizer → GGUF architecture, names and metadata.
        .target(name: "ModelMapping", dependencies: [
            "StrictJSON", "GGUFWriter", "MappedIO", .product(name: "Yams", package: "Yams"),
        ]),
        // Text → token ids as llama.cpp tokenizes (GGUF vocabularies; tokenizer.json / tokenizer.model).
        .target(name: "Tokenizer", dependencies: ["StrictJSON", "GGUFWriter", "MappedIO", "ModelMapping"]),
        // The pipeline: checkpoint → per-tensor plan → quantized rows → GGUF on disk.
        .target(name: "Conversion", dependencies: [
            "SafetensorsReader", "GGUFWriter", "Quantizers", "ModelMapping", "GGMLCore", "Families", "Inference", "MappedIO",
            "StrictJSON", "Workers",
        ]),
        // The shared layers of the forward pass (norms, rope, flash attention over the f16 KV cache,
        // GLU MLPs) on GGUF weights of any type we read, and the `Architecture` a family implements.
        .target(name: "Inference", dependencies: ["GGUFWriter", "GGMLCore", "Quantizers", "MappedIO", "Kernels", "CKernels", "Workers"]),
        // One file per model family: its HF classes, hyper-parameter keys, tensor names and
        // transforms, and its forward pass; `Families.all` registers them.
        .target(name: "Families", dependencies: ["Inference", "ModelMapping", "GGUFWriter", "MappedIO", "StrictJSON"]),
        // zlib from the system (libz-dev), for gzip-compressed evaluation text.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Importance matrices: llama.cpp's imatrix files (GGUF and legacy .dat), collected by running
        // the model on calibration text.
        .target(name: "Calibration", dependencies: [
            "GGUFWriter", "GGMLCore", "MappedIO", "Inference", "Tokenizer", "Quantizers", "CKernels", "Workers",
            "Conversion", "Evaluation", "StrictJSON",
        ]),
        // Perplexity and KL divergence with llama-perplexity's method.
        .target(name: "Evaluation", dependencies: [
            "Inference", "Families", "MappedIO", "Conversion", "GGUFWriter", "GGMLCore", "CZlib", "Tokenizer", "Workers",
        ]),
        // Size/quality rows as tables (Markdown, CSV, JSON) and plots (SVG, PNG with zlib).
        .target(name: "Reports", dependencies: ["StrictJSON", "CZlib"]),
        // Manifests (YAML) → jobs, sharding, resumable job records, quality gates, merged reports.
        .target(name: "Batch", dependencies: [
            "Reports", "StrictJSON", "MappedIO", .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // One checkpoint under measurement (reference log-probs once, then quantize + evaluate per
        // type): what `compare` and `batch` both run.
        .target(name: "Comparison", dependencies: [
            "Batch", "Calibration", "Conversion", "Evaluation", "Families", "GGMLCore", "GGUFWriter", "Inference", "MappedIO",
            "Quantizers", "Reports", "Workers",
        ]),
        .executableTarget(name: "convert", dependencies: [
            "Comparison",
            "Reports", "Batch",
            "Conversion", "GGUFWriter", "GGMLCore", "Quantizers", "StrictJSON", "MappedIO",
            "Inference", "Families", "Evaluation", "Tokenizer", "Calibration", "ModelMapping",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Checks a real model's tokenizer against recorded llama-tokenize ids, and times it (scripts/test.sh).
        .executableTarget(name: "tokenizer-check", dependencies: ["Tokenizer", .product(name: "Crypto", package: "swift-crypto")]),
        // Fuzzing (Benchmarks/fuzz.sh): one function per input format in FuzzTargets, each run by a thin
        // executable — libFuzzer's entry point when built with -DFUZZING and the fuzzer sanitizer,
        // a replayer of files otherwise. Fixtures/fuzz-regressions/ is replayed by FuzzRegressionTests.
        .target(name: "FuzzTargets", dependencies: [
            "GGUFWriter", "SafetensorsReader", "Conversion", "Inference", "Families", "Calibration", "Tokenizer", "Batch", "MappedIO",
        ], path: "Fuzz/Targets"),
        .executableTarget(name: "fuzz-gguf", dependencies: ["FuzzTargets"], path: "Fuzz/gguf"),
        .executableTarget(name: "fuzz-model", dependencies: ["FuzzTargets"], path: "Fuzz/model"),
        .executableTarget(name: "fuzz-safetensors", dependencies: ["FuzzTargets"], path: "Fuzz/safetensors"),
        .executableTarget(name: "fuzz-torch", dependencies: ["FuzzTargets"], path: "Fuzz/torch"),
        .executableTarget(name: "fuzz-checkpoint", dependencies: ["FuzzTargets"], path: "Fuzz/checkpoint"),
        .executableTarget(name: "fuzz-imatrix", dependencies: ["FuzzTargets"], path: "Fuzz/imatrix"),
        .executableTarget(name: "fuzz-tokenizer", dependencies: ["FuzzTargets"], path: "Fuzz/tokenizer"),
        .executableTarget(name: "fuzz-manifest", dependencies: ["FuzzTargets"], path: "Fuzz/manifest"),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets"]),
        .testTarget(name: "StrictJSONTests", dependencies: ["StrictJSON"]),
        .testTarget(name: "WorkersTests", dependencies: ["Workers"]),
        .testTarget(name: "GGMLCoreTests", dependencies: ["GGMLCore", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "ComparisonTests", dependencies: ["Comparison", "Batch", "Reports", "Calibration"]),
        .testTarget(name: "MappedIOTests", dependencies: ["MappedIO"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "StrictJSON", "CZlib"]),
        .testTarget(name: "BatchTests", dependencies: ["Batch", "Reports", "StrictJSON", "MappedIO"]),
        .testTarget(name: "CalibrationTests", dependencies: [
            "Calibration", "CKernels", "GGUFWriter", "GGMLCore", "MappedIO", "Inference", "Families", "Quantizers", "Tokenizer", "Conversion", "Evaluation", "Workers",
        ]),
        .testTarget(name: "EvaluationTests", dependencies: [
            "Evaluation", "Inference", "Families", "Conversion", "GGMLCore", "GGUFWriter", "MappedIO",
        ]),
        .testTarget(name: "SafetensorsReaderTests", dependencies: [
            "SafetensorsReader", "MappedIO", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "GGUFWriterTests", dependencies: ["GGUFWriter", "GGMLCore", "MappedIO"]),
        .testTarget(name: "QuantizersTests", dependencies: ["Quantizers", "GGMLCore"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "Quantizers", "GGMLCore", "CKernels"]),
        .testTarget(name: "ModelMappingTests", dependencies: ["ModelMapping", "StrictJSON", "GGUFWriter"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "GGUFWriter"]),
        .testTarget(name: "ConversionTests", dependencies: [
            "Conversion", "GGUFWriter", "GGMLCore", "StrictJSON", "MappedIO", "ModelMapping", "Quantizers", "SafetensorsReader",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
