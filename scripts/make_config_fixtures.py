#!/usr/bin/env python3
"""Parameter counts HF transformers builds from published config.json files.

    pip install torch transformers
    python3 scripts/make_config_fixtures.py      # writes model/tests/fixtures/configs/expected.json

Each `model/tests/fixtures/configs/*.json` (see SOURCES.md there) is loaded with
`AutoConfig.from_pretrained` and instantiated with `AutoModelForCausalLM.from_config` on the meta
device (shapes only); the test `published_configs_parse_and_count_like_hf` checks that dsmath
parses every file unchanged and counts the same parameters.
"""
import json
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

DIR = Path(__file__).resolve().parent.parent / "model" / "tests" / "fixtures" / "configs"


def main():
    out = {}
    for path in sorted(DIR.glob("*.json")):
        if path.name == "expected.json":
            continue
        cfg = AutoConfig.from_pretrained(str(path))
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg)
        out[path.name] = {"architecture": type(model).__name__, "num_parameters": sum(p.numel() for p in model.parameters())}
        print(path.name, out[path.name])
    out["transformers_version"] = __import__("transformers").__version__
    (DIR / "expected.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
