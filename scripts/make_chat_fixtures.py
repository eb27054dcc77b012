#!/usr/bin/env python3
"""Chat prompts rendered by HF transformers' `apply_chat_template` for the templates of the
supported families (`model/tests/fixtures/chat/templates/*.jinja`, SOURCES.md there).

    pip install transformers tokenizers
    python3 scripts/make_chat_fixtures.py        # writes model/tests/fixtures/chat/expected.json

For each template a tokenizer with that family's special tokens gets the template as its
`chat_template`, and `apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`
renders every conversation below (Llama 3.x with a fixed `date_string`, Qwen3 also with
`enable_thinking=False`). The test `chat_templates_render_as_hf` renders the same with dsmath.
"""
import json
from pathlib import Path

from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

DIR = Path(__file__).resolve().parent.parent / "model" / "tests" / "fixtures" / "chat"
SPECIAL = {
    "smollm2-instruct": dict(bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token="<|endoftext|>"),
    "qwen2.5-instruct": dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"),
    "qwen2.5-math-instruct": dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"),
    "qwen3": dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"),
    "llama-3.2-instruct": dict(bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"),
    "deepseek-math-instruct": dict(bos_token="<｜begin▁of▁sentence｜>", eos_token="<｜end▁of▁sentence｜>"),
}
QUESTION = "Janet’s ducks lay 16 eggs per day. She eats three for breakfast. How many are left?\nPlease reason step by step, and put your final answer within \\boxed{}."
CONVERSATIONS = [
    [{"role": "user", "content": QUESTION}],
    [{"role": "system", "content": "You are a careful math tutor."}, {"role": "user", "content": "Simplify $\\frac{6}{8}$."}],
    [
        {"role": "user", "content": "What is 3 * 4?"},
        {"role": "assistant", "content": "3 * 4 = 12, so the answer is $\\boxed{12}$."},
        {"role": "user", "content": "  And 12 / 4?  "},
    ],
    [
        {"role": "user", "content": "Is 7 prime?"},
        {"role": "assistant", "content": "<think>\n7 has no divisors but 1 and 7.\n</think>\n\nYes, 7 is prime."},
    ],
]


def main():
    cases = []
    for name, special in SPECIAL.items():
        template = (DIR / "templates" / f"{name}.jinja").read_text()
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), **special)
        tok.chat_template = template
        extras = [{}]
        if name.startswith("llama"):
            extras = [{"date_string": "26 Jul 2024"}]
        if name == "qwen3":
            extras = [{}, {"enable_thinking": False}]
        for messages in CONVERSATIONS:
            for add in (True, False):
                for extra in extras:
                    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add, **extra)
                    cases.append({"template": name, "special_tokens": special, "messages": messages,
                                  "add_generation_prompt": add, "extra": extra, "text": text})
    (DIR / "expected.json").write_text(json.dumps({"transformers_version": __import__("transformers").__version__,
                                                   "cases": cases}, indent=1, ensure_ascii=False) + "\n")
    print(len(cases), "renderings")


if __name__ == "__main__":
    main()
