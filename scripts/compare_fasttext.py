"""Compare dsmath's classifier (the pure-Rust `fasttext` crate) with fastText itself (PyPI
`fasttext-numpy2`, the C++ library) on the same mini-crawl split, in one run.

    pip install fasttext-numpy2
    python scripts/compare_fasttext.py            # prints a table; --fixture also rewrites the
                                                  # committed C++-trained model fixture

Reports accuracy (must agree within 1 point), training words/s and prediction docs/s as
Rust / C++ ratios, and checks the two `.bin` formats load both ways.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import fasttext

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "data", "tests", "fixtures")


def cargo_example(name, *args):
    env = dict(os.environ)
    out = subprocess.run(
        ["cargo", "run", "-q", "--release", "-p", "dsmath-data", "--example", name, "--", *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.exit(f"cargo example {name} failed:\n{out.stderr}")
    return out.stdout


def cpp(train, test, dim, epoch, lr, bucket, threads):
    words = sum(len(l.split()) - 1 for l in open(train))
    t = time.time()
    m = fasttext.train_supervised(train, dim=dim, lr=lr, wordNgrams=3, minCount=3, epoch=epoch, bucket=bucket,
                                  thread=threads, verbose=0, seed=0)
    train_s = time.time() - t
    lines = [l.rstrip("\n").split(" ", 1) for l in open(test)]
    t = time.time()
    preds = [m.predict(text, k=2) for _, text in lines]
    predict_s = time.time() - t
    scores = [dict(zip(labels, probs)).get("__label__math", 0.0) for labels, probs in preds]
    right = sum((s >= 0.5) == (lab == "__label__math") for s, (lab, _) in zip(scores, lines))
    return m, {"accuracy": right / len(lines), "train_seconds": train_s, "train_words_per_s": words * epoch / train_s,
               "predict_docs_per_s": len(lines) / predict_s, "scores": scores}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", action="store_true", help="rewrite data/tests/fixtures/fasttext_cpp_*")
    ap.add_argument("--fixture-only", action="store_true", help="only rewrite the fixture")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dsmath-ft-")
    print(cargo_example("classifier_split", work).strip())
    train, test = os.path.join(work, "train.txt"), os.path.join(work, "test.txt")
    rows = []
    settings = [] if args.fixture_only else [("paper (dim 256, 3 ep, lr 0.1)", 256, 3, 0.1, 200000),
                                               ("small-data (dim 64, 10 ep, lr 0.5)", 64, 10, 0.5, 200000)]
    for name, dim, epoch, lr, bucket in settings:
        m, c = cpp(train, test, dim, epoch, lr, bucket, args.threads)
        rust_bin = os.path.join(work, "rust.bin")
        r = json.loads(cargo_example("classifier_bench", train, test, dim, epoch, lr, bucket, args.threads, rust_bin))
        # The Rust-written .bin loads in the C++ library and gives the same predictions.
        back = fasttext.load_model(rust_bin)
        lines = [l.rstrip("\n").split(" ", 1)[1] for l in open(test)][:50]
        cpp_on_rust = [dict(zip(*back.predict(t, k=2))).get("__label__math", 0.0) for t in lines]
        max_diff = max(abs(a - b) for a, b in zip(cpp_on_rust, r["scores"][:50]))
        rows.append((name, c, r, max_diff))
    print()
    print("| setting | C++ acc | Rust acc | train words/s C++ | Rust | ratio | predict docs/s C++ | Rust | ratio | Rust .bin in C++: max |dp| |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, c, r, d in rows:
        print(f"| {name} | {100*c['accuracy']:.2f} | {100*r['accuracy']:.2f} | {c['train_words_per_s']:,.0f} | "
              f"{r['train_words_per_s']:,.0f} | {r['train_words_per_s']/c['train_words_per_s']:.2f} | "
              f"{c['predict_docs_per_s']:,.0f} | {r['predict_docs_per_s']:,.0f} | "
              f"{r['predict_docs_per_s']/c['predict_docs_per_s']:.2f} | {d:.2e} |")
    ok = all(abs(c["accuracy"] - r["accuracy"]) <= 0.01 for _, c, r, _ in rows)
    print("accuracy within 1 point:", ok)
    if args.fixture or args.fixture_only:
        # A small C++-trained model the Rust tests must load and reproduce.
        m = fasttext.train_supervised(train, dim=8, lr=0.1, wordNgrams=2, minCount=50, epoch=5, bucket=2000, thread=1,
                                      verbose=0, seed=0)
        os.makedirs(FIXTURE, exist_ok=True)
        m.save_model(os.path.join(FIXTURE, "fasttext_cpp_small.bin"))
        lines = [l.rstrip("\n").split(" ", 1)[1] for l in open(test)][:40]
        expect = [{"text": t[:2000], "math": float(dict(zip(*m.predict(t[:2000], k=2))).get("__label__math", 0.0))} for t in lines]
        with open(os.path.join(FIXTURE, "fasttext_cpp_small.json"), "w") as f:
            json.dump({"made_by": f"fasttext-numpy2 {getattr(fasttext, '__version__', '')}, scripts/compare_fasttext.py",
                       "predictions": expect}, f, ensure_ascii=False, indent=0)
        print("fixture written:", os.path.getsize(os.path.join(FIXTURE, "fasttext_cpp_small.bin")), "bytes")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
