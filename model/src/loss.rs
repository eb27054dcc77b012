//! Next-token cross-entropy of a causal LM (HF `ForCausalLMLoss`: shift by one, mean over the
//! target tokens that count).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, backend::Backend};

/// Mean of `-log p(ids[t+1] | ids[..=t])` over the positions where `weight` `[b, s]` is 1 for the
/// target token `t + 1` (0 = ignored: padding, or prompt tokens in SFT). `logits`: `[b, s, vocab]`.
pub fn causal_lm_loss<B: Backend>(logits: Tensor<B, 3>, ids: Tensor<B, 2, Int>, weight: Tensor<B, 2>) -> Tensor<B, 1> {
    let [b, s, _] = logits.dims();
    let device = logits.device();
    // Shift the targets, not the logits: position t predicts ids[t + 1] and the last position
    // gets weight 0. (Narrowing the [b, s, vocab] logits instead costs a copy in forward and a
    // zero-filled [b, s, vocab] gradient in backward.)
    let no_target = Tensor::<B, 2, Int>::zeros([b, 1], &device);
    let targets = Tensor::cat(vec![ids.narrow(1, 1, s - 1), no_target], 1).reshape([b, s, 1]);
    let w = Tensor::cat(vec![weight.narrow(1, 1, s - 1), Tensor::zeros([b, 1], &device)], 1); // [b, s]
    let logp = log_softmax(logits, 2); // [b, s, vocab]
    let picked = logp.gather(2, targets).reshape([b, s]); // [b, s]
    -(picked * w.clone()).sum() / w.sum()
}
