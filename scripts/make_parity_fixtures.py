#!/usr/bin/env python3
"""Build the HF-transformers parity fixtures for dsmath-model.

The reference here is HF transformers itself (nobody on this project wrote it):
tiny random LlamaForCausalLM / Qwen2ForCausalLM checkpoints are written with
`save_pretrained`, and HF computes the logits, loss and greedy continuations that
the Rust tests must reproduce.

    pip install torch transformers safetensors
    python3 scripts/make_parity_fixtures.py            # writes model/tests/fixtures/
    python3 scripts/make_parity_fixtures.py --only llama3_rope_eos_list,qwen3_qk_norm
                                                       # just those cases, with the committed tokenizer

Fixture layout (each model directory is a normal HF checkpoint directory):
    fixtures/tokenizer/           tokenizer.json + tokenizer_config.json (byte-level BPE, 512 tokens)
    fixtures/<case>/              config.json, *.safetensors, tokenizer files
    fixtures/<case>/expected.json ids, attention masks, loss, greedy continuations
    fixtures/<case>/expected.safetensors  logits (f32) for the plain and the left-padded batch
"""
import json
import os
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "model" / "tests" / "fixtures"
VOCAB = 512
TEXTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "What is the value of $\\frac{3}{4} + \\frac{1}{8}$? The answer is $\\boxed{\\frac{7}{8}}$.",
]
PROMPTS = [
    "User: What is 12 + 30?\nPlease reason step by step.\n\nAssistant:",
    "Janet has 3 apples",
]


def train_tokenizer(corpus_file: Path) -> PreTrainedTokenizerFast:
    """A byte-level BPE like LLaMA-3 / DeepSeek's, with a BOS-adding post-processor like LLaMA's."""
    lines = []
    with open(corpus_file) as f:
        for i, line in enumerate(f):
            if i >= 2000:
                break
            row = json.loads(line)
            lines.append(row["question"])
            lines.append(row["answer"])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer)
    bos = "<｜begin▁of▁sentence｜>"
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token="<｜end▁of▁sentence｜>",
        pad_token="<pad>",
    )
    return fast


def make_model(kind: str, tok: PreTrainedTokenizerFast, **kw):
    common = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        rms_norm_eps=1e-6,
        initializer_range=0.2,  # wide logits: greedy decoding has no near-ties
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    common.update(kw)
    if kind == "llama":
        cfg = LlamaConfig(**common)
        model = LlamaForCausalLM(cfg)
    elif kind == "qwen3":
        cfg = Qwen3Config(**common)
        model = Qwen3ForCausalLM(cfg)
    else:
        cfg = Qwen2Config(**common)
        model = Qwen2ForCausalLM(cfg)
    # Norm weights and biases start at 1 / 0 in HF; randomise them so the tests see them.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
    return model.eval()


def expectations(model, tok, dtype_on_disk, path: Path, shard: str | None):
    if dtype_on_disk != torch.float32:
        model = model.to(dtype_on_disk)
    kwargs = {"safe_serialization": True}
    if shard:
        kwargs["max_shard_size"] = shard
    model.save_pretrained(path, **kwargs)
    tok.save_pretrained(path)
    # The reference computes in f32 from exactly the weights on disk.
    cls = type(model)
    ref = cls.from_pretrained(path, torch_dtype=torch.float32).eval()

    enc = [tok(t)["input_ids"][:24] for t in TEXTS]
    n = min(len(e) for e in enc)
    ids = torch.tensor([e[:n] for e in enc])
    with torch.no_grad():
        out = ref(input_ids=ids, labels=ids)
    logits = out.logits.float().contiguous()

    # Left-padded batch: a shorter and a longer sequence, explicit position ids like generate().
    short, long_ = enc[0][:10], enc[1][:n]
    L = len(long_)
    pad = tok.pad_token_id
    pids = torch.tensor([[pad] * (L - len(short)) + short, long_])
    mask = torch.tensor([[0] * (L - len(short)) + [1] * len(short), [1] * L])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        plogits = ref(input_ids=pids, attention_mask=mask, position_ids=pos).logits.float().contiguous()

    greedy = []
    for p in PROMPTS:
        pi = tok(p, return_tensors="pt")
        with torch.no_grad():
            g = ref.generate(
                **pi, do_sample=False, max_new_tokens=16, pad_token_id=pad, eos_token_id=None
            )
            # Margin check: the top-2 logit gap on the greedy path, so ties can't flip the test.
            full = ref(input_ids=g).logits[0, pi["input_ids"].shape[1] - 1 : -1]
            top2 = full.topk(2, dim=-1).values
            margin = float((top2[:, 0] - top2[:, 1]).min())
        assert margin > 1e-3, f"greedy path has a near-tie ({margin}); change the seed"
        greedy.append(
            {
                "prompt": p,
                "prompt_ids": pi["input_ids"][0].tolist(),
                "generated_ids": g[0, pi["input_ids"].shape[1] :].tolist(),
                "min_top2_margin": margin,
            }
        )

    # With a list of EOS ids (config.json / generation_config.json), generate() stops at the
    # first of them it produces.
    eos_stop = None
    eos_list = ref.generation_config.eos_token_id
    if isinstance(eos_list, list) and len(eos_list) > 1:
        pi = tok(PROMPTS[0], return_tensors="pt")
        with torch.no_grad():
            g = ref.generate(**pi, do_sample=False, max_new_tokens=16, pad_token_id=pad)
        eos_stop = {"prompt_ids": pi["input_ids"][0].tolist(), "generated_ids": g[0, pi["input_ids"].shape[1] :].tolist(),
                    "eos_token_id": eos_list}
    save_file({"logits": logits, "padded_logits": plogits}, str(path / "expected.safetensors"))
    (path / "expected.json").write_text(
        json.dumps(
            {
                "ids": ids.tolist(),
                "loss": float(out.loss),
                "padded_ids": pids.tolist(),
                "padded_mask": mask.tolist(),
                "greedy": greedy,
                "eos_stop": eos_stop,
                "dtype_on_disk": str(dtype_on_disk).replace("torch.", ""),
                "num_parameters": sum(p.numel() for p in ref.parameters()),
                "transformers_version": __import__("transformers").__version__,
                "torch_version": torch.__version__,
            },
            indent=1,
        )
    )


def main():
    only = None
    if "--only" in sys.argv:
        only = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    torch.manual_seed(1234)
    data = ROOT / "eval" / "data" / "gsm8k" / "train.jsonl"
    if not data.exists():
        data = ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
    if only is None:
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        tok = train_tokenizer(data)
        tok.save_pretrained(OUT / "tokenizer")
    else:
        tok = PreTrainedTokenizerFast.from_pretrained(OUT / "tokenizer")

    cases = [
        # name, kind, model kwargs, dtype on disk, shard size
        ("llama_mha", "llama", dict(num_key_value_heads=4, tie_word_embeddings=False), torch.float32, None),
        (
            "llama_gqa_tied_bf16_sharded",
            "llama",
            dict(
                num_key_value_heads=2,
                tie_word_embeddings=True,
                rope_theta=500000.0,
                rope_scaling={"rope_type": "linear", "factor": 2.0},
            ),
            torch.bfloat16,
            "60KB",
        ),
        (
            "qwen2_gqa_f16",
            "qwen2",
            dict(num_key_value_heads=2, tie_word_embeddings=False, rope_theta=1000000.0),
            torch.float16,
            None,
        ),
        # Llama 3.1 RoPE: with head_dim 16, theta 10000 and an original context of 32 tokens the
        # 8 frequencies span all three regimes (kept, blended, divided by the factor) within the
        # fixtures' 24-token sequences; EOS is a list.
        (
            "llama3_rope_eos_list",
            "llama",
            dict(
                num_key_value_heads=2,
                tie_word_embeddings=False,
                rope_theta=10000.0,
                rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
            ),
            torch.float32,
            None,
        ),
        # Qwen3: per-head q/k RMSNorm, head_dim 32 != hidden / heads = 16.
        (
            "qwen3_qk_norm",
            "qwen3",
            dict(num_key_value_heads=2, head_dim=32, tie_word_embeddings=False, rope_theta=1000000.0),
            torch.float32,
            None,
        ),
    ]
    for name, kind, kw, dtype, shard in cases:
        if only is not None and name not in only:
            continue
        model = make_model(kind, tok, **kw)
        if name == "llama3_rope_eos_list":
            # Stop at the EOS token or at the 6th token greedy decoding of PROMPTS[0] produces.
            probe = model.generate(**tok(PROMPTS[0], return_tensors="pt"), do_sample=False, max_new_tokens=8,
                                   pad_token_id=tok.pad_token_id, eos_token_id=None)
            stop_id = int(probe[0, -3])
            model.config.eos_token_id = [tok.eos_token_id, stop_id]
            model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=[tok.eos_token_id, stop_id],
                                                       pad_token_id=tok.pad_token_id)
        expectations(model, tok, dtype, OUT / name, shard)
        print("wrote", OUT / name, file=sys.stderr)


if __name__ == "__main__":
    main()
