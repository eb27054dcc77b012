#!/usr/bin/env bash
# Rebuild train/tests/fixtures/arith_sft (the SFT model the GRPO end-to-end test starts from):
# the demo's SFT checkpoint, without optimizer and trainer state. Deterministic: the demo is seeded.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/demo}
cargo xtask demo --out "$out"
src="$out/sft/$(cat "$out/sft/latest")"
dst=train/tests/fixtures/arith_sft
rm -rf "$dst" && mkdir -p "$dst"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json generation_config.json; do
  [ -f "$src/$f" ] && cp "$src/$f" "$dst/"
done
ls -l "$dst"
