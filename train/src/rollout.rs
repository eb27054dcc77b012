//! GRPO exploration and one policy update (DeepSeekMath §4.1, Algorithm 1 inner loop): G outputs
//! per question from the generation engine (one shared prefill), the sampler's per-token log-probs
//! kept as pi_old, rule-based rewards from the eval grader, group-normalised advantages, and the
//! clipped objective with the KL to a frozen reference. A reward function that panics on one
//! sample gives that sample no reward and is reported; it does not stop the step.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Int, Tensor, TensorData};
use dsmath_model::{LlamaForCausalLM, SamplingParams, Tokenizer, generate};
use serde::Serialize;

use crate::error::TrainError;
use crate::grpo::{Algorithm, GrpoLossConfig, LossInputs, LossStats, dpo_loss, gae, grpo_loss, kl_value, outcome_advantages, process_advantages, value_loss};
use crate::optim::{AdamW, clip, collect_grads};
use crate::reward_model::RewardModel;
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
}

impl UpdateArgs {
    /// f32, gradient clip 1.0.
    pub fn new(groups: usize, loss: GrpoLossConfig, lr: f64, pad: u32) -> Self {
        UpdateArgs { groups, loss, lr, grad_clip: 1.0, pad, dtype: None }
    }
}

/// One sampled output.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub group: usize,
    pub prompt_ids: Vec<u32>,
    pub tokens: Vec<u32>,
    /// Sampler log-probs of `tokens` (pi_old).
    pub old_logp: Vec<f32>,
    pub text: String,
    pub reward: f64,
    pub truncated: bool,
    /// Process supervision: a reward per reasoning step, and each token's step index.
    pub step_rewards: Option<Vec<f64>>,
    pub step_of: Vec<usize>,
}

/// Steps of a completion: each token's step index and the index of each step's last token.
/// A step ends with the token that completes a `delimiter`; the final step ends at the last token.
pub fn step_ends(tok: &Tokenizer, tokens: &[u32], delimiter: &str) -> (Vec<usize>, Vec<usize>) {
    let mut step_of = Vec::with_capacity(tokens.len());
    let mut ends = vec![];
    let mut count = 0;
    for t in 0..tokens.len() {
        step_of.push(ends.len());
        if !delimiter.is_empty() {
            let c = tok.decode(&tokens[..=t]).map(|s| s.matches(delimiter).count()).unwrap_or(count);
            if c > count {
                ends.push(t);
                count = c;
            }
        }
    }
    if !tokens.is_empty() && ends.last() != Some(&(tokens.len() - 1)) {
        ends.push(tokens.len() - 1);
    }
    (step_of, ends)
}

/// Sample `g` outputs for each `(prompt_ids, gold)` and score them with `reward`.
pub fn explore<B: Backend>(
    model: &LlamaForCausalLM<B>,
    tok: &Tokenizer,
    prompts: &[(Vec<u32>, String)],
    g: usize,
    params: &SamplingParams,
    reward: &(dyn Fn(&str, &str) -> f64 + std::panic::RefUnwindSafe),
) -> Result<(Vec<Rollout>, usize), TrainError> {
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| p.0.clone()).collect();
    let mut p = params.clone();
    p.n = g;
    let samples = generate(model, tok, &ids, &p, None)?;
    let mut failed = 0;
    let out = samples
        .into_iter()
        .map(|s| {
            let gold = &prompts[s.prompt].1;
            let r = match std::panic::catch_unwind(|| reward(&s.text, gold)) {
                Ok(r) if r.is_finite() => r,
                _ => {
                    failed += 1;
                    0.0
                }
            };
            Rollout {
                group: s.prompt,
                prompt_ids: prompts[s.prompt].0.clone(),
                truncated: s.finish == dsmath_model::FinishReason::Length,
                tokens: s.tokens,
                old_logp: s.logprobs,
                text: s.text,
                reward: r,
                step_rewards: None,
                step_of: vec![],
            }
        })
        .collect();
    Ok((out, failed))
}

/// Log-probs of each rollout's tokens under `model`: `[n, t_max]` (rows padded with 0).
/// Prompts are left-padded so every completion starts at the same column.
pub fn token_logp<B: Backend>(model: &LlamaForCausalLM<B>, rollouts: &[Rollout], pad: u32) -> Tensor<B, 2> {
    token_logp_entropy(model, rollouts, pad).0
}

/// [`token_logp`] and the entropy of the model's next-token distribution at each of those
/// positions, both `[n, t_max]`.
pub fn token_logp_entropy<B: Backend>(model: &LlamaForCausalLM<B>, rollouts: &[Rollout], pad: u32) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let device = model.model.embed_tokens.val().device();
    let p = rollouts.iter().map(|r| r.prompt_ids.len()).max().unwrap_or(1);
    let t = rollouts.iter().map(|r| r.tokens.len()).max().unwrap_or(1).max(1);
    let n = rollouts.len();
    let mut ids = Vec::with_capacity(n * (p + t));
    let mut valid = Vec::with_capacity(n);
    let mut targets = Vec::with_capacity(n * t);
    for r in rollouts {
        let left = p - r.prompt_ids.len();
        let row: Vec<u32> = std::iter::repeat_n(pad, left).chain(r.prompt_ids.iter().copied()).chain(r.tokens.iter().copied()).chain(std::iter::repeat_n(pad, t - r.tokens.len())).collect();
        valid.push((0..p + t).map(|j| j >= left && j < p + r.tokens.len()).collect::<Vec<bool>>());
        targets.extend(r.tokens.iter().map(|&x| x as i64).chain(std::iter::repeat_n(pad as i64, t - r.tokens.len())));
        ids.extend(row.into_iter().map(|x| x as i64));
    }
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, p + t]), &device);
    let logits = model.forward_padded(input, &valid); // [n, p + t, V]
    let logits = if logits.dtype() == DType::F32 { logits } else { logits.cast(DType::F32) }; // log-probs in f32
    let logp = log_softmax(logits.narrow(1, p - 1, t), 2); // [n, t, V]: predicts completion tokens
    let entropy = -(logp.clone().exp() * logp.clone()).sum_dim(2).reshape([n, t]); // [n, t]
    let tg = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, t]), &device).reshape([n, t, 1]);
    (logp.gather(2, tg).reshape([n, t]), entropy)
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
    pub failed_rewards: usize,
    pub skipped: bool,
    /// PPO: the value model's loss on this batch (0 for critic-free algorithms).
    pub value_loss: f64,
    /// Dynamic sampling: groups explored and dropped (equal rewards), extra exploration rounds.
    pub dropped_groups: usize,
    pub refills: usize,
}

/// Indices of the groups whose rewards are not all equal (dynamic sampling keeps only these:
/// an all-equal group has zero advantages and teaches nothing).
pub fn informative_groups(rollouts: &[Rollout], groups: usize) -> Vec<usize> {
    (0..groups)
        .filter(|&g| {
            let rs: Vec<f64> = rollouts.iter().filter(|r| r.group == g).map(|r| r.reward).collect();
            rs.windows(2).any(|w| w[0] != w[1])
        })
        .collect()
}

/// The stats of a step that do not depend on an update (rewards, lengths, truncation, mismatch);
/// the whole stats of a step that made none (DPO without a pair, no informative group).
pub fn stats_without_update(rollouts: &[Rollout], groups: usize, zero_std: usize, mismatch: f64) -> GrpoStepStats {
    let n = rollouts.len().max(1) as f64;
    let mean = rollouts.iter().map(|r| r.reward).sum::<f64>() / n;
    GrpoStepStats {
        reward_mean: mean,
        reward_std: (rollouts.iter().map(|r| (r.reward - mean).powi(2)).sum::<f64>() / n).sqrt(),
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
        failed_rewards: 0,
        skipped: false,
        value_loss: 0.0,
        dropped_groups: 0,
        refills: 0,
    }
}

/// One policy update on `rollouts` (mu = 1): advantages, the GRPO loss against `reference`,
/// clipping, AdamW. Returns the updated policy and the step's stats.
pub fn grpo_update<AB: AutodiffBackend>(
    policy: LlamaForCausalLM<AB>,
    reference: &LlamaForCausalLM<AB::InnerBackend>,
    opt: &mut AdamW<AB::InnerBackend>,
    rollouts: &[Rollout],
    args: &UpdateArgs,
) -> Result<(LlamaForCausalLM<AB>, GrpoStepStats), TrainError> {
    policy_update(policy, reference, opt, rollouts, args, None).map(|u| (u.0, u.1))
}

/// PPO's value model (the decoder with a scalar head, started from the SFT model with a zero
/// head) and its optimizer.
pub struct Critic<AB: AutodiffBackend> {
    pub model: RewardModel<AB>,
    pub opt: AdamW<AB::InnerBackend>,
}

/// The value model's estimate `V(q, o_<t)` for each rollout token `t` (read at the position that
/// predicts the token, as the policy's log-prob is): `[n, t_max]`, rows padded with the last value.
pub fn token_values<B: Backend>(critic: &RewardModel<B>, rollouts: &[Rollout], pad: u32) -> Tensor<B, 2> {
    let device = critic.score.val().device();
    let rows: Vec<Vec<u32>> = rollouts.iter().map(|r| r.prompt_ids.iter().chain(&r.tokens).copied().collect()).collect();
    let scores = critic.scores(&rows, pad); // [n, s], right-padded
    let width = scores.dims()[1];
    let (n, t) = (rollouts.len(), rollouts.iter().map(|r| r.tokens.len()).max().unwrap_or(1).max(1));
    let idx: Vec<i64> = rollouts.iter().flat_map(|r| (0..t).map(move |j| (r.prompt_ids.len() + j.min(r.tokens.len().saturating_sub(1))).saturating_sub(1).min(width - 1) as i64)).collect();
    scores.gather(1, Tensor::<B, 2, Int>::from_data(TensorData::new(idx, [n, t]), &device)) // [n, t]
}

/// One PPO update (§4.1.1): per-token rewards `-beta * KL(pi_old || pi_ref)` with the outcome
/// reward added on each output's last token, values from the critic before the update, GAE
/// advantages (whitened over the batch's tokens, as OpenRLHF / TRL do), the clipped policy
/// objective, then one critic step on the clipped value loss against the GAE returns. Returns
/// the updated policy and critic and the step's stats (`value_loss` is the critic's loss).
pub fn ppo_update<AB: AutodiffBackend>(
    policy: LlamaForCausalLM<AB>,
    mut critic: Critic<AB>,
    reference: &LlamaForCausalLM<AB::InnerBackend>,
    opt: &mut AdamW<AB::InnerBackend>,
    rollouts: &[Rollout],
    args: &UpdateArgs,
) -> Result<(LlamaForCausalLM<AB>, Critic<AB>, GrpoStepStats), TrainError> {
    use burn::module::AutodiffModule;
    let (pad, cfg, lr, grad_clip) = (args.pad, &args.loss, args.lr, args.grad_clip);
    let old_values: Vec<f32> = token_values(&critic.model.valid(), rollouts, pad).into_data().convert::<f32>().to_vec().unwrap_or_default();
    let (policy, mut stats, returns, mask) = policy_update(policy, reference, opt, rollouts, args, Some(&old_values))?;
    let loss = value_loss(token_values(&critic.model, rollouts, pad), &old_values, &returns, &mask, cfg.value_clip);
    let v: f64 = loss.clone().into_scalar().elem();
    stats.value_loss = v;
    if v.is_finite() {
        let (grads, norm) = clip(collect_grads(&critic.model, &loss.backward()), grad_clip);
        if norm.is_finite() {
            critic.model = critic.opt.step(critic.model, grads, lr * cfg.critic_lr_scale);
        }
    }
    Ok((policy, critic, stats))
}

/// PPO's token advantages and value targets for each rollout from `old_values` `[n * t]`:
/// rewards `-beta * KL` per token (the `cfg.kl` estimator on the sampler's log-probs) plus the
/// outcome reward on the last token, GAE, then whitening over all response tokens of the batch.
/// Also returns the mean per-token KL estimate.
fn ppo_advantages(rollouts: &[Rollout], old_values: &[f32], ref_logp: &[f32], t: usize, cfg: &GrpoLossConfig) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, f64) {
    let mut advs = vec![];
    let mut rets = vec![];
    let mut kl = (0.0, 0usize);
    for (i, r) in rollouts.iter().enumerate() {
        let k = r.tokens.len();
        let kls: Vec<f64> = (0..k).map(|j| if r.old_logp[j].is_finite() { kl_value(r.old_logp[j] as f64, ref_logp[i * t + j] as f64, cfg.kl) } else { 0.0 }).collect();
        kl.0 += kls.iter().sum::<f64>();
        kl.1 += k;
        let mut rw: Vec<f64> = kls.iter().map(|x| -cfg.beta * x).collect();
        if let Some(last) = rw.last_mut() {
            *last += r.reward;
        }
        let v: Vec<f64> = (0..k).map(|j| old_values[i * t + j] as f64).collect();
        let (a, ret) = gae(&rw, &v, cfg.gamma, cfg.gae_lambda);
        advs.push(a);
        rets.push(ret);
    }
    let all: Vec<f64> = advs.iter().flatten().copied().collect();
    let m = all.len().max(1) as f64;
    let mean = all.iter().sum::<f64>() / m;
    let std = (all.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / m).sqrt();
    for a in advs.iter_mut().flatten() {
        *a = (*a - mean) / (std + 1e-8);
    }
    (advs, rets, kl.0 / kl.1.max(1) as f64)
}

/// The policy update shared by GRPO, its variants, the RFT / DPO baselines and PPO (when
/// `old_values` are given: GAE advantages instead of group ones). Also returns PPO's value
/// targets and the token mask, both `[n * t]`.
#[allow(clippy::type_complexity)]
fn policy_update<AB: AutodiffBackend>(
    policy: LlamaForCausalLM<AB>,
    reference: &LlamaForCausalLM<AB::InnerBackend>,
    opt: &mut AdamW<AB::InnerBackend>,
    rollouts: &[Rollout],
    args: &UpdateArgs,
    old_values: Option<&[f32]>,
) -> Result<(LlamaForCausalLM<AB>, GrpoStepStats, Vec<f32>, Vec<f32>), TrainError> {
    let (groups, cfg, lr, grad_clip, pad) = (args.groups, &args.loss, args.lr, args.grad_clip, args.pad);
    let n = rollouts.len();
    let t = rollouts.iter().map(|r| r.tokens.len()).max().unwrap_or(1).max(1);
    let ref_logp: Vec<f32> = if cfg.beta > 0.0 || cfg.algorithm == Algorithm::Dpo { token_logp(&in_dtype(reference, args.dtype), rollouts, pad).into_data().convert::<f32>().to_vec().unwrap_or_default() } else { vec![0.0; n * t] };
    // KL in the reward (`kl_in_reward`): r_i - beta * sum_t KL(pi_old || pi_ref) estimate.
    let rewards: Vec<f64> = rollouts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if cfg.kl_in_reward && cfg.beta > 0.0 {
                let kl: f64 = (0..r.tokens.len())
                    .filter(|&j| r.old_logp[j].is_finite())
                    .map(|j| kl_value(r.old_logp[j] as f64, ref_logp[i * t + j] as f64, cfg.kl))
                    .sum();
                r.reward - cfg.beta * kl
            } else {
                r.reward
            }
        })
        .collect();
    let mut adv = vec![0f64; n];
    let mut token_adv: Vec<Option<Vec<f64>>> = vec![None; n];
    let mut zero_std = 0;
    for g in 0..groups {
        let idx: Vec<usize> = (0..n).filter(|&i| rollouts[i].group == g).collect();
        let rs: Vec<f64> = idx.iter().map(|&i| rewards[i]).collect();
        if rs.windows(2).all(|w| w[0] == w[1]) {
            zero_std += 1;
        }
        if !idx.is_empty() && idx.iter().all(|&i| rollouts[i].step_rewards.is_some()) {
            // Process supervision: per-token advantages from the group's step rewards.
            let steps: Vec<Vec<f64>> = idx.iter().map(|&i| rollouts[i].step_rewards.clone().unwrap_or_default()).collect();
            let step_of: Vec<Vec<usize>> = idx.iter().map(|&i| rollouts[i].step_of.clone()).collect();
            for (k, a) in process_advantages(&steps, &step_of).into_iter().enumerate() {
                token_adv[idx[k]] = Some(a);
            }
        } else if matches!(cfg.algorithm, Algorithm::Rft | Algorithm::OnlineRft) {
            for &i in &idx {
                adv[i] = rewards[i]; // coefficient 1 for a correct output, 0 otherwise
            }
        } else {
            for (k, a) in outcome_advantages(&rs, cfg.scale_by_std).into_iter().enumerate() {
                adv[idx[k]] = a;
            }
        }
    }
    let mut returns = vec![0f32; n * t];
    let mut ppo_kl = 0.0;
    if let Some(values) = old_values {
        let (a, ret, kl) = ppo_advantages(rollouts, values, &ref_logp, t, cfg);
        ppo_kl = kl;
        for (i, (a, ret)) in a.into_iter().zip(ret).enumerate() {
            for (j, r) in ret.iter().enumerate() {
                returns[i * t + j] = *r as f32;
            }
            token_adv[i] = Some(a);
        }
    }
    let mut x = LossInputs { n, t, old_logp: vec![0.0; n * t], ref_logp, advantages: vec![0.0; n * t], mask: vec![0.0; n * t] };
    for (i, r) in rollouts.iter().enumerate() {
        for j in 0..r.tokens.len() {
            x.old_logp[i * t + j] = r.old_logp[j];
            x.advantages[i * t + j] = token_adv[i].as_ref().and_then(|v| v.get(j).copied()).unwrap_or(adv[i]) as f32;
            let counts = r.old_logp[j].is_finite() && !(cfg.mask_truncated && r.truncated);
            x.mask[i * t + j] = if counts { 1.0 } else { 0.0 };
        }
    }
    let (logp, entropy) = token_logp_entropy(&in_dtype(&policy, args.dtype), rollouts, pad);
    let now: Vec<f32> = logp.clone().into_data().convert::<f32>().to_vec().unwrap_or_default();
    let ent: Vec<f32> = entropy.into_data().convert::<f32>().to_vec().unwrap_or_default();
    let counted: Vec<usize> = (0..n * t).filter(|&q| x.mask[q] > 0.0).collect();
    let entropy = counted.iter().map(|&q| ent[q] as f64).sum::<f64>() / counted.len().max(1) as f64;
    let mismatch = counted.iter().map(|&q| (now[q] - x.old_logp[q]).abs() as f64).sum::<f64>() / counted.len().max(1) as f64;
    let (loss, ls): (Tensor<AB, 1>, LossStats) = if cfg.algorithm == Algorithm::Dpo {
        // Pairs: every correct output with every wrong one of the same question.
        let mut pairs = vec![];
        for g in 0..groups {
            let idx: Vec<usize> = (0..n).filter(|&i| rollouts[i].group == g).collect();
            for &c in idx.iter().filter(|&&i| rollouts[i].reward > 0.5) {
                pairs.extend(idx.iter().filter(|&&i| rollouts[i].reward <= 0.5).map(|&w| (c, w)));
            }
        }
        if pairs.is_empty() {
            let mut st = stats_without_update(rollouts, groups, zero_std, mismatch);
            st.skipped = true;
            return Ok((policy, st, returns, x.mask));
        }
        (dpo_loss(logp, &x, &pairs, cfg.dpo_beta), LossStats::default())
    } else {
        grpo_loss(logp, &x, cfg)
    };
    let loss_v: f64 = loss.clone().into_scalar().elem();
    let mut stats = GrpoStepStats {
        loss: loss_v,
        kl: if old_values.is_some() { ppo_kl } else { ls.kl },
        clip_low: ls.clip_low_fraction,
        clip_high: ls.clip_high_fraction,
        entropy,
        ..stats_without_update(rollouts, groups, zero_std, mismatch)
    };
    if !loss_v.is_finite() {
        stats.skipped = true;
        return Ok((policy, stats, returns, x.mask));
    }
    let grads = collect_grads(&policy, &loss.backward());
    let (grads, norm) = clip(grads, grad_clip);
    stats.grad_norm = norm;
    if !norm.is_finite() {
        stats.skipped = true;
        return Ok((policy, stats, returns, x.mask));
    }
    let policy = opt.step(policy, grads, lr);
    Ok((policy, stats, returns, x.mask))
}

use burn::tensor::ElementConversion;
