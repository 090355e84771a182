#!/usr/bin/env python3
"""Writes the PyTorch .bin fixtures of TorchFileTests with real torch.save, and expected.json.

Run from anywhere with the venv that has torch and transformers:

    /work/venv/bin/python Fixtures/torch/make_torch_fixtures.py

Every file is reproducible: weights come from fixed seeds, torch.save is deterministic for a given
file name (the archive folder is the file's stem, and the serialization id is derived from the
contents), and the re-zipped file uses fixed timestamps.

expected.json lists, for each readable fixture, what convert_hf_to_gguf sees: the keys of
torch.load(path, map_location="cpu", mmap=True, weights_only=True) in iteration order, each with
its dtype (safetensors spelling), shape and the sha256 of its raw little-endian bytes.
"""

import collections
import hashlib
import json
import os
import pickle
import pickletools
import warnings
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL", torch.uint16: "U16", torch.float8_e4m3fn: "F8_E4M3",
}


def path(name):
    return os.path.join(HERE, name)


def describe(p):
    sd = torch.load(p, map_location="cpu", mmap=True, weights_only=True)
    out = []
    for name in sd.keys():
        t = sd[name]
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        out.append({"name": name, "dtype": DTYPES[t.dtype], "shape": list(t.shape),
                    "sha256": hashlib.sha256(raw).hexdigest()})
    return out


def state_dict_fixture():
    """A Module's state_dict() (an OrderedDict carrying _metadata, hence a BUILD) plus the cases a
    reader must get right: f16/bf16, a 1-D and a 0-D tensor, two names sharing one storage, a view
    at a storage_offset, an nn.Parameter (_rebuild_parameter), an int64 buffer, a size-1 dimension
    with an arbitrary stride."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    sd = m.state_dict()
    w = torch.randn(3, 4)
    sd["tied.a"] = w
    sd["half.bias"] = torch.randn(5).half()
    sd["tied.b"] = w
    sd["bf16.weight"] = torch.randn(2, 3).bfloat16()
    sd["row.view"] = w[1]
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2))
    sd["position_ids"] = torch.arange(6).unsqueeze(0)
    sd["scalar"] = torch.tensor(1.5)
    sd["odd_stride"] = torch.as_strided(torch.randn(8), (1, 4), (7, 1), 2)
    torch.save(sd, path("state_dict.bin"))


def float8_fixture():
    """dtypes without a legacy storage class: _rebuild_tensor_v3 over an UntypedStorage."""
    torch.manual_seed(1)
    sd = {
        "f8": torch.randn(2, 3).to(torch.float8_e4m3fn),
        "u16": torch.arange(4, dtype=torch.int32).to(torch.uint16),
    }
    torch.save(sd, path("float8.bin"))


def tiny_llama_fixture():
    """What transformers 4.x save_pretrained(safe_serialization=False) wrote: a plain dict of
    contiguous tensors, in state_dict order, in pytorch_model.bin (transformers 5 only writes
    safetensors, so the dict is saved the way 4.x did)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=300, max_position_embeddings=64,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    torch.manual_seed(2)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(torch.randn(p.shape) * 0.02)
    d = path("tiny-llama")
    os.makedirs(d, exist_ok=True)
    cfg.architectures = ["LlamaForCausalLM"]
    cfg.to_json_file(os.path.join(d, "config.json"))
    shard = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(shard, os.path.join(d, "pytorch_model.bin"))


def save_legacy(sd, p):
    """The pre-1.6 format names each storage by its memory address; the keys are renumbered (same
    length, so every offset stays valid) to make the file reproducible."""
    torch.save(sd, p, _use_new_zipfile_serialization=False)
    with open(p, "rb") as f:
        data = f.read()
    # Five pickles (magic, protocol, sys_info, the object, the storage keys), then raw storages.
    # pickletools only parses; nothing is unpickled.
    pos, strings = 0, []
    for _ in range(5):
        ops = list(pickletools.genops(data[pos:]))
        strings = [arg for op, arg, _ in ops if isinstance(arg, str)]
        pos += ops[-1][2] + 1
    header = data[:pos]
    for i, key in enumerate(strings):
        header = header.replace(key.encode(), str(i + 1).rjust(len(key), "0").encode())
    with open(p, "wb") as f:
        f.write(header + data[pos:])
    back = torch.load(p, weights_only=True)
    assert all(torch.equal(back[k], sd[k]) for k in sd), "renumbered legacy file does not load back"


def refused_fixtures():
    torch.manual_seed(3)
    w = torch.randn(3, 4)
    # torch.save keeps strides: the transpose is saved as a strided view of w's storage.
    torch.save({"ok": w, "t": w.t()}, path("noncontiguous.bin"))
    torch.save({"weight": w, "step": 3}, path("not_tensor.bin"))
    save_legacy({"a": torch.arange(4, dtype=torch.float32)}, path("legacy.bin"))
    # Protocol 4 brings MEMOIZE and STACK_GLOBAL, which torch's own weights_only loader refuses.
    torch.save({"a": torch.arange(4, dtype=torch.float32)}, path("protocol4.bin"), pickle_protocol=4)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(path("protocol4.bin"), weights_only=True)
    except pickle.UnpicklingError:
        pass
    else:
        raise SystemExit("torch.load(weights_only=True) unexpectedly read protocol4.bin")
    # A valid torch file whose entries someone re-zipped with deflate.
    torch.save({"a": torch.zeros(64)}, path("deflate_src.bin"))
    with zipfile.ZipFile(path("deflate_src.bin")) as src, zipfile.ZipFile(path("deflated.bin"), "w") as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename.replace("deflate_src/", "deflated/"), date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(zi, src.read(info.filename))
    os.remove(path("deflate_src.bin"))


def main():
    state_dict_fixture()
    float8_fixture()
    tiny_llama_fixture()
    refused_fixtures()
    expected = {name: describe(path(name))
                for name in ["state_dict.bin", "float8.bin", "tiny-llama/pytorch_model.bin"]}
    with open(path("expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    if os.environ.get("DIS"):
        with zipfile.ZipFile(path("state_dict.bin")) as z:
            pickletools.dis(z.read("state_dict/data.pkl"))


if __name__ == "__main__":
    main()
