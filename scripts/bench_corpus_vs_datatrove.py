#!/usr/bin/env python3
"""Corpus stages (DeepSeekMath §2.1) against datatrove 0.10, per core, in one run on the same input.

Two comparisons, each side pinned to one core (`taskset -c CORE` for dsmath, sched_setaffinity for
datatrove, whose extractor subprocess inherits it):

* extraction: WARC -> text documents. dsmath: `xtask corpus extract` (math-aware HTML to text,
  language id) on the WARC files; datatrove: `WarcReader` -> `Trafilatura` (its default
  extractor, favour_precision, in its timeout sandbox) on the same files. Both read and decompress
  the files themselves; the rate is HTML responses per second (the records both extract).
* MinHash signatures: datatrove's `MinhashDedupSignature` (5-grams, 14 buckets x 8 hashes, its
  default English word tokenizer, signatures written and sorted per bucket) against the
  signature stage of `xtask corpus dedup` (the same 14 x 8 over word 5-grams, one file per part),
  both on the documents dsmath extracted. dsmath's time is what its dedup log reports for the
  signature files; the whole dedup stage (URL, exact, bands, clusters, filter) is printed beside.

Needs: pip install "datatrove[processing]==0.10.*" "xxhash<4" spacy trafilatura lxml_html_clean
warcio zstandard, and a release xtask (`cargo build --release -p xtask`). Prints a table and one
JSON line.

  python3 scripts/bench_corpus_vs_datatrove.py [--repeat 3] [--core 0]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARCS = [
    "data/web/mini-crawl.warc.gz",
    "data/web/cc-sample-0000.warc.gz",
    "data/web/cc-sample-0001.warc.gz",
]


def xtask_corpus(xtask, core, stage, cfg, out):
    t = time.perf_counter()
    p = subprocess.run(
        ["taskset", "-c", str(core), xtask, "corpus", stage, "--config", cfg, "--out", out],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"xtask corpus {stage} failed:\n{p.stderr}")
    return wall, p.stderr


def read_zst_jsonl(path):
    import zstandard

    with open(path, "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f).read()
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def datatrove_extract(warcs):
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader

    reader = WarcReader(data_folder=str(ROOT / "data/web"), glob_pattern="*.warc.gz")
    reader_files = sorted(Path(w).name for w in warcs)
    # One untimed read first (warcio's imports, the page cache), then reading and decompressing
    # inside the timed region, as dsmath's extract does.
    for name in reader_files:
        for _ in reader.read_file(name):
            pass
    t = time.perf_counter()
    docs = []
    for name in reader_files:
        docs.extend(reader.read_file(name))
    html = len(docs)
    out = list(Trafilatura().run(iter(docs)))
    return time.perf_counter() - t, html, len(out)


def datatrove_signatures(texts, folder):
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    step = MinhashDedupSignature(output_folder=folder, config=MinhashConfig())
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    step.get_shingles("load the word tokenizer before the clock starts")
    t = time.perf_counter()
    res = step.run(iter(docs), rank=0, world_size=1)
    if res is not None:
        for _ in res:
            pass
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xtask", default=str(ROOT / "target/release/xtask"))
    ap.add_argument("--repeat", type=int, default=3, help="runs per side; the fastest is kept")
    ap.add_argument("--core", type=int, default=0)
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.core})
    warcs = [str(ROOT / w) for w in WARCS]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = tmp / "corpus.toml"
        cfg.write_text(
            "[corpus]\ninputs = [%s]\nmin_chars = 0\n" % ", ".join(json.dumps(w) for w in warcs)
        )
        ext_s, sig_s, dedup_s = [], [], []
        run = None
        for r in range(args.repeat):
            run = tmp / f"run-{r}"
            wall, _ = xtask_corpus(args.xtask, args.core, "extract", str(cfg), str(run))
            ext_s.append(wall)
            wall, log = xtask_corpus(args.xtask, args.core, "dedup", str(cfg), str(run))
            dedup_s.append(wall)
            sig_s.append(sum(float(x) for x in re.findall(r"signatures of .* in ([0-9.]+) s", log)))
        done = json.loads((run / "extract/_done").read_text())
        html = sum(f["extract"]["responses"] - f["extract"]["skipped_non_html"] - f["extract"]["skipped_status"] for f in done["files"])
        ds_docs = done["documents"]
        texts = []
        for f in sorted((run / "extract").glob("part-*.jsonl.zst")):
            texts.extend(d["text"] for d in read_zst_jsonl(f))

        dt_ext = []
        for _ in range(args.repeat):
            s, dt_html, dt_docs = datatrove_extract(warcs)
            dt_ext.append(s)
        dt_sig = [datatrove_signatures(texts, str(tmp / f"dt-sigs-{r}")) for r in range(args.repeat)]

    words = sum(len(t.split()) for t in texts)
    res = {
        "machine_cores_used": 1,
        "html_responses": html,
        "extract": {
            "dsmath_s": min(ext_s),
            "dsmath_docs": ds_docs,
            "datatrove_s": min(dt_ext),
            "datatrove_html_responses": dt_html,
            "datatrove_docs": dt_docs,
        },
        "minhash": {
            "documents": len(texts),
            "words": words,
            "dsmath_signature_s": min(sig_s),
            "dsmath_dedup_stage_s": min(dedup_s),
            "datatrove_signature_s": min(dt_sig),
        },
    }
    e, m = res["extract"], res["minhash"]
    e["dsmath_responses_per_s"] = html / e["dsmath_s"]
    e["datatrove_responses_per_s"] = dt_html / e["datatrove_s"]
    e["ratio"] = e["dsmath_responses_per_s"] / e["datatrove_responses_per_s"]
    m["dsmath_docs_per_s"] = len(texts) / m["dsmath_signature_s"]
    m["datatrove_docs_per_s"] = len(texts) / m["datatrove_signature_s"]
    m["ratio"] = m["dsmath_docs_per_s"] / m["datatrove_docs_per_s"]
    m["ratio_whole_dedup_stage"] = m["datatrove_signature_s"] / m["dsmath_dedup_stage_s"]
    print(f"one core (#{args.core}), best of {args.repeat}")
    print(f"| stage | input | dsmath | datatrove 0.10 | ratio |")
    print(f"|---|---|---:|---:|---:|")
    print(
        f"| extract (WARC -> text) | {html} HTML responses ({dt_html} for datatrove) | "
        f"{e['dsmath_s']:.2f} s, {e['dsmath_responses_per_s']:.0f}/s, {ds_docs} docs | "
        f"{e['datatrove_s']:.2f} s, {e['datatrove_responses_per_s']:.1f}/s, {dt_docs} docs | {e['ratio']:.1f}x |"
    )
    print(
        f"| MinHash signatures | {len(texts)} docs, {words} words | "
        f"{m['dsmath_signature_s']:.3f} s, {m['dsmath_docs_per_s']:.0f} docs/s "
        f"(whole dedup stage {m['dsmath_dedup_stage_s']:.2f} s) | "
        f"{m['datatrove_signature_s']:.2f} s, {m['datatrove_docs_per_s']:.0f} docs/s | {m['ratio']:.1f}x |"
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
