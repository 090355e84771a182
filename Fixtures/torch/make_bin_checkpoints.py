#!/usr/bin/env python3
"""PyTorch .bin versions of two tiny checkpoints, and convert_hf_to_gguf.py's GGUF of each.

  Fixtures/checkpoints/llama-tied-bin/           pytorch_model.bin (one file)
  Fixtures/checkpoints/llama-untied-sharded-bin/ pytorch_model-0000N-of-00002.bin + pytorch_model.bin.index.json
  Fixtures/golden/<variant>-{f16,q8_0}.gguf      what convert_hf_to_gguf.py writes for them

Why: a checkpoint published as pytorch_model.bin must convert exactly as llama.cpp converts it.
The weights are the safetensors fixtures' own, saved with torch.save in the order the model's
state_dict() lists them (not sorted by name, as safetensors' keys are), so the test also proves
that .bin tensors are visited in state-dict order.

Usage: make_bin_checkpoints.py --llama-cpp /work/llama/src   (torch, transformers, safetensors)
"""
import argparse, json, os, shutil, subprocess, sys
from pathlib import Path

import torch
from safetensors.torch import load_file
import transformers

HERE = Path(__file__).resolve().parent
FIX = HERE.parent


def module_order(config_dir: Path, names: set[str]) -> list[str]:
    """The state_dict() order of the model config.json describes, restricted to `names`."""
    config = transformers.AutoConfig.from_pretrained(config_dir)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    order = [k for k in model.state_dict().keys() if k in names]
    rest = sorted(names - set(order))
    return order + rest


def weights(src: Path) -> dict[str, torch.Tensor]:
    index = src / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out: dict[str, torch.Tensor] = {}
    for f in files:
        out.update(load_file(str(src / f)))
    return out


def copy_non_weights(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for p in sorted(src.iterdir()):
        if p.suffix == ".safetensors" or p.name == "model.safetensors.index.json":
            continue
        shutil.copyfile(p, dst / p.name)


def save(sd: dict[str, torch.Tensor], path: Path) -> None:
    # a fixed archive name and contiguous copies make the file reproducible byte for byte
    torch.save({k: v.contiguous().clone() for k, v in sd.items()}, str(path))


def make(variant: str, shards: int) -> Path:
    src = FIX / "checkpoints" / variant
    dst = FIX / "checkpoints" / f"{variant}-bin"
    copy_non_weights(src, dst)
    w = weights(src)
    order = module_order(src, set(w))
    if shards == 1:
        save({k: w[k] for k in order}, dst / "pytorch_model.bin")
    else:
        per = (len(order) + shards - 1) // shards
        weight_map = {}
        for i in range(shards):
            name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
            part = order[i * per:(i + 1) * per]
            save({k: w[k] for k in part}, dst / name)
            weight_map.update({k: name for k in part})
        total = sum(t.numel() * t.element_size() for t in w.values())
        (dst / "pytorch_model.bin.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    return dst


def convert(llama_cpp: Path, model_dir: Path, outtype: str, outfile: Path) -> None:
    env = dict(os.environ)
    env.pop("NO_LOCAL_GGUF", None)
    env["TQDM_DISABLE"] = "1"
    cmd = [sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(model_dir), "--outtype", outtype, "--outfile", str(outfile)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"convert failed for {model_dir} {outtype}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llama-cpp", type=Path, required=True)
    args = ap.parse_args()
    for variant, shards in [("llama-tied", 1), ("llama-untied-sharded", 2)]:
        d = make(variant, shards)
        for t in ["f16", "q8_0"]:
            convert(args.llama_cpp, d, t, FIX / "golden" / f"{d.name}-{t}.gguf")
        print(d, "ok")


if __name__ == "__main__":
    main()
