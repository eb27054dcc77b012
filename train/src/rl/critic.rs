//! PPO's value model (DeepSeekMath §4.1.1, Eq. 2): the decoder with a scalar head, started from
//! the SFT model with a zero head; its per-token values before the update (micro-batched, no
//! autodiff) and one step on the clipped value loss, micro-batched with the step's token count as
//! the denominator so that any micro-batch size gives the whole-batch step.

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use crate::error::TrainError;
use crate::optim::{AdamW, FlatGrads, accumulate, clip, collect_grads};
use crate::reward_model::RewardModel;
use crate::rl::explore::{Rollout, max_len};
use crate::rl::loss::value_loss;
use crate::rl::update::UpdateArgs;

/// PPO's value model (the decoder with a scalar head, started from the SFT model with a zero
/// head) and its optimizer.
pub struct Critic<AB: AutodiffBackend> {
    pub model: RewardModel<AB>,
    pub opt: AdamW<AB::InnerBackend>,
}

/// The value model's estimate `V(q, o_<t)` for each rollout token `t` (read at the position that
/// predicts the token, as the policy's log-prob is): `[n, t_max]`, rows padded with the last value.
pub fn token_values<B: Backend>(
    critic: &RewardModel<B>,
    rollouts: &[Rollout],
    pad: u32,
) -> Tensor<B, 2> {
    let device = critic.score.val().device();
    let rows: Vec<Vec<u32>> = rollouts
        .iter()
        .map(|r| r.prompt_ids.iter().chain(&r.tokens).copied().collect())
        .collect();
    let scores = critic.scores(&rows, pad); // [n, s], right-padded
    let width = scores.dims()[1];
    let (n, t) = (rollouts.len(), max_len(rollouts));
    let idx: Vec<i64> = rollouts
        .iter()
        .flat_map(|r| {
            (0..t).map(move |j| {
                (r.prompt_ids.len() + j.min(r.tokens.len().saturating_sub(1)))
                    .saturating_sub(1)
                    .min(width - 1) as i64
            })
        })
        .collect();
    scores.gather(
        1,
        Tensor::<B, 2, Int>::from_data(TensorData::new(idx, [n, t]), &device),
    ) // [n, t]
}

/// The critic's values of every rollout token before the update, `[n * t]` (`t`: the longest
/// completion), `micro_batch` rollouts per forward.
pub fn old_values<B: Backend>(
    critic: &RewardModel<B>,
    rollouts: &[Rollout],
    pad: u32,
    micro_batch: usize,
    t: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; rollouts.len() * t];
    for (k, part) in rollouts.chunks(micro_batch.max(1)).enumerate() {
        let v: Vec<f32> = token_values(critic, part, pad)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap_or_default();
        let tm = v.len() / part.len().max(1);
        for i in 0..part.len() {
            let row = k * micro_batch.max(1) + i;
            out[row * t..row * t + tm].copy_from_slice(&v[i * tm..(i + 1) * tm]);
        }
    }
    out
}

/// What the critic step fits: the values before the update, the GAE returns and the token mask,
/// all `[n * t]`.
pub struct ValueTargets {
    pub old: Vec<f32>,
    pub returns: Vec<f32>,
    pub mask: Vec<f32>,
    pub t: usize,
}

/// One critic step on the clipped value loss (`args.loss.value_clip`, learning rate
/// `args.lr * args.loss.critic_lr_scale`), `args.micro_batch` rollouts per forward / backward.
/// Returns the critic and the loss (not finite: no step was made).
pub fn critic_step<AB: AutodiffBackend>(
    mut critic: Critic<AB>,
    rollouts: &[Rollout],
    v: &ValueTargets,
    args: &UpdateArgs,
) -> Result<(Critic<AB>, f64), TrainError> {
    let mut tokens: f64 = v.mask.iter().map(|&m| m as f64).sum::<f64>();
    let device = critic.model.body.head_weight().device();
    if let Some(dp) = &args.dp {
        tokens = dp.sum::<AB::InnerBackend>(&[tokens], &device)?[0]; // every rank's tokens
    }
    let tokens = tokens.max(1.0);
    let mb = args.micro_batch(rollouts.len());
    let (mut grads, mut loss): (FlatGrads<AB::InnerBackend>, f64) = (vec![], 0.0);
    for (k, part) in rollouts.chunks(mb).enumerate() {
        let tm = max_len(part);
        let pick = |x: &[f32]| -> Vec<f32> {
            (0..part.len())
                .flat_map(|i| x[(k * mb + i) * v.t..(k * mb + i) * v.t + tm].to_vec())
                .collect()
        };
        let l = value_loss(
            token_values(&critic.model, part, args.pad),
            &pick(&v.old),
            &pick(&v.returns),
            &pick(&v.mask),
            args.loss.value_clip,
            Some(tokens),
        );
        loss += l.clone().into_scalar().elem::<f64>();
        accumulate(&mut grads, collect_grads(&critic.model, &l.backward()));
    }
    if let Some(dp) = &args.dp {
        (grads, loss) = dp.reduce_grads::<AB, _>(&critic.model, grads, loss, &device)?;
    }
    if loss.is_finite() {
        let (grads, norm) = clip(grads, args.grad_clip);
        if norm.is_finite() {
            critic.model =
                critic
                    .opt
                    .step(critic.model, grads, args.lr * args.loss.critic_lr_scale);
        }
    }
    Ok((critic, loss))
}

/// The critic without autodiff (its values before the update).
pub fn frozen<AB: AutodiffBackend>(critic: &Critic<AB>) -> RewardModel<AB::InnerBackend> {
    critic.model.valid()
}
