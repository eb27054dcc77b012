#!/usr/bin/env python3
"""GRPO rollout throughput: dsmath's generation engine vs HF transformers `generate` on the same
tiny model (the demo's SFT model, train/tests/fixtures/arith_sft), the same prompts (8 arithmetic
questions in the DeepSeekMath-Instruct format), G = 8 samples per question at temperature 1,
up to 48 new tokens, stopping at EOS; same CPU and thread count, measured in one run (GRPO issue,
item 9). Throughput counts generated tokens up to and including EOS (HF's padding after a row
finishes is not counted).

    pip install torch transformers safetensors
    python3 scripts/bench_rollout_vs_hf.py [--threads 2] [--reps 3] [--preset bench_25m]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "train/tests/fixtures/arith_sft"


def hf_rollout(model, prompt_ids, group, max_new, eos, pad, reps):
    width = max(len(p) for p in prompt_ids)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids])
    runs = []
    with torch.inference_mode():
        for rep in range(reps + 1):
            torch.manual_seed(rep)
            t = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                 num_return_sequences=group, max_new_tokens=max_new, eos_token_id=eos, pad_token_id=pad)
            secs = time.perf_counter() - t
            new = out[:, width:].tolist()
            tokens = 0
            for row in new:
                for tok in row:
                    tokens += 1
                    if tok in eos:
                        break
            if rep > 0:  # rep 0 warms up
                runs.append((tokens, secs))
    tokens = sum(r[0] for r in runs)
    secs = sum(r[1] for r in runs)
    return {"engine": "hf-transformers", "threads": torch.get_num_threads(), "tokens": tokens, "seconds": secs, "tok_s": tokens / secs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--preset", help="a random model of this preset (bench_25m) with the same tokenizer and prompts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    subprocess.run(["cargo", "build", "--release", "-p", "xtask", "--features", "flex,ndarray"], cwd=ROOT, check=True, env=env)
    exe = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")) + "/release/xtask"
    preset = ["--preset", args.preset] if args.preset else []
    model_dir = ROOT / f"runs/bench/rl/model-{args.preset}" if args.preset else MODEL
    res = subprocess.run([exe, "rl-bench", "--rollout-only", "--reps", str(args.reps), "--model", str(MODEL), *preset],
                         cwd=ROOT, check=True, env=env, capture_output=True, text=True)
    ds = json.loads(res.stdout.strip().splitlines()[-1])
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    eos = ds["eos"] if isinstance(ds["eos"], list) else [ds["eos"]]
    hf = hf_rollout(model, ds["prompt_ids"], ds["group"], ds["max_new_tokens"], eos, ds["pad"], args.reps)
    params = sum(p.numel() for p in model.parameters())
    print(f"\nmodel {model_dir.name} ({params / 1e6:.2f}M params), {len(ds['prompt_ids'])} prompts x {ds['group']} samples, "
          f"<= {ds['max_new_tokens']} new tokens, T=1, {args.reps} timed reps, {args.threads} threads, torch {torch.__version__}")
    for r in (ds, hf):
        print(f"{r['engine']:<16} {r['tokens']:>7} tokens {r['seconds']:>8.3f} s {r['tok_s']:>10.1f} tok/s")
    print(f"ratio dsmath / HF: {ds['tok_s'] / hf['tok_s']:.2f}x")
    ds.pop("prompt_ids")
    print(json.dumps({"dsmath": ds, "hf": hf}))


if __name__ == "__main__":
    sys.exit(main())
