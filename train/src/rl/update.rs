//! One policy update of GRPO and the algorithms on its code path (DeepSeekMath §4.1, Eq. 3;
//! §5.2.1's unified paradigm; PPO §4.1.1), micro-batched: the step's host-side inputs
//! (advantages, pi_old, the reference's log-probs, the mask and the step's normalisers) are built
//! once, then `micro_batch` rollouts at a time go through the policy with autodiff; the LM head
//! reads the completion positions only, in chunks (`dsmath_model::head`); each micro-batch's loss
//! is taken on a leaf of its log-probs, and its gradient `dL/dlogp` is pushed through the head
//! and the body by a chunked surrogate. Gradients are summed over the micro-batches, clipped, and
//! AdamW makes one step, so every micro-batch size gives the whole-batch step.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, ElementConversion, Tensor, TensorData};
use dsmath_model::LlamaForCausalLM;
use dsmath_model::head::{target_logp, weighted_logp_surrogate};
use serde::Serialize;

use crate::error::TrainError;
use crate::optim::{AdamW, FlatGrads, accumulate, clip, collect_grads};
use crate::rl::advantages::{group_advantages, ppo_advantages, ppo_gae, rewards, whiten};
use crate::rl::critic::{Critic, ValueTargets, critic_step, frozen, old_values};
use crate::rl::explore::{Rollout, informative_groups, max_len};
use crate::rl::logprobs::{completion_hidden, token_logp};
use crate::rl::loss::{Algorithm, GrpoLossConfig, LossInputs, LossStats, dpo_loss, grpo_loss};
use crate::rl::parallel::DpGroup;
use crate::trainer::in_dtype;

/// What one policy update needs besides the models, the optimizer and the rollouts.
#[derive(Debug, Clone)]
pub struct UpdateArgs {
    /// Questions in the batch (rollout `group` indices run `0..groups`).
    pub groups: usize,
    pub loss: GrpoLossConfig,
    pub lr: f64,
    /// Global gradient-norm clip.
    pub grad_clip: f64,
    pub pad: u32,
    /// Mixed precision (`train.dtype`): the policy's and the reference's forward (and the
    /// policy's backward) run on a view of the f32 weights cast to this dtype; log-probs, the loss
    /// and the optimizer stay f32. `None`: f32 throughout.
    pub dtype: Option<DType>,
    /// Rollouts per forward / backward (`[grpo] micro_batch`); 0: the whole batch at once.
    pub micro_batch: usize,
    /// Completion positions per LM-head chunk (`[grpo] logits_chunk`).
    pub logits_chunk: usize,
    /// Data parallel: this rank's group; the rollouts are its share of the step, and the
    /// normalisers, gradients and statistics are the whole step's ([`crate::rl::parallel`]).
    pub dp: Option<DpGroup>,
}

impl UpdateArgs {
    /// f32, gradient clip 1.0, the whole batch in one micro-batch.
    pub fn new(groups: usize, loss: GrpoLossConfig, lr: f64, pad: u32) -> Self {
        UpdateArgs {
            groups,
            loss,
            lr,
            grad_clip: 1.0,
            pad,
            dtype: None,
            micro_batch: 0,
            logits_chunk: dsmath_model::head::DEFAULT_CHUNK,
            dp: None,
        }
    }

    /// Rollouts per micro-batch for a batch of `n`.
    pub fn micro_batch(&self, n: usize) -> usize {
        if self.micro_batch == 0 {
            n.max(1)
        } else {
            self.micro_batch
        }
    }
}

/// Metrics of one GRPO step.
#[derive(Debug, Clone, Serialize)]
pub struct GrpoStepStats {
    pub reward_mean: f64,
    pub reward_std: f64,
    pub zero_std_groups: f64,
    pub loss: f64,
    pub kl: f64,
    pub clip_low: f64,
    pub clip_high: f64,
    pub grad_norm: f64,
    /// Mean entropy (nats) of the policy's next-token distribution over the sampled tokens.
    pub entropy: f64,
    pub response_len_mean: f64,
    pub response_len_max: usize,
    pub truncated_share: f64,
    /// Mean |sampler log-prob - trainer log-prob| before the update (should be ~0).
    pub logp_mismatch: f64,
    /// Mismatch correction ([`crate::rl::correction`]): shares of tokens capped / masked.
    pub is_capped_share: f64,
    pub is_masked_share: f64,
    pub failed_rewards: usize,
    pub skipped: bool,
    /// PPO: the value model's loss on this batch (0 for critic-free algorithms).
    pub value_loss: f64,
    /// Dynamic sampling: groups explored and dropped (equal rewards), extra exploration rounds.
    pub dropped_groups: usize,
    pub refills: usize,
}

/// The stats of a step that do not depend on an update (rewards, lengths, truncation, mismatch);
/// the whole stats of a step that made none (DPO without a pair, no informative group).
pub fn stats_without_update(
    rollouts: &[Rollout],
    groups: usize,
    zero_std: usize,
    mismatch: f64,
) -> GrpoStepStats {
    let n = rollouts.len().max(1) as f64;
    let mean = rollouts.iter().map(|r| r.reward).sum::<f64>() / n;
    GrpoStepStats {
        reward_mean: mean,
        reward_std: (rollouts
            .iter()
            .map(|r| (r.reward - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt(),
        zero_std_groups: zero_std as f64 / groups.max(1) as f64,
        loss: 0.0,
        kl: 0.0,
        clip_low: 0.0,
        clip_high: 0.0,
        grad_norm: 0.0,
        entropy: 0.0,
        response_len_mean: rollouts.iter().map(|r| r.tokens.len()).sum::<usize>() as f64 / n,
        response_len_max: rollouts.iter().map(|r| r.tokens.len()).max().unwrap_or(0),
        truncated_share: rollouts.iter().filter(|r| r.truncated).count() as f64 / n,
        logp_mismatch: mismatch,
        is_capped_share: 0.0,
        is_masked_share: 0.0,
        failed_rewards: 0,
        skipped: false,
        value_loss: 0.0,
        dropped_groups: 0,
        refills: 0,
    }
}

/// [`stats_without_update`] of the whole step: with data parallelism, over every rank's
/// rollouts (`device`: where the all-reduce runs).
pub fn step_stats<B: burn::tensor::backend::Backend>(
    rollouts: &[Rollout],
    groups: usize,
    zero_std: usize,
    args: &UpdateArgs,
    device: &B::Device,
) -> Result<GrpoStepStats, TrainError> {
    let local = stats_without_update(rollouts, groups, zero_std, 0.0);
    let Some(dp) = &args.dp else {
        return Ok(local);
    };
    let n = rollouts.len() as f64;
    let rs = rollouts.iter().map(|r| r.reward);
    let mine = [
        n,
        rs.clone().sum::<f64>(),
        rs.map(|r| r * r).sum::<f64>(),
        zero_std as f64,
        groups as f64,
        local.response_len_mean * n,
        local.response_len_max as f64,
        local.truncated_share * n,
    ];
    let all = dp.gather::<B>(&mine, device)?;
    let total = |i: usize| all.iter().map(|r| r[i]).sum::<f64>();
    let n = total(0).max(1.0);
    let mean = total(1) / n;
    Ok(GrpoStepStats {
        reward_mean: mean,
        reward_std: (total(2) / n - mean * mean).max(0.0).sqrt(),
        zero_std_groups: total(3) / total(4).max(1.0),
        response_len_mean: total(5) / n,
        response_len_max: all.iter().map(|r| r[6] as usize).max().unwrap_or(0),
        truncated_share: total(7) / n,
        ..local
    })
}

/// Sets the step's normalisers (outputs, counted tokens) to their sums over the ranks.
fn global_normalisers<B: burn::tensor::backend::Backend>(
    x: &mut LossInputs,
    args: &UpdateArgs,
    device: &B::Device,
) -> Result<(), TrainError> {
    if let Some(dp) = &args.dp {
        let tokens: f64 = x.mask.iter().map(|&m| m as f64).sum();
        let s = dp.sum::<B>(&[x.n as f64, tokens], device)?;
        x.seq_total = s[0].round() as usize;
        x.token_total = s[1].max(1.0);
    }
    Ok(())
}

/// Host-side loss inputs of the whole step from the token advantages `adv` (one per token of
/// each rollout) and the reference's log-probs `ref_logp` `[n * t]`. pi_old is the trainer's
/// log-prob where a mismatch correction set one, else the sampler's; tokens whose sampler
/// log-prob is not finite, and truncated outputs under `mask_truncated`, do not count.
pub fn loss_inputs(
    rollouts: &[Rollout],
    adv: &[Vec<f64>],
    ref_logp: Vec<f32>,
    t: usize,
    cfg: &GrpoLossConfig,
) -> LossInputs {
    let n = rollouts.len();
    let mut x = LossInputs {
        ref_logp,
        ..LossInputs::zeros(n, t)
    };
    let weighted = rollouts.iter().any(|r| !r.is_weight.is_empty());
    if weighted {
        x.is_weight = vec![0.0; n * t];
    }
    for (i, r) in rollouts.iter().enumerate() {
        for (j, &old) in r.old_logp.iter().enumerate().take(r.tokens.len()) {
            let q = i * t + j;
            if !old.is_finite() || (cfg.mask_truncated && r.truncated) {
                continue;
            }
            x.mask[q] = 1.0;
            x.old_logp[q] = r.trainer_logp.get(j).copied().unwrap_or(old);
            x.advantages[q] = adv[i][j] as f32;
            if weighted {
                x.is_weight[q] = r.is_weight.get(j).copied().unwrap_or(1.0);
            }
        }
    }
    x.count_tokens()
}

/// The reference's log-probs of the rollouts' tokens, `[n * t]` (zeros when neither the KL nor
/// DPO needs them), micro-batched and chunked, without autodiff.
pub fn reference_logp<B: burn::tensor::backend::Backend>(
    reference: &LlamaForCausalLM<B>,
    rollouts: &[Rollout],
    args: &UpdateArgs,
) -> Vec<f32> {
    let t = max_len(rollouts);
    if args.loss.beta > 0.0 || args.loss.algorithm == Algorithm::Dpo {
        token_logp(
            &in_dtype(reference, args.dtype),
            rollouts,
            args.pad,
            args.micro_batch(rollouts.len()),
            args.logits_chunk,
            false,
        )
        .0
    } else {
        vec![0.0; rollouts.len() * t]
    }
}

/// What the micro-batches of one update saw.
#[derive(Debug, Clone, Default)]
struct Seen {
    loss: f64,
    stats: LossStats,
    entropy: f64,
    mismatch: f64,
    counted: f64,
}

impl Seen {
    /// Entropy and sampler mismatch of a counted token.
    fn token(&mut self, entropy: f32, now: f32, sampler: f32) {
        self.entropy += entropy as f64;
        self.mismatch += (now - sampler).abs() as f64;
        self.counted += 1.0;
    }
}

/// The loss of a micro-batch from a leaf of its log-probs `[n, t]`.
type MicroLoss<'a, AB> = &'a dyn Fn(Tensor<AB, 2>, &LossInputs) -> (Tensor<AB, 1>, LossStats);

/// Where each token's gradient coefficient `dL/dlogp` comes from.
enum Coefficients<'a, AB: AutodiffBackend> {
    /// The micro-batch's own loss ([`grpo_loss`]: its terms are per output, with the step's
    /// normalisers).
    Loss(MicroLoss<'a, AB>),
    /// Precomputed for the whole step (`[n * t]`; DPO, whose pairs span micro-batches).
    Fixed(&'a [f32]),
}

/// The policy's gradients of the step's loss, summed over micro-batches.
fn policy_grads<AB: AutodiffBackend>(
    policy: &LlamaForCausalLM<AB>,
    rollouts: &[Rollout],
    x: &LossInputs,
    args: &UpdateArgs,
    coef: Coefficients<AB>,
) -> (FlatGrads<AB::InnerBackend>, Seen) {
    let fwd = in_dtype(policy, args.dtype);
    let head = fwd.head_weight();
    let device = head.device();
    let mb = args.micro_batch(rollouts.len());
    let (mut grads, mut seen) = (vec![], Seen::default());
    for i0 in (0..rollouts.len()).step_by(mb) {
        let part = &rollouts[i0..(i0 + mb).min(rollouts.len())];
        let tm = max_len(part);
        let xm = x.rows(i0..i0 + part.len(), tm);
        let Some(rows) = completion_hidden(&fwd, part, args.pad) else {
            continue;
        };
        let (now, ent) = target_logp(
            rows.hidden.clone().inner(),
            head.clone().inner(),
            &rows.targets,
            args.logits_chunk,
            true,
        );
        let mut grid = vec![0f32; part.len() * tm];
        for (k, &(i, j)) in rows.at.iter().enumerate() {
            grid[i * tm + j] = now[k];
            if xm.mask[i * tm + j] > 0.0 {
                seen.token(ent[k], now[k], part[i].old_logp[j]);
            }
        }
        let c: Vec<f32> = match &coef {
            Coefficients::Loss(f) => {
                let leaf =
                    Tensor::<AB, 2>::from_data(TensorData::new(grid, [part.len(), tm]), &device)
                        .require_grad();
                let (loss, st) = f(leaf.clone(), &xm);
                seen.loss += loss.clone().into_scalar().elem::<f64>();
                seen.stats = seen.stats.merge(&st);
                let g: Vec<f32> = leaf
                    .grad(&loss.backward())
                    .map(|g| g.into_data().convert::<f32>().to_vec().unwrap_or_default())
                    .unwrap_or_else(|| vec![0.0; part.len() * tm]);
                rows.at.iter().map(|&(i, j)| g[i * tm + j]).collect()
            }
            Coefficients::Fixed(c) => rows
                .at
                .iter()
                .map(|&(i, j)| c[(i0 + i) * x.t + j])
                .collect(),
        };
        let (surrogate, _) = weighted_logp_surrogate(
            rows.hidden,
            head.clone(),
            &rows.targets,
            &c,
            args.logits_chunk,
        );
        accumulate(&mut grads, collect_grads(policy, &surrogate.backward()));
    }
    (grads, seen)
}

/// Clip and apply summed gradients unless the loss or the norm is not finite; fills the stats'
/// loss, KL, clip fractions, entropy, mismatch and grad norm. With data parallelism the
/// gradients and what the micro-batches saw are first summed over the ranks.
fn apply<AB: AutodiffBackend>(
    policy: LlamaForCausalLM<AB>,
    opt: &mut AdamW<AB::InnerBackend>,
    grads: FlatGrads<AB::InnerBackend>,
    seen: &Seen,
    args: &UpdateArgs,
    stats: &mut GrpoStepStats,
) -> Result<LlamaForCausalLM<AB>, TrainError> {
    let (grads, seen) = match &args.dp {
        None => (grads, seen.clone()),
        Some(dp) => {
            let device = policy.head_weight().device();
            let (grads, loss) = dp.reduce_grads::<AB, _>(&policy, grads, seen.loss, &device)?;
            let st = &seen.stats;
            let s = dp.sum::<AB::InnerBackend>(
                &[
                    st.kl * st.tokens,
                    st.clip_low_fraction * st.tokens,
                    st.clip_high_fraction * st.tokens,
                    st.tokens,
                    seen.entropy,
                    seen.mismatch,
                    seen.counted,
                ],
                &device,
            )?;
            let tokens = s[3].max(1e-300);
            let stats = LossStats {
                kl: s[0] / tokens,
                clip_low_fraction: s[1] / tokens,
                clip_high_fraction: s[2] / tokens,
                tokens: s[3],
            };
            let (entropy, mismatch, counted) = (s[4], s[5], s[6]);
            let seen = Seen {
                loss,
                stats,
                entropy,
                mismatch,
                counted,
            };
            (grads, seen)
        }
    };
    let seen = &seen;
    stats.loss = seen.loss;
    stats.kl = seen.stats.kl;
    stats.clip_low = seen.stats.clip_low_fraction;
    stats.clip_high = seen.stats.clip_high_fraction;
    stats.entropy = seen.entropy / seen.counted.max(1.0);
    stats.logp_mismatch = seen.mismatch / seen.counted.max(1.0);
    if !seen.loss.is_finite() {
        stats.skipped = true;
        return Ok(policy);
    }
    let (grads, norm) = clip(grads, args.grad_clip);
    stats.grad_norm = norm;
    if !norm.is_finite() {
        stats.skipped = true;
        return Ok(policy);
    }
    Ok(opt.step(policy, grads, args.lr))
}

/// One update of GRPO, its variants (DAPO's token mean, Dr. GRPO, GSPO, process supervision),
/// online RFT and RFT: group advantages, the clipped objective with the KL to `reference`, AdamW;
/// DPO goes to [`dpo_update`]. Returns the updated policy and the step's stats.
pub fn grpo_update<AB: AutodiffBackend>(
    policy: LlamaForCausalLM<AB>,
    reference: &LlamaForCausalLM<AB::InnerBackend>,
    opt: &mut AdamW<AB::InnerBackend>,
    rollouts: &[Rollout],
    args: &UpdateArgs,
) -> Result<(LlamaForCausalLM<AB>, GrpoStepStats), TrainError> {
    if args.loss.algorithm == Algorithm::Dpo {
        return dpo_update(policy, reference, opt, rollouts, args);
    }
    let (cfg, t) = (&args.loss, max_len(rollouts));
    let ref_logp = reference_logp(reference, rollouts, args);
    let (adv, zero_std) = group_advantages(
        rollouts,
        &rewards(rollouts, &ref_logp, t, cfg),
        args.groups,
        cfg,
    );
    let device = policy.head_weight().device();
    let mut x = loss_inputs(rollouts, &adv, ref_logp, t, cfg);
    global_normalisers::<AB::InnerBackend>(&mut x, args, &device)?;
    let loss = |lp: Tensor<AB, 2>, xm: &LossInputs| grpo_loss(lp, xm, cfg);
    let (grads, seen) = policy_grads(&policy, rollouts, &x, args, Coefficients::Loss(&loss));
    let mut stats = step_stats::<AB::InnerBackend>(rollouts, args.groups, zero_std, args, &device)?;
    let policy = apply(policy, opt, grads, &seen, args, &mut stats)?;
    Ok((policy, stats))
}

/// DPO on (correct, wrong) pairs of one question's outputs with `reference` as the reference: the
/// pair loss is taken once on the whole step's log-probs (computed without autodiff), and its
/// per-token gradient drives the micro-batched backward. A step without a pair is skipped.
pub fn dpo_update<AB: AutodiffBackend>(
    policy: LlamaForCausalLM<AB>,
    reference: &LlamaForCausalLM<AB::InnerBackend>,
    opt: &mut AdamW<AB::InnerBackend>,
    rollouts: &[Rollout],
    args: &UpdateArgs,
) -> Result<(LlamaForCausalLM<AB>, GrpoStepStats), TrainError> {
    use burn::module::AutodiffModule;
    let (n, t) = (rollouts.len(), max_len(rollouts));
    let zero_std = args.groups - informative_groups(rollouts, args.groups).len();
    let mut pairs = vec![];
    for g in 0..args.groups {
        let idx: Vec<usize> = (0..n).filter(|&i| rollouts[i].group == g).collect();
        for &c in idx.iter().filter(|&&i| rollouts[i].reward > 0.5) {
            pairs.extend(
                idx.iter()
                    .filter(|&&i| rollouts[i].reward <= 0.5)
                    .map(|&w| (c, w)),
            );
        }
    }
    let device = policy.head_weight().device();
    let mut stats = step_stats::<AB::InnerBackend>(rollouts, args.groups, zero_std, args, &device)?;
    let adv: Vec<Vec<f64>> = rollouts.iter().map(|r| vec![0.0; r.tokens.len()]).collect();
    let x = loss_inputs(
        rollouts,
        &adv,
        reference_logp(reference, rollouts, args),
        t,
        &args.loss,
    );
    let (now, ent) = token_logp(
        &in_dtype(&policy.valid(), args.dtype),
        rollouts,
        args.pad,
        args.micro_batch(n),
        args.logits_chunk,
        true,
    );
    let mut seen = Seen::default();
    for (i, r) in rollouts.iter().enumerate() {
        for j in (0..r.tokens.len()).filter(|&j| x.mask[i * t + j] > 0.0) {
            seen.token(ent[i * t + j], now[i * t + j], r.old_logp[j]);
        }
    }
    // The loss is the mean over the whole step's pairs (data parallel: every rank's).
    let all_pairs = match &args.dp {
        Some(dp) => dp.sum::<AB::InnerBackend>(&[pairs.len() as f64], &device)?[0].round() as usize,
        None => pairs.len(),
    };
    if all_pairs == 0 {
        if let Some(dp) = &args.dp {
            let s =
                dp.sum::<AB::InnerBackend>(&[seen.entropy, seen.mismatch, seen.counted], &device)?;
            (seen.entropy, seen.mismatch, seen.counted) = (s[0], s[1], s[2]);
        }
        stats.skipped = true;
        stats.entropy = seen.entropy / seen.counted.max(1.0);
        stats.logp_mismatch = seen.mismatch / seen.counted.max(1.0);
        return Ok((policy, stats));
    }
    let coef: Vec<f32> = if pairs.is_empty() {
        vec![0.0; n * t] // this rank's groups have no pair; the others' do
    } else {
        let leaf = Tensor::<AB, 2>::from_data(TensorData::new(now, [n, t]), &device).require_grad();
        let loss = dpo_loss(leaf.clone(), &x, &pairs, args.loss.dpo_beta)
            .mul_scalar(pairs.len() as f64 / all_pairs as f64);
        seen.loss = loss.clone().into_scalar().elem::<f64>();
        leaf.grad(&loss.backward())
            .map(|g| g.into_data().convert::<f32>().to_vec().unwrap_or_default())
            .unwrap_or_else(|| vec![0.0; n * t])
    };
    let (grads, _) = policy_grads(&policy, rollouts, &x, args, Coefficients::Fixed(&coef));
    let policy = apply(policy, opt, grads, &seen, args, &mut stats)?;
    Ok((policy, stats))
}

/// One PPO update (§4.1.1): per-token rewards `-beta * KL(pi_old || pi_ref)` with the outcome
/// reward added on each output's last token, values from the critic before the update, GAE
/// advantages (whitened over the batch's tokens, as OpenRLHF / TRL do), the clipped policy
/// objective, then one critic step on the clipped value loss against the GAE returns. Returns
/// the updated policy and critic and the step's stats (`value_loss` is the critic's loss).
pub fn ppo_update<AB: AutodiffBackend>(
    policy: LlamaForCausalLM<AB>,
    critic: Critic<AB>,
    reference: &LlamaForCausalLM<AB::InnerBackend>,
    opt: &mut AdamW<AB::InnerBackend>,
    rollouts: &[Rollout],
    args: &UpdateArgs,
) -> Result<(LlamaForCausalLM<AB>, Critic<AB>, GrpoStepStats), TrainError> {
    let (cfg, n, t) = (&args.loss, rollouts.len(), max_len(rollouts));
    let old = old_values(&frozen(&critic), rollouts, args.pad, args.micro_batch(n), t);
    let ref_logp = reference_logp(reference, rollouts, args);
    let device = policy.head_weight().device();
    let (adv, rets, kl) = match &args.dp {
        None => ppo_advantages(rollouts, &old, &ref_logp, t, cfg),
        Some(dp) => {
            // Whitened over every rank's tokens (two passes, as on one device).
            let (mut adv, rets, (kl, kl_tokens)) = ppo_gae(rollouts, &old, &ref_logp, t, cfg);
            let count = adv.iter().map(|a| a.len()).sum::<usize>() as f64;
            let s = dp.sum::<AB::InnerBackend>(
                &[
                    adv.iter().flatten().sum::<f64>(),
                    count,
                    kl,
                    kl_tokens as f64,
                ],
                &device,
            )?;
            let (m, mean) = (s[1].max(1.0), s[0] / s[1].max(1.0));
            let dev2: f64 = adv.iter().flatten().map(|a| (a - mean).powi(2)).sum();
            let var = dp.sum::<AB::InnerBackend>(&[dev2], &device)?[0] / m;
            whiten(&mut adv, mean, var.sqrt());
            (adv, rets, s[2] / s[3].max(1.0))
        }
    };
    let zero_std = group_advantages(
        rollouts,
        &rewards(rollouts, &ref_logp, t, cfg),
        args.groups,
        cfg,
    )
    .1;
    let mut x = loss_inputs(rollouts, &adv, ref_logp, t, cfg);
    global_normalisers::<AB::InnerBackend>(&mut x, args, &device)?;
    let loss = |lp: Tensor<AB, 2>, xm: &LossInputs| grpo_loss(lp, xm, cfg);
    let (grads, seen) = policy_grads(&policy, rollouts, &x, args, Coefficients::Loss(&loss));
    let mut stats = step_stats::<AB::InnerBackend>(rollouts, args.groups, zero_std, args, &device)?;
    let policy = apply(policy, opt, grads, &seen, args, &mut stats)?;
    stats.kl = kl;
    let mut returns = vec![0f32; n * t];
    for (i, ret) in rets.iter().enumerate() {
        for (j, r) in ret.iter().enumerate() {
            returns[i * t + j] = *r as f32;
        }
    }
    let (critic, v) = critic_step(
        critic,
        rollouts,
        &ValueTargets {
            old,
            returns,
            mask: x.mask,
            t,
        },
        args,
    )?;
    stats.value_loss = v;
    Ok((policy, critic, stats))
}
