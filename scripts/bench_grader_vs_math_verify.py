#!/usr/bin/env python3
"""Grader speed: dsmath (`xtask eval --grade`) vs math-verify on the same inputs, one run.

    pip install math-verify
    python3 scripts/bench_grader_vs_math_verify.py [--set real|pairs|both] [--repeat 20]

Two sets. `real` (ordinary model output): the labelled GSM8K test solutions with their `#### N`
line removed (graded against N) and MATH test solutions (against their `\\boxed{}` answer), as whole
completions, plus the SmolLM2-135M-Instruct completions in
eval/tests/fixtures/smollm2_completions.jsonl; both graders extract the answer from the text.
`pairs`: eval/tests/fixtures/answer_pairs.jsonl (hostile pairs included) x --repeat, each pred
wrapped in `\\boxed{}`. dsmath is timed as the whole `xtask eval --grade` process (start-up,
JSONL I/O and extraction included); math-verify as `verify(parse(gold), parse(completion))` in
this process. Prints items/s, the ratio and the agreement of the two graders.
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


def real_rows():
    rows = []
    for line in open(ROOT / "eval/data/gsm8k/test.jsonl"):
        v = json.loads(line)
        sol, gold = v["answer"].rsplit("####", 1)
        rows.append(("gsm8k", sol.strip(), gold.strip().replace(",", "")))
    for line in open(ROOT / "eval/data/math/test.jsonl"):
        v = json.loads(line)
        b = boxed(v["solution"])
        if b is not None:
            rows.append(("math", v["solution"], b))
    smol = ROOT / "eval/tests/fixtures/smollm2_completions.jsonl"
    if smol.exists():
        for line in open(smol):
            v = json.loads(line)
            rows.append(("math", v["completion"], v["gold"]))
    return rows


def boxed(text):
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    depth = 0
    for k in range(i + len("\\boxed"), len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return text[i + len("\\boxed{"): k]
    return None


def run(name, rows, exe):
    """rows: (bench, completion, gold). Both graders on every row; prints one table line each."""
    with tempfile.TemporaryDirectory() as tmp:
        t_ds = 0.0
        ours = []
        for bench in sorted({b for b, _, _ in rows}):
            part = [r for r in rows if r[0] == bench]
            inp, out = Path(tmp) / f"{bench}.jsonl", Path(tmp) / f"{bench}-out.jsonl"
            with open(inp, "w") as f:
                for _, c, g in part:
                    f.write(json.dumps({"question": "", "completion": c, "gold": g}) + "\n")
            t = time.perf_counter()
            subprocess.run([exe, "eval", "--grade", str(inp), "--bench", bench, "--out", str(out)], check=True,
                           capture_output=True)
            t_ds += time.perf_counter() - t
            ours += [json.loads(l)["correct"] for l in open(out)]
    rows = sorted(rows, key=lambda r: r[0])
    t = time.perf_counter()
    theirs = []
    for _, c, g in rows:
        try:
            theirs.append(bool(verify(parse(f"${g}$"), parse(c))))
        except Exception:
            theirs.append(False)
    t_mv = time.perf_counter() - t
    n = len(rows)
    agree = sum(a == b for a, b in zip(ours, theirs))
    print(f"[{name}] {n} items; dsmath correct {sum(ours)}, math-verify correct {sum(theirs)}")
    print(f"[{name}] dsmath (xtask eval --grade, whole process): {t_ds:.3f} s, {n / t_ds:,.0f} items/s")
    print(f"[{name}] math-verify: {t_mv:.3f} s, {n / t_mv:,.0f} items/s")
    print(f"[{name}] ratio: dsmath is {t_mv / t_ds:.1f}x faster; verdicts agree on {agree}/{n} ({100 * agree / n:.1f}%)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=["real", "pairs", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-p", "xtask"], cwd=ROOT, check=True)
    exe = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")) + "/release/xtask"
    if args.set in ("real", "both"):
        run("real", real_rows(), exe)
    if args.set in ("pairs", "both"):
        pairs = [json.loads(l) for l in open(ROOT / "eval/tests/fixtures/answer_pairs.jsonl")] * args.repeat
        run("pairs", [("math", f"\\boxed{{{r['pred']}}}", r["gold"]) for r in pairs], exe)


if __name__ == "__main__":
    main()
