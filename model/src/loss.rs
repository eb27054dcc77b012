//! Next-token cross-entropy of a causal LM (HF `ForCausalLMLoss`: shift by one, mean over the
//! target tokens that count), on full logits or chunked from the final hidden states.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};

/// Mean of `-log p(ids[t+1] | ids[..=t])` over the positions where `weight` `[b, s]` is 1 for the
/// target token `t + 1` (0 = ignored: padding, or prompt tokens in SFT). `logits`: `[b, s, vocab]`.
pub fn causal_lm_loss<B: Backend>(
    logits: Tensor<B, 3>,
    ids: Tensor<B, 2, Int>,
    weight: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let [b, s, _] = logits.dims();
    let device = logits.device();
    // Shift the targets, not the logits: position t predicts ids[t + 1] and the last position
    // gets weight 0. (Narrowing the [b, s, vocab] logits instead costs a copy in forward and a
    // zero-filled [b, s, vocab] gradient in backward.)
    let no_target = Tensor::<B, 2, Int>::zeros([b, 1], &device);
    let targets = Tensor::cat(vec![ids.narrow(1, 1, s - 1), no_target], 1).reshape([b, s, 1]);
    let w = Tensor::cat(
        vec![weight.narrow(1, 1, s - 1), Tensor::zeros([b, 1], &device)],
        1,
    ); // [b, s]
    let logp = log_softmax(logits, 2); // [b, s, vocab]
    let picked = logp.gather(2, targets).reshape([b, s]); // [b, s]
    -(picked * w.clone()).sum() / w.sum()
}

/// The rows of `[b * s]` flattened positions that have a target (`weight[t + 1] > 0`), their
/// target ids and weights.
fn target_rows(ids: &[Vec<u32>], weight: &[Vec<f32>]) -> (Vec<i64>, Vec<u32>, Vec<f32>) {
    let s = ids.first().map_or(0, Vec::len);
    let (mut rows, mut ys, mut ws) = (vec![], vec![], vec![]);
    for (i, (row, w)) in ids.iter().zip(weight).enumerate() {
        for t in 0..s.saturating_sub(1) {
            if w[t + 1] > 0.0 {
                rows.push((i * s + t) as i64);
                ys.push(row[t + 1]);
                ws.push(w[t + 1]);
            }
        }
    }
    (rows, ys, ws)
}

fn selected<B: Backend>(hidden: Tensor<B, 3>, rows: &[i64]) -> Tensor<B, 2> {
    let [b, s, d] = hidden.dims();
    let idx = Tensor::<B, 1, Int>::from_data(
        burn::tensor::TensorData::new(rows.to_vec(), [rows.len()]),
        &hidden.device(),
    );
    hidden.reshape([b * s, d]).select(0, idx) // [rows, d]
}

/// [`causal_lm_loss`] from the final hidden states `[b, s, d]` and the head `[vocab, d]`, with
/// the head applied in chunks of `chunk` target positions ([`crate::head`]): the same value and
/// gradient without `[b, s, vocab]` logits. `ids` and `weight` are the `[b][s]` host rows.
pub fn chunked_causal_lm_loss<AB: AutodiffBackend>(
    hidden: Tensor<AB, 3>,
    head: Tensor<AB, 2>,
    ids: &[Vec<u32>],
    weight: &[Vec<f32>],
    chunk: usize,
) -> Tensor<AB, 1> {
    let device = hidden.device();
    let (rows, ys, ws) = target_rows(ids, weight);
    let total: f32 = ws.iter().sum();
    if rows.is_empty() || total <= 0.0 {
        return (hidden.sum() * 0.0).reshape([1]); // no target: 0 with the graph attached
    }
    let coef: Vec<f32> = ws.iter().map(|w| -w / total).collect();
    let (surrogate, lp) =
        crate::head::weighted_logp_surrogate(selected(hidden, &rows), head, &ys, &coef, chunk);
    let value: f64 = -lp
        .iter()
        .zip(&ws)
        .map(|(l, w)| (*l as f64) * (*w as f64))
        .sum::<f64>()
        / total as f64;
    surrogate + Tensor::<AB, 1>::from_floats([value as f32], &device)
}

/// The value of [`chunked_causal_lm_loss`] (no gradient; any backend): the mean cross-entropy
/// over the weighted targets, `NaN` when there are none.
pub fn chunked_causal_lm_loss_value<B: Backend>(
    hidden: Tensor<B, 3>,
    head: Tensor<B, 2>,
    ids: &[Vec<u32>],
    weight: &[Vec<f32>],
    chunk: usize,
) -> f64 {
    let (rows, ys, ws) = target_rows(ids, weight);
    let total: f64 = ws.iter().map(|&w| w as f64).sum();
    if rows.is_empty() {
        return f64::NAN;
    }
    let (lp, _) = crate::head::target_logp(selected(hidden, &rows), head, &ys, chunk, false);
    -lp.iter()
        .zip(&ws)
        .map(|(l, w)| (*l as f64) * (*w as f64))
        .sum::<f64>()
        / total
}
