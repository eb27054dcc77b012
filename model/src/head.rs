//! The LM head over chunks of positions: each target token's log-prob (and the entropy of the
//! next-token distribution) from the final hidden states without ever holding `[rows, vocab]`
//! logits for more than `chunk` rows, and the exact gradient of `sum_r c_r * log p(y_r)` with
//! the logits recomputed chunk by chunk in the gradient pass (as Liger-Kernel's fused linear
//! cross-entropy and TRL / verl's chunked log-probs do). The head costs O(chunk x vocab) memory
//! instead of O(rows x vocab), which is what lets 49K-152K vocabularies train.
//!
//! The math, for one row with hidden state `h` `[d]`, head `W` `[V, d]`, logits `z = W h`,
//! `p = softmax(z)`: `d log p(y) / dz = onehot(y) - p`, so for `L = sum_r c_r log p(y_r)`
//! `dL/dh_r = c_r (onehot(y_r) - p_r)^T W` and `dL/dW = sum_r c_r (onehot(y_r) - p_r) h_r^T`.
//! [`weighted_logp_surrogate`] computes both on the inner backend and returns
//! `sum(h * dL/dh) + sum(W * dL/dW)` minus its own detached value: a zero-valued scalar whose
//! backward hands those gradients to autodiff, which carries them on through the model.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, IndexingUpdateOp, Int, Tensor, TensorData};

/// Default rows per head chunk: `chunk x vocab` f32 logits (plus the softmax and its gradient)
/// are the head's whole working set; 512 x 49,152 x 4 bytes = 100 MB per buffer.
pub const DEFAULT_CHUNK: usize = 512;

fn f32_of<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    if t.dtype() == DType::F32 {
        t
    } else {
        t.cast(DType::F32)
    }
}

fn targets<B: Backend>(ys: &[u32], device: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::<B, 2, Int>::from_data(
        TensorData::new(
            ys.iter().map(|&y| y as i64).collect::<Vec<_>>(),
            [ys.len(), 1],
        ),
        device,
    )
}

/// Log-prob of each target `ys[r]` under the head's distribution at `hidden[r]`, and (with
/// `entropy`) that distribution's entropy in nats; both `[rows]`, in f32 whatever the model's
/// dtype. `hidden`: `[rows, d]`, `head`: `[vocab, d]`. Values only: call it on a backend without
/// autodiff (or on `.inner()` tensors).
pub fn target_logp<B: Backend>(
    hidden: Tensor<B, 2>,
    head: Tensor<B, 2>,
    ys: &[u32],
    chunk: usize,
    entropy: bool,
) -> (Vec<f32>, Vec<f32>) {
    let [rows, _] = hidden.dims();
    let device = hidden.device();
    let head = f32_of(head).transpose(); // [d, V]
    let (mut logp, mut ent) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(if entropy { rows } else { 0 }),
    );
    let chunk = chunk.max(1);
    for r0 in (0..rows).step_by(chunk) {
        let c = chunk.min(rows - r0);
        let z = f32_of(hidden.clone().narrow(0, r0, c)).matmul(head.clone()); // [c, V]
        let lp = log_softmax(z, 1); // [c, V]
        let picked = lp.clone().gather(1, targets::<B>(&ys[r0..r0 + c], &device)); // [c, 1]
        logp.extend(
            picked
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .unwrap_or_default(),
        );
        if entropy {
            let e = -(lp.clone().exp() * lp).sum_dim(1); // [c, 1]
            ent.extend(
                e.into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .unwrap_or_default(),
            );
        }
    }
    (logp, ent)
}

/// A zero-valued scalar whose gradient with respect to `hidden` `[rows, d]` and `head`
/// `[vocab, d]` is that of `sum_r coef[r] * log p(ys[r] | hidden[r])` (see the module doc).
/// Also returns each target's log-prob (computed on the way, `NaN` for rows with `coef == 0`,
/// which are skipped). Add it to a loss (or call `.backward()` on it) to
/// back-propagate through the body and the head without `[rows, vocab]` logits in the graph.
pub fn weighted_logp_surrogate<AB: AutodiffBackend>(
    hidden: Tensor<AB, 2>,
    head: Tensor<AB, 2>,
    ys: &[u32],
    coef: &[f32],
    chunk: usize,
) -> (Tensor<AB, 1>, Vec<f32>) {
    let [rows, d] = hidden.dims();
    let vocab = head.dims()[0];
    let device = hidden.device();
    let h_in = hidden.clone().inner(); // [rows, d]
    let w_in = f32_of(head.clone().inner()); // [V, d]
    let inner_dev = h_in.device();
    let mut grad_w = Tensor::<AB::InnerBackend, 2>::zeros([vocab, d], &inner_dev); // dL/dW, f32
    let mut grad_h = vec![];
    let mut logp = vec![f32::NAN; rows];
    let chunk = chunk.max(1);
    for r0 in (0..rows).step_by(chunk) {
        let c = chunk.min(rows - r0);
        let cf = &coef[r0..r0 + c];
        if cf.iter().all(|&x| x == 0.0) {
            grad_h.push(Tensor::<AB::InnerBackend, 2>::zeros([c, d], &inner_dev));
            continue;
        }
        let hc = f32_of(h_in.clone().narrow(0, r0, c)); // [c, d]
        let lp = log_softmax(hc.clone().matmul(w_in.clone().transpose()), 1); // [c, V]
        let y = targets::<AB::InnerBackend>(&ys[r0..r0 + c], &inner_dev); // [c, 1]
        let picked = lp
            .clone()
            .gather(1, y.clone())
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap_or_default();
        logp[r0..r0 + c].copy_from_slice(&picked);
        let p = lp.exp(); // [c, V]
        let cft = Tensor::<AB::InnerBackend, 2>::from_data(
            TensorData::new(cf.to_vec(), [c, 1]),
            &inner_dev,
        ); // [c, 1]
        // G = c * (onehot(y) - p): [c, V]
        let g = (-(p * cft.clone())).scatter(1, y, cft, IndexingUpdateOp::Add);
        grad_h.push(g.clone().matmul(w_in.clone())); // [c, d]
        grad_w = grad_w + g.transpose().matmul(hc); // [V, d]
    }
    let grad_h = Tensor::cat(grad_h, 0); // [rows, d]
    let as_dtype =
        |t: Tensor<AB::InnerBackend, 2>, dt: DType| if dt == DType::F32 { t } else { t.cast(dt) };
    let gh = Tensor::<AB, 2>::from_inner(as_dtype(grad_h, hidden.dtype())).to_device(&device);
    let gw = Tensor::<AB, 2>::from_inner(as_dtype(grad_w, head.dtype())).to_device(&device);
    let s = f32_of((hidden * gh).sum()) + f32_of((head * gw).sum()); // [1]
    (s.clone() - s.detach(), logp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_autodiff::Autodiff;
    use burn_flex::Flex;

    type A = Autodiff<Flex>;

    fn rand(shape: [usize; 2], seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..shape[0] * shape[1])
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 2.0
            })
            .collect()
    }

    #[test]
    fn chunked_values_and_gradients_equal_the_full_logits() {
        let (rows, d, v) = (7, 5, 11);
        let dev = Default::default();
        let h0 = rand([rows, d], 1);
        let w0 = rand([v, d], 2);
        let ys: Vec<u32> = (0..rows as u32).map(|r| (r * 3) % v as u32).collect();
        let coef: Vec<f32> = (0..rows)
            .map(|r| if r == 4 { 0.0 } else { r as f32 * 0.3 - 1.0 })
            .collect();
        let h =
            Tensor::<A, 2>::from_data(TensorData::new(h0.clone(), [rows, d]), &dev).require_grad();
        let w = Tensor::<A, 2>::from_data(TensorData::new(w0.clone(), [v, d]), &dev).require_grad();
        // Reference: full logits through autodiff.
        let lp = log_softmax(h.clone().matmul(w.clone().transpose()), 1);
        let picked = lp
            .clone()
            .gather(1, targets::<A>(&ys, &dev))
            .reshape([rows]);
        let ent_ref: Vec<f32> = (-(lp.clone().exp() * lp).sum_dim(1))
            .into_data()
            .to_vec()
            .unwrap();
        let lp_ref: Vec<f32> = picked.clone().into_data().to_vec().unwrap();
        let c = Tensor::<A, 1>::from_data(TensorData::new(coef.clone(), [rows]), &dev);
        let g = (picked * c).sum().backward();
        let (gh_ref, gw_ref): (Vec<f32>, Vec<f32>) = (
            h.grad(&g).unwrap().into_data().to_vec().unwrap(),
            w.grad(&g).unwrap().into_data().to_vec().unwrap(),
        );
        for chunk in [1, 3, 7, 100] {
            let (lp, ent) = target_logp(h.clone().inner(), w.clone().inner(), &ys, chunk, true);
            for r in 0..rows {
                assert!(
                    (lp[r] - lp_ref[r]).abs() < 1e-5 && (ent[r] - ent_ref[r]).abs() < 1e-5,
                    "chunk {chunk} row {r}"
                );
            }
            let h2 = Tensor::<A, 2>::from_data(TensorData::new(h0.clone(), [rows, d]), &dev)
                .require_grad();
            let w2 =
                Tensor::<A, 2>::from_data(TensorData::new(w0.clone(), [v, d]), &dev).require_grad();
            let (s, lp2) = weighted_logp_surrogate(h2.clone(), w2.clone(), &ys, &coef, chunk);
            assert_eq!(s.clone().into_scalar(), 0.0);
            for r in (0..rows).filter(|&r| coef[r] != 0.0) {
                assert!((lp2[r] - lp_ref[r]).abs() < 1e-5, "chunk {chunk} row {r}");
            }
            let g = s.backward();
            let gh: Vec<f32> = h2.grad(&g).unwrap().into_data().to_vec().unwrap();
            let gw: Vec<f32> = w2.grad(&g).unwrap().into_data().to_vec().unwrap();
            for (a, b) in gh.iter().zip(&gh_ref).chain(gw.iter().zip(&gw_ref)) {
                assert!((a - b).abs() < 1e-5, "chunk {chunk}: {a} vs {b}");
            }
        }
    }
}
