#!/usr/bin/env python3
"""Grader speed: dsmath (`xtask eval --grade`) vs math-verify on the same answer pairs, one run.

    pip install math-verify
    python3 scripts/bench_grader_vs_math_verify.py [--repeat 20]

Pairs: eval/tests/fixtures/answer_pairs.jsonl, repeated --repeat times. dsmath is timed as the
whole `xtask eval --grade` process (start-up, JSONL I/O, extraction from `\\boxed{}` included);
math-verify as `verify(parse(gold), parse(pred))` in this process. Prints pairs/s and the ratio,
and the agreement of the two graders.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from math_verify import parse, verify

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rows = [json.loads(l) for l in open(ROOT / "eval/tests/fixtures/answer_pairs.jsonl")]
    rows = rows * args.repeat

    subprocess.run(["cargo", "build", "--release", "-p", "xtask"], cwd=ROOT, check=True)
    exe = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")) + "/release/xtask"
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        with open(inp, "w") as f:
            for r in rows:
                f.write(json.dumps({"question": "", "completion": f"\\boxed{{{r['pred']}}}", "gold": r["gold"]}) + "\n")
        t = time.perf_counter()
        subprocess.run([exe, "eval", "--grade", str(inp), "--bench", "math", "--out", str(out)], check=True,
                       capture_output=True)
        t_ds = time.perf_counter() - t
        ours = [json.loads(l)["correct"] for l in open(out)]

    t = time.perf_counter()
    theirs = []
    for r in rows:
        try:
            theirs.append(bool(verify(parse(f"${r['gold']}$"), parse(f"${r['pred']}$"))))
        except Exception:
            theirs.append(False)
    t_mv = time.perf_counter() - t

    n = len(rows)
    agree = sum(a == b for a, b in zip(ours, theirs))
    print(f"{n} pairs ({len(rows) // args.repeat} distinct x {args.repeat})")
    print(f"dsmath (xtask eval --grade, whole process): {t_ds:.3f} s, {n / t_ds:,.0f} pairs/s")
    print(f"math-verify {__import__('math_verify').__version__ if hasattr(__import__('math_verify'), '__version__') else ''}: "
          f"{t_mv:.3f} s, {n / t_mv:,.0f} pairs/s")
    print(f"ratio: dsmath is {t_mv / t_ds:.1f}x faster; verdicts agree on {agree}/{n} ({100 * agree / n:.1f}%)")


if __name__ == "__main__":
    main()
