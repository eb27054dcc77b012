"""Reference optimizer steps for dsmath-train, computed by PyTorch (nobody here wrote it):
the llama_mha fixture model, a fixed batch with a loss mask, 3 steps of torch.optim.AdamW
(betas 0.9/0.95, eps 1e-8, weight decay 0.1 on >= 2-D weights only, as DeepSeekMath / GPT
practice), global gradient-norm clipping at 0.5 (torch.nn.utils.clip_grad_norm_), and the
DeepSeekMath multi-step learning rate (warmup 2 steps, peak 1e-2, 31.6% at 80%, 10% at 90% of 10
steps). Writes train/tests/fixtures/adamw_reference.json: per step loss, pre-clip grad norm, lr,
and the final weights' per-tensor sums and a few values.

    pip install torch transformers safetensors
    python3 scripts/make_optim_fixture.py
"""
import json
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "model" / "tests" / "fixtures" / "llama_mha"
OUT = ROOT / "train" / "tests" / "fixtures" / "adamw_reference.json"

torch.manual_seed(0)
model = LlamaForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32)
model.train()
g = torch.Generator().manual_seed(1)
ids = torch.randint(3, 500, (2, 12), generator=g)
weight = torch.ones(2, 12)
weight[0, :4] = 0.0  # prompt tokens that do not count (SFT-style mask)
weight[1, 9:] = 0.0  # padding


def lr_at(step, total=10, warmup=2, peak=2e-3):
    # DeepSeekMath multi-step: linear warmup, then peak; 31.6% from 80%, 10% from 90% of training.
    if step < warmup:
        return peak * (step + 1) / warmup
    if step >= int(0.9 * total):
        return peak * 0.1
    if step >= int(0.8 * total):
        return peak * 0.316
    return peak


decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
steps = []
for step in range(10):
    for group in opt.param_groups:
        group["lr"] = lr_at(step)
    opt.zero_grad()
    logits = model(input_ids=ids).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(2, ids[:, 1:, None])[..., 0]
    w = weight[:, 1:]
    loss = -(picked * w).sum() / w.sum()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    opt.step()
    steps.append({"step": step, "loss": loss.item(), "grad_norm": norm.item(), "lr": lr_at(step)})

final = {n: {"sum": p.detach().double().sum().item(), "first": p.detach().flatten()[:4].tolist()} for n, p in model.named_parameters()}
OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps({"made_by": f"torch {torch.__version__}, scripts/make_optim_fixture.py",
                           "ids": ids.tolist(), "weight": weight.tolist(), "steps": steps, "final": final}, indent=1))
print(json.dumps(steps, indent=1))
