//! Per-token log-probs of rollouts under a model, bounded in memory: sequences go through the
//! body `micro_batch` at a time, and the LM head reads only the hidden states that predict
//! completion tokens, `chunk` of them at a time (`dsmath_model::head`), so no `[n, t, vocab]`
//! tensor is ever held. Used for the reference's and the old policy's log-probs (no autodiff)
//! and, through [`completion_hidden`], for the policy's update.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use dsmath_model::LlamaForCausalLM;
use dsmath_model::head::target_logp;

use crate::rl::explore::{Rollout, max_len};

/// The completion tokens of `rollouts` as rows of one forward pass.
pub struct CompletionRows<B: Backend> {
    /// Final hidden states of the positions that predict completion tokens, `[rows, d]`.
    pub hidden: Tensor<B, 2>,
    /// The completion token each row predicts.
    pub targets: Vec<u32>,
    /// Where each row sits: `(rollout, token)` within the slice passed in.
    pub at: Vec<(usize, usize)>,
}

/// Runs `rollouts` (prompts left-padded so completions start at one column, completions
/// right-padded with `pad`) through `model`'s body and keeps the rows that predict their tokens.
/// `None` when no rollout has a token.
pub fn completion_hidden<B: Backend>(
    model: &LlamaForCausalLM<B>,
    rollouts: &[Rollout],
    pad: u32,
) -> Option<CompletionRows<B>> {
    let device = model.model.embed_tokens.val().device();
    let p = rollouts
        .iter()
        .map(|r| r.prompt_ids.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let t = rollouts.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
    if t == 0 {
        return None;
    }
    let n = rollouts.len();
    let mut ids = Vec::with_capacity(n * (p + t));
    let mut valid = Vec::with_capacity(n);
    let (mut rows, mut targets, mut at) = (vec![], vec![], vec![]);
    for (i, r) in rollouts.iter().enumerate() {
        let left = p - r.prompt_ids.len();
        ids.extend(
            std::iter::repeat_n(pad, left)
                .chain(r.prompt_ids.iter().copied())
                .chain(r.tokens.iter().copied())
                .chain(std::iter::repeat_n(pad, t - r.tokens.len()))
                .map(|x| x as i64),
        );
        valid.push(
            (0..p + t)
                .map(|j| j >= left && j < p + r.tokens.len())
                .collect::<Vec<bool>>(),
        );
        for (j, &y) in r.tokens.iter().enumerate() {
            rows.push((i * (p + t) + p - 1 + j) as i64); // the position that predicts token j
            targets.push(y);
            at.push((i, j));
        }
    }
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, p + t]), &device);
    let h = model.hidden_padded(input, &valid); // [n, p + t, d]
    let d = h.dims()[2];
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(rows.clone(), [rows.len()]), &device);
    Some(CompletionRows {
        hidden: h.reshape([n * (p + t), d]).select(0, idx),
        targets,
        at,
    })
}

/// Log-probs of each rollout's tokens under `model` and (with `entropy`) the entropy of its
/// next-token distribution there, both `[n * t]` with `t` the longest completion (padding 0).
/// Values only: pass a model without autodiff.
pub fn token_logp<B: Backend>(
    model: &LlamaForCausalLM<B>,
    rollouts: &[Rollout],
    pad: u32,
    micro_batch: usize,
    chunk: usize,
    entropy: bool,
) -> (Vec<f32>, Vec<f32>) {
    let t = max_len(rollouts);
    let n = rollouts.len();
    let (mut logp, mut ent) = (
        vec![0f32; n * t],
        vec![0f32; if entropy { n * t } else { 0 }],
    );
    let head = model.head_weight();
    let mb = micro_batch.max(1);
    for i0 in (0..n).step_by(mb) {
        let part = &rollouts[i0..(i0 + mb).min(n)];
        let Some(rows) = completion_hidden(model, part, pad) else {
            continue;
        };
        let (lp, e) = target_logp(rows.hidden, head.clone(), &rows.targets, chunk, entropy);
        for (k, &(i, j)) in rows.at.iter().enumerate() {
            logp[(i0 + i) * t + j] = lp[k];
            if entropy {
                ent[(i0 + i) * t + j] = e[k];
            }
        }
    }
    (logp, ent)
}
