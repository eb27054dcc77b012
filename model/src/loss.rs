//! Next-token cross-entropy of a causal LM (HF `ForCausalLMLoss`: shift by one, mean over the
//! target tokens that count).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, backend::Backend};

/// Mean of `-log p(ids[t+1] | ids[..=t])` over the positions where `weight` `[b, s]` is 1 for the
/// target token `t + 1` (0 = ignored: padding, or prompt tokens in SFT). `logits`: `[b, s, vocab]`.
pub fn causal_lm_loss<B: Backend>(logits: Tensor<B, 3>, ids: Tensor<B, 2, Int>, weight: Tensor<B, 2>) -> Tensor<B, 1> {
    let [b, s, _] = logits.dims();
    let logp = log_softmax(logits.narrow(1, 0, s - 1), 2); // [b, s-1, v] predicts tokens 1..s
    let targets = ids.narrow(1, 1, s - 1).reshape([b, s - 1, 1]);
    let picked = logp.gather(2, targets).reshape([b, s - 1]); // [b, s-1]
    let w = weight.narrow(1, 1, s - 1);
    -(picked * w.clone()).sum() / w.sum()
}
