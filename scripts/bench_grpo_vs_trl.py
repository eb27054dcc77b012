#!/usr/bin/env python3
"""One GRPO step, dsmath vs TRL's GRPOTrainer, on the same real checkpoint (SmolLM2-135M-Instruct
converted by `cargo xtask convert --gguf`), the same prompts (the generated arithmetic problems,
one user turn through the model's chat template with DeepSeekMath's \\boxed{} instruction), the
same G, prompts per step, max completion length, temperature, beta, lr, epsilon-high and loss
(token mean, TRL's `dapo`), on the CPU with the same thread count, measured in one run.

Reported per engine: seconds per step and completion tokens per second of a whole step (the mean
over the steps after the first, which warms up), and the peak resident memory of the process.
TRL runs with its defaults otherwise (gradient checkpointing on, as GRPOConfig has it; pass
--trl-gradient-checkpointing 0 for the faster, larger variant).

    pip install torch transformers trl datasets accelerate
    cargo build --release -p xtask
    python3 scripts/bench_grpo_vs_trl.py --model runs/smollm2 --prompts runs/arith/train.jsonl \
        [--prompts-per-step 4 --group 8 --max-new 128 --steps 3 --threads 2]
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."


def last_answer(text):
    """\\boxed{...} if present, else the last number (the reward only decides learning signal
    here; both engines are timed on the same shapes)."""
    m = re.findall(r"\\boxed\{([^{}]*)\}", text)
    if m:
        return m[-1].strip()
    nums = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return nums[-1] if nums else None


def run_trl(args, prompts):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    data = Dataset.from_list(
        [{"prompt": [{"role": "user", "content": q + INSTRUCTION}], "gold": g} for q, g in prompts]
    )

    def reward(completions, gold, **_):
        out = []
        for c, g in zip(completions, gold):
            a = last_answer(c[0]["content"] if isinstance(c, list) else c)
            try:
                out.append(float(a is not None and abs(float(a) - float(g)) < 1e-6))
            except ValueError:
                out.append(0.0)
        return out

    class Timer(TrainerCallback):
        def __init__(self):
            self.steps = []
            self.t = None

        def on_step_begin(self, *_, **__):
            self.t = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.steps.append({"seconds": time.perf_counter() - self.t})

        def on_log(self, _a, _s, _c, logs=None, **__):
            if logs and "completions/mean_length" in logs and self.steps:
                self.steps[-1]["tokens"] = logs["completions/mean_length"] * args.prompts_per_step * args.group
                self.steps[-1]["reward"] = logs.get("reward")

    cfg = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-grpo-"),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=args.prompts_per_step * args.group,
        gradient_accumulation_steps=1,
        num_generations=args.group,
        max_completion_length=args.max_new,
        temperature=args.temperature,
        beta=args.beta,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        epsilon_high=0.28,
        loss_type="dapo",
        max_steps=args.steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        gradient_checkpointing=bool(args.trl_gradient_checkpointing),
        seed=0,
    )
    timer = Timer()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=data,
                          processing_class=tok, callbacks=[timer])
    trainer.train()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"steps": timer.steps, "peak_rss_bytes": rss}


def run_dsmath(args):
    out = Path(tempfile.mkdtemp(prefix="dsmath-grpo-"))
    cfg = (ROOT / args.dsmath_config).read_text()
    # The same shapes and hyper-parameters as the TRL run, on the given model and prompts.
    over = {
        "init": f'"{Path(args.model).resolve()}"',
        "prompts": f'"{Path(args.prompts).resolve()}"',
        "group_size": args.group,
        "prompts_per_step": args.prompts_per_step,
        "max_new_tokens": args.max_new,
        "temperature": args.temperature,
        "beta": args.beta,
        "peak_lr": args.lr,
        "checkpoint_every": 0,
    }
    if args.micro_batch:
        over["micro_batch"] = args.micro_batch
    lines = []
    for line in cfg.splitlines():
        key = line.split("=")[0].strip()
        if key in over and "=" in line:
            line = f"{key} = {over[key]}"
        lines.append(line)
    (out / "bench.toml").write_text("\n".join(lines) + "\n")
    xtask = os.environ.get("DSMATH_XTASK", str(ROOT / "target/release/xtask"))
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    cmd = [xtask, "grpo", "--config", str(out / "bench.toml"), "--out", str(out / "run"), "--steps", str(args.steps)]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    steps = []
    for line in (out / "run/metrics.jsonl").read_text().splitlines():
        m = json.loads(line)
        steps.append({"seconds": m["step_seconds"], "tokens": m["response_len_mean"] * args.prompts_per_step * args.group,
                      "reward": m["reward_mean"]})
    return {"steps": steps, "peak_rss_bytes": rss}


def summary(name, r):
    steps = r["steps"][1:] or r["steps"]  # the first step warms up
    secs = sum(s["seconds"] for s in steps)
    toks = sum(s.get("tokens", 0) for s in steps)
    return {"engine": name, "steps_timed": len(steps), "seconds_per_step": secs / len(steps),
            "completion_tokens_per_s": toks / secs, "peak_rss_gb": r["peak_rss_bytes"] / 1e9, "steps": r["steps"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="runs/smollm2")
    ap.add_argument("--prompts", default="runs/arith/train.jsonl")
    ap.add_argument("--dsmath-config", default="configs/grpo-smollm2.toml")
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--max-new", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--beta", type=float, default=0.02)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trl-gradient-checkpointing", type=int, default=1)
    ap.add_argument("--micro-batch", type=int, default=0, help="dsmath's grpo.micro_batch (0: the config's)")
    ap.add_argument("--only", choices=["dsmath", "trl"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    prompts = []
    for line in Path(args.prompts).read_text().splitlines():
        if line.strip():
            v = json.loads(line)
            prompts.append((v["question"], str(v["gold"])))
    if args.only == "trl":
        print(json.dumps(run_trl(args, prompts)))
        return
    if args.only == "dsmath":
        print(json.dumps(run_dsmath(args)))
        return
    # Each engine in its own process, so that each peak RSS is its own.
    res = {}
    for name in ["dsmath", "trl"]:
        out = subprocess.run([sys.executable, __file__, "--only", name] + sys.argv[1:], check=True,
                             capture_output=True, text=True)
        sys.stderr.write(out.stderr[-3000:])
        res[name] = summary(name, json.loads(out.stdout.strip().splitlines()[-1]))
    d, t = res["dsmath"], res["trl"]
    print(json.dumps(res, indent=1))
    print(f"threads {args.threads}, {args.prompts_per_step} prompts x G = {args.group} x <= {args.max_new} tokens")
    for r in (d, t):
        print(f"{r['engine']:>7}: {r['seconds_per_step']:.1f} s/step, {r['completion_tokens_per_s']:.1f} completion tok/s, peak RSS {r['peak_rss_gb']:.2f} GB")
    print(f"dsmath / TRL: throughput {d['completion_tokens_per_s'] / t['completion_tokens_per_s']:.2f}x, "
          f"peak RSS {d['peak_rss_gb'] / t['peak_rss_gb']:.2f}x")


if __name__ == "__main__":
    main()
