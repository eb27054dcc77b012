#!/usr/bin/env python3
"""Training throughput: dsmath (burn-flex and burn-ndarray) vs PyTorch on the CPU, same ~25M-parameter
LLaMA config (`bench_25m`: 6 layers, width 512, SwiGLU 1408, 8 heads, vocab 8192), same batch and
sequence length, same thread count, measured side by side in one run (Training issue, item 8).
Each step is also split into forward (to the loss), backward, and clipping + AdamW.

A step is what `cargo xtask train` does: forward, next-token cross-entropy, backward, global
gradient-norm clipping to 1.0, AdamW (beta 0.9/0.95, weight decay 0.1). Each engine runs in its
own process; we report the median step time, tokens/s, achieved FLOP/s (6 N + 12 L d s per
token, embedding lookups excluded), the engine's own measured 1024^3 f32 matmul GFLOP/s, and the
process's peak RSS.

    pip install torch transformers
    python3 scripts/bench_train_vs_torch.py [--threads 2] [--batch 8] [--seq-len 256] [--steps 3] [--repeat 5]

`--repeat R` runs every engine R times, alternating (dsmath rows, then PyTorch, R rounds), and
reports each engine's median step over the rounds, the ratio of the medians, and the range of
the per-round ratios: on a shared VM whose speed drifts by tens of percent over minutes, a single
round compares two engines measured at different machine speeds.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def torch_child(args):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(5))
    matmul_gflops = 2 * n ** 3 / best / 1e9
    cfg = LlamaConfig(vocab_size=args.vocab, hidden_size=512, intermediate_size=1408, num_hidden_layers=6,
                      num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=2048,
                      rms_norm_eps=1e-6, tie_word_embeddings=False, attn_implementation="sdpa")
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).train()
    decay = [p for n_, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n_]
    no_decay = [p for n_, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n_)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, args.vocab, (args.batch, args.seq_len), generator=g)
    times, phases = [], []
    for step in range(args.steps + 1):
        t = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        t_fwd = time.perf_counter() - t
        loss.backward()
        t_bwd = time.perf_counter() - t
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t_step = time.perf_counter() - t
        if step == 0:
            first = loss.item()
        else:
            times.append(t_step)
            phases.append((t_fwd, t_bwd - t_fwd, t_step - t_bwd))
    step_s = sorted(times)[len(times) // 2]
    phase = [sorted(p[i] for p in phases)[len(phases) // 2] for i in range(3)]
    params = sum(p.numel() for p in model.parameters())
    embed = args.vocab * 512
    tokens = args.batch * args.seq_len
    fpt = 6 * (params - embed) + 12 * 6 * 512 * args.seq_len
    print(json.dumps({
        "engine": "pytorch", "backend": f"torch {torch.__version__}", "threads": torch.get_num_threads(), "params": params,
        "batch": args.batch, "seq_len": args.seq_len, "first_loss": first, "step_s": step_s, "tok_s": tokens / step_s,
        "forward_s": phase[0], "backward_s": phase[1], "optimizer_s": phase[2],
        "gflops": fpt * tokens / step_s / 1e9, "matmul_gflops": matmul_gflops,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--backends", default="flex,ndarray")
    ap.add_argument("--repeat", type=int, default=1, help="alternating rounds of every engine (medians reported)")
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_child:
        return torch_child(args)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    subprocess.run(["cargo", "build", "--release", "-p", "xtask", "--features", "flex,ndarray"], cwd=ROOT, check=True, env=env)
    exe = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")) + "/release/xtask"
    common = ["--batch", str(args.batch), "--seq-len", str(args.seq_len), "--steps", str(args.steps), "--vocab", str(args.vocab)]
    rounds = []  # rounds[r] = [dsmath rows..., torch row]
    for _ in range(args.repeat):
        rows = []
        for backend in args.backends.split(","):
            for extra in ([], ["--checkpointing"]) if backend == "flex" else ([],):
                out = subprocess.run([exe, "--backend", backend, "train-bench", *common, *extra], cwd=ROOT, check=True, env=env,
                                     capture_output=True, text=True).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
        out = subprocess.run([sys.executable, __file__, "--torch-child", "--threads", str(args.threads), *common], check=True, env=env,
                             capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        rounds.append(rows)
    # Each engine's round with the median step time (a real measurement, not a mix of rounds).
    rows = [sorted((rnd[i] for rnd in rounds), key=lambda r: r["step_s"])[len(rounds) // 2] for i in range(len(rounds[0]))]
    torch_row = rows[-1]
    print(f"\nLLaMA {torch_row['params'] / 1e6:.1f}M params, batch {args.batch} x {args.seq_len} tokens, {args.threads} threads, "
          f"median of {args.steps} steps after a warm-up" + (f"; each engine's median round of {args.repeat} alternating rounds" if args.repeat > 1 else ""))
    print(f"{'engine':<28}{'step s':>9}{'fwd s':>8}{'bwd s':>8}{'opt s':>8}{'tok/s':>9}{'GFLOP/s':>9}{'matmul GFLOP/s':>16}"
          f"{'of peak':>9}{'peak RSS MiB':>14}{'first loss':>11}")
    for r in rows:
        name = r["engine"] + "/" + r["backend"] + (" +ckpt" if r.get("checkpointing") else "")
        print(f"{name:<28}{r['step_s']:>9.3f}{r['forward_s']:>8.3f}{r['backward_s']:>8.3f}{r['optimizer_s']:>8.3f}{r['tok_s']:>9.1f}"
              f"{r['gflops']:>9.2f}{r['matmul_gflops']:>16.2f}{r['gflops'] / r['matmul_gflops']:>9.0%}{r['peak_rss_mib']:>14.0f}"
              f"{r['first_loss']:>11.3f}")
    for i, r in enumerate(rows[:-1]):
        per_round = sorted(rnd[i]["tok_s"] / rnd[-1]["tok_s"] for rnd in rounds)
        spread = f" (per-round ratios {per_round[0]:.2f}-{per_round[-1]:.2f})" if len(rounds) > 1 else ""
        print(f"ratio dsmath/{r['backend']}{' +ckpt' if r.get('checkpointing') else ''} vs PyTorch: tokens/s {r['tok_s'] / torch_row['tok_s']:.2f}x{spread}, "
              f"peak RSS {r['peak_rss_mib'] / torch_row['peak_rss_mib']:.2f}x")
    print(json.dumps({"rows": rows, "rounds": rounds}))


if __name__ == "__main__":
    sys.exit(main())
