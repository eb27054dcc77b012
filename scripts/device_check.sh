#!/usr/bin/env bash
# GPU check for a session that is lent an NVIDIA machine. One command,
# under 10 minutes, logs in one folder ($1, default $OUT/device-check or runs/device-check):
#   1. build xtask with --features cuda (release) and the CUDA parity test binary
#   2. the HF parity tests on burn-cuda (logits, left padding, loss, generation, masks)
#   3. a 2-3 minute bf16 mixed-precision training run of a ~1.1B LLaMA (TinyLlama shapes), tokens/s and MFU
#      against the GPU's bf16 dense peak (PEAK_FLOPS, default 989e12: H100 / H200 SXM datasheet)
#   4. two GRPO steps on the real checkpoint (SmolLM2-135M-Instruct, configs/grpo-smollm2.toml) in
#      bf16 mixed precision: step time, rollout and update tokens/s, peak GPU memory; needs the
#      converted checkpoint on the machine ($DSMATH_SMOLLM2, default runs/smollm2: the f32 HF
#      directory of `cargo xtask convert --gguf`), else SKIPPED
#   5. with more than one GPU: data parallel over 2 GPUs (burn-collective all-reduce) gives the
#      same losses as one GPU on the same batches
# Each phase has its own time limit and its own log; summary.txt says what passed.
#
# A machine without a Rust toolchain or crates.io (the lent H200s have neither) runs binaries
# built beforehand on an x86-64 Linux machine that has them:
#   scripts/device_check.sh --prepare gpu-bin      # here: builds and copies xtask + the parity test
#   DSMATH_BIN_DIR=gpu-bin scripts/device_check.sh  # there (carry gpu-bin with the tree)
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--prepare" ]; then
  D=${2:?usage: device_check.sh --prepare DIR}
  mkdir -p "$D"
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
  cargo build --release -p xtask --features cuda || exit 1
  cargo test --release --no-run -p dsmath-model --features test-cuda --test parity || exit 1
  cp "$CARGO_TARGET_DIR/release/xtask" "$D/xtask"
  cp "$(ls -t "$CARGO_TARGET_DIR"/release/deps/parity-* | grep -v '\.d$' | head -1)" "$D/parity"
  strip "$D/xtask" "$D/parity" 2>/dev/null
  ls -la "$D"
  exit 0
fi
LOG=${1:-${OUT:-runs}/device-check}
mkdir -p "$LOG"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
PEAK_FLOPS=${PEAK_FLOPS:-989e12}
S="$LOG/summary.txt"
: > "$S"
phase() { # name, limit (s), command...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  timeout "$limit" bash -c "$*" > "$LOG/$name.log" 2>&1
  local rc=$?
  echo "$name: rc=$rc ($(( $(date +%s) - t0 )) s)" | tee -a "$S"
  return $rc
}
{ nvidia-smi; nvidia-smi -L; nproc; free -g; } > "$LOG/machine.txt" 2>&1
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
echo "gpus: $NGPU" | tee -a "$S"

if [ -n "${DSMATH_BIN_DIR:-}" ]; then
  X=$DSMATH_BIN_DIR/xtask
  PARITY=$DSMATH_BIN_DIR/parity
  echo "prebuilt binaries from $DSMATH_BIN_DIR" | tee -a "$S"
else
  phase build 420 "cargo build --release -p xtask --features cuda && cargo test --release --no-run -p dsmath-model --features test-cuda --test parity" \
    || { echo "build failed: see $LOG/build.log" | tee -a "$S"; exit 1; }
  X=$CARGO_TARGET_DIR/release/xtask
  PARITY=$(ls -t "$CARGO_TARGET_DIR"/release/deps/parity-* | grep -v '\.d$' | head -1)
fi
# The parity test reads its fixtures relative to the crate (model/tests/fixtures).
phase parity 150 "cd model && $PARITY cuda:: --test-threads 1"
grep -E '^test |test result' "$LOG/parity.log" >> "$S" 2>/dev/null
# ~1.1B parameters (vocab 32000), batch 4 x 1024 tokens, bf16 mixed precision (f32 master weights
# and AdamW, `train.dtype = "bf16"`); ~40 timed steps.
phase train_bf16 170 "$X --backend cuda train-bench --preset llama_1b --vocab 32000 --batch 4 --seq-len 1024 --steps 40 --dtype bf16 --peak-flops $PEAK_FLOPS"
tail -1 "$LOG/train_bf16.log" >> "$S"
SMOL=${DSMATH_SMOLLM2:-runs/smollm2}
if [ -f "$SMOL/config.json" ]; then
  G=$(mktemp -d)
  "$X" rl-prompts --arith 1500 --one-step --out "$G/prompts.jsonl" > /dev/null
  sed -e "s#^init = .*#init = \"$SMOL\"#" -e "s#^prompts = .*#prompts = \"$G/prompts.jsonl\"#" \
      -e 's#^checkpoint_every = .*#checkpoint_every = 0#' configs/grpo-smollm2.toml > "$G/grpo.toml"
  echo 'dtype = "bf16"' >> "$G/grpo.toml"
  ( while sleep 1; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0; done ) > "$LOG/grpo_mem.txt" 2>/dev/null &
  MON=$!
  phase grpo_bf16 240 "$X --backend cuda grpo --config $G/grpo.toml --out $G/run --steps 2"
  kill $MON 2>/dev/null
  python3 - "$G/run/metrics.jsonl" "$LOG/grpo_mem.txt" <<'PY' | tee -a "$S"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mem = max((int(x) for x in open(sys.argv[2]).read().split() if x.isdigit()), default=0)
for m in rows:
    toks = m["response_len_mean"] * 32
    print(f"grpo bf16 step {m['step']}: {m['step_seconds']:.1f} s, rollout {m['rollout_tokens_per_s']:.0f} tok/s, "
          f"update {m['train_tokens_per_s']:.0f} tok/s, {toks / m['step_seconds']:.0f} completion tok/s per step")
print(f"grpo bf16 peak GPU memory (nvidia-smi, 1 s samples): {mem} MiB")
PY
else
  echo "grpo_bf16: SKIPPED (no converted SmolLM2 at $SMOL: cargo xtask convert --gguf ... --out $SMOL, or set DSMATH_SMOLLM2)" | tee -a "$S"
fi
if [ "$NGPU" -gt 1 ]; then
  W=$(mktemp -d)  # run directories stay out of the log folder
  "$X" sft-data --out "$W/dp_sft.jsonl" --limit 256 > "$W/dp_data.log" 2>&1
  for n in 1 2; do
    cat > "$W/dp$n.toml" <<TOML
[model]
preset = "small"
tokenizer = "train/tests/fixtures/arith_sft"
[data]
sft = ["$W/dp_sft.jsonl"]
[train]
stage = "sft"
steps = 5
batch_size = 8
micro_batch = 2
seq_len = 128
checkpoint_every = 5
eval_every = 0
devices = $n
TOML
    phase "dp_$n" 90 "$X --backend cuda train --config $W/dp$n.toml --out $W/dp-$n"
  done
  python3 - "$W" <<'PY' | tee -a "$S"
import json, sys
d = sys.argv[1]
a = [json.loads(l)["loss"] for l in open(f"{d}/dp-1/metrics.jsonl")]
b = [json.loads(l)["loss"] for l in open(f"{d}/dp-2/metrics.jsonl")]
diff = max(abs(x - y) / abs(x) for x, y in zip(a, b))
ok = diff < 1e-4 and len(a) == len(b) == 5
print(f"data parallel, 2 GPUs vs 1: losses {a} vs {b}, max rel diff {diff:.2e}: {'OK' if ok else 'MISMATCH'}")
PY
fi
echo "logs: $LOG" | tee -a "$S"
