#!/usr/bin/env python3
"""dsmath vs HF transformers `generate`, same model, same CPU, same thread count, measured in
one run; prints the ratios.

    pip install torch transformers safetensors
    python3 scripts/bench_vs_hf.py [--threads 2] [--new-tokens 64] [--prompt-len 64]
    python3 scripts/bench_vs_hf.py --model runs/smollm2 --batch 1,16,64 --backends flex
                                   # a real checkpoint (cargo xtask convert --gguf ...)

Without --model it writes a ~25M-parameter LLaMA to runs/bench/llama-25m (HF save_pretrained,
random weights, the fixture tokenizer). It builds `xtask` in release, runs `xtask bench` for each
backend, times HF on the same prompt ids, and prints one table.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent


def make_model(path: Path) -> LlamaForCausalLM:
    tok = PreTrainedTokenizerFast.from_pretrained(ROOT / "model/tests/fixtures/tokenizer")
    cfg = LlamaConfig(
        vocab_size=8192, hidden_size=512, intermediate_size=1408, num_hidden_layers=6,
        num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=2048,
        rms_norm_eps=1e-6, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    if not (path / "model.safetensors").exists():
        model.save_pretrained(path)
        tok.save_pretrained(path)
    return LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def best(f, reps):
    f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_hf(model, prompt_len, new_tokens, batches, reps, vocab, pad):
    # The prompt ids of `xtask bench`.
    prompt = [3 + ((i * 7919 + 13) % (vocab - 3)) for i in range(prompt_len)]
    out = {"engine": "hf-transformers", "threads": torch.get_num_threads(),
           "params": sum(p.numel() for p in model.parameters())}
    ids1 = torch.tensor([prompt])
    with torch.inference_mode():
        out["prefill_tok_s"] = prompt_len / best(lambda: model(input_ids=ids1), reps)
        for b in batches:
            ids = torch.tensor([prompt] * b)
            mask = torch.ones_like(ids)

            def gen(n):
                return lambda: model.generate(
                    input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=n,
                    min_new_tokens=n, eos_token_id=None, pad_token_id=pad,
                )

            t_full = best(gen(new_tokens), reps)
            t_one = best(gen(1), reps)
            out[f"decode_b{b}_tok_s"] = b * (new_tokens - 1) / (t_full - t_one)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--model", type=Path, help="an HF checkpoint directory instead of the random 25M LLaMA")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--backends", default="flex,ndarray")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        path = args.model.resolve()
        model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    else:
        path = ROOT / "runs/bench/llama-25m"
        model = make_model(path)
    tok = PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"))
    vocab = min(len(tok), model.config.vocab_size)
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    batches = [int(b) for b in args.batch.split(",")]

    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    subprocess.run(["cargo", "build", "--release", "-p", "xtask", "--features", args.backends],
                   cwd=ROOT, check=True, env=env)
    exe = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")) + "/release/xtask"
    rows = []
    for backend in args.backends.split(","):
        res = subprocess.run(
            [exe, "--backend", backend, "bench", "--model", str(path), "--prompt-len", str(args.prompt_len),
             "--new-tokens", str(args.new_tokens), "--batch", ",".join(map(str, batches)),
             "--reps", str(args.reps)],
            cwd=ROOT, check=True, env=env, capture_output=True, text=True,
        )
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    hf = bench_hf(model, args.prompt_len, args.new_tokens, batches, args.reps, vocab, pad)
    rows.append(hf)

    keys = ["prefill_tok_s"] + [f"decode_b{b}_tok_s" for b in batches]
    print(f"\n{path.name}: {hf['params'] / 1e6:.1f}M params, prompt {args.prompt_len}, {args.new_tokens} new tokens, "
          f"{args.threads} threads, torch {torch.__version__}")
    print(f"{'engine':<22}" + "".join(f"{k:>20}" for k in keys))
    for r in rows:
        name = r["engine"] + ("/" + r["backend"] if "backend" in r else "")
        print(f"{name:<22}" + "".join(f"{r[k]:>20.1f}" for k in keys))
    for r in rows[:-1]:
        print(f"ratio dsmath/{r['backend']} vs HF: " + ", ".join(f"{k} {r[k] / hf[k]:.2f}x" for k in keys))
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    sys.exit(main())
