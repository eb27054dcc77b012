#!/usr/bin/env python3
"""Round trip through HF transformers: a checkpoint *written by dsmath* must load in HF as is and
give the logits HF computed for the original (fixtures of make_parity_fixtures.py).

    python3 scripts/check_hf_roundtrip.py            # builds xtask, converts each fixture, checks

Exit status 0 when every case matches (max |logit diff| <= 1e-4), 1 otherwise.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "model" / "tests" / "fixtures"
CASES = ["llama_mha", "llama_gqa_tied_bf16_sharded", "qwen2_gqa_f16", "llama3_rope_eos_list", "qwen3_qk_norm"]


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            out = Path(tmp) / case
            subprocess.run(
                ["cargo", "run", "-q", "-p", "xtask", "--", "convert", "--model", str(FIX / case), "--out", str(out)],
                cwd=ROOT, check=True,
            )
            model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
            exp = json.loads((FIX / case / "expected.json").read_text())
            ids = torch.tensor(exp["ids"])
            with torch.no_grad():
                logits = model(input_ids=ids).logits
            want = load_file(str(FIX / case / "expected.safetensors"))["logits"]
            diff = float((logits - want).abs().max())
            good = diff <= 1e-4
            ok &= good
            print(f"{case}: HF loads dsmath's checkpoint; max |logit diff| = {diff:.2e} {'OK' if good else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
