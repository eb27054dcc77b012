#!/usr/bin/env python3
"""A small GGUF file with one tensor of each ggml type dsmath reads, and the values the `gguf`
package (ggml's own Python reader, `gguf.quants.dequantize`) dequantizes them to.

    pip install gguf numpy safetensors
    python3 scripts/make_gguf_fixtures.py     # writes model/tests/fixtures/gguf/{types.gguf,expected.safetensors}

Quantized blocks are random bytes with their f16 scales set to finite values, so every bit
pattern of the quants, sub-block scales and high bits is exercised.
"""
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize
from safetensors.numpy import save_file

OUT = Path(__file__).resolve().parent.parent / "model" / "tests" / "fixtures" / "gguf"
SHAPE = (2, 512)  # rows, columns (ggml dims [512, 2])
# Byte offsets of the f16 scales in each block (the rest of the block is random).
SCALES = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q8_0: [0], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}


def main():
    rng = np.random.default_rng(7)
    OUT.mkdir(parents=True, exist_ok=True)
    w = GGUFWriter(str(OUT / "types.gguf"), "llama")
    w.add_string("dsmath.fixture", "one tensor per ggml type")
    expected = {}
    for kind in [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q4_K, T.Q5_K, T.Q6_K]:
        block, size = GGML_QUANT_SIZES[kind]
        n_blocks = SHAPE[0] * SHAPE[1] // block
        if kind == T.F32:
            raw = rng.standard_normal(SHAPE).astype(np.float32).view(np.uint8)
        elif kind == T.F16:
            raw = rng.standard_normal(SHAPE).astype(np.float16).view(np.uint8)
        elif kind == T.BF16:
            raw = (rng.standard_normal(SHAPE).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        else:
            raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
            for off in SCALES[kind]:
                scale = (rng.uniform(0.001, 0.05, n_blocks) * rng.choice([-1, 1], n_blocks)).astype(np.float16)
                raw[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
        raw = raw.reshape(SHAPE[0], -1)
        w.add_tensor(kind.name, raw, raw_dtype=kind)
        expected[kind.name] = dequantize(raw, kind).astype(np.float32).reshape(SHAPE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(expected, str(OUT / "expected.safetensors"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
