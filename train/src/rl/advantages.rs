//! Advantages of one step's rollouts: group-normalised outcome advantages (DeepSeekMath §4.1.2),
//! process advantages from step rewards (§4.1.3), RFT's 0 / 1 coefficients (§5.2.1), the KL to the
//! reference subtracted from the reward (`kl_in_reward`), and PPO's GAE advantages (§4.1.1).

use crate::rl::explore::Rollout;
use crate::rl::loss::{
    Algorithm, GrpoLossConfig, gae, kl_value, outcome_advantages, process_advantages,
};

/// Each rollout's reward, less `beta` times its summed KL estimate to the reference when the KL
/// is in the reward. `ref_logp`: `[n * t]`.
pub fn rewards(rollouts: &[Rollout], ref_logp: &[f32], t: usize, cfg: &GrpoLossConfig) -> Vec<f64> {
    rollouts
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
        .collect()
}

/// Token advantages of every rollout (one value per token) from the rewards of its group, and
/// the number of groups whose rewards are all equal.
pub fn group_advantages(
    rollouts: &[Rollout],
    rewards: &[f64],
    groups: usize,
    cfg: &GrpoLossConfig,
) -> (Vec<Vec<f64>>, usize) {
    let n = rollouts.len();
    let mut adv: Vec<Vec<f64>> = rollouts.iter().map(|r| vec![0.0; r.tokens.len()]).collect();
    let mut zero_std = 0;
    for g in 0..groups {
        let idx: Vec<usize> = (0..n).filter(|&i| rollouts[i].group == g).collect();
        let rs: Vec<f64> = idx.iter().map(|&i| rewards[i]).collect();
        if rs.windows(2).all(|w| w[0] == w[1]) {
            zero_std += 1;
        }
        let fill =
            |adv: &mut Vec<Vec<f64>>, i: usize, a: f64| adv[i].iter_mut().for_each(|x| *x = a);
        if !idx.is_empty() && idx.iter().all(|&i| rollouts[i].step_rewards.is_some()) {
            // Process supervision: per-token advantages from the group's step rewards.
            let steps: Vec<Vec<f64>> = idx
                .iter()
                .map(|&i| rollouts[i].step_rewards.clone().unwrap_or_default())
                .collect();
            let step_of: Vec<Vec<usize>> =
                idx.iter().map(|&i| rollouts[i].step_of.clone()).collect();
            for (k, a) in process_advantages(&steps, &step_of).into_iter().enumerate() {
                let len = adv[idx[k]].len();
                adv[idx[k]] = a
                    .into_iter()
                    .chain(std::iter::repeat(0.0))
                    .take(len)
                    .collect();
            }
        } else if matches!(cfg.algorithm, Algorithm::Rft | Algorithm::OnlineRft) {
            for &i in &idx {
                fill(&mut adv, i, rewards[i]); // coefficient 1 for a correct output, 0 otherwise
            }
        } else {
            for (k, a) in outcome_advantages(&rs, cfg.scale_by_std)
                .into_iter()
                .enumerate()
            {
                fill(&mut adv, idx[k], a);
            }
        }
    }
    (adv, zero_std)
}

/// PPO's token advantages and value targets for each rollout from `old_values` `[n * t]`:
/// rewards `-beta * KL` per token (the `cfg.kl` estimator on the sampler's log-probs) plus the
/// outcome reward on the last token, GAE, then whitening over all response tokens of the batch.
/// Also returns the mean per-token KL estimate.
pub fn ppo_advantages(
    rollouts: &[Rollout],
    old_values: &[f32],
    ref_logp: &[f32],
    t: usize,
    cfg: &GrpoLossConfig,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, f64) {
    let (mut advs, rets, (kl, tokens)) = ppo_gae(rollouts, old_values, ref_logp, t, cfg);
    let all: Vec<f64> = advs.iter().flatten().copied().collect();
    let m = all.len().max(1) as f64;
    let mean = all.iter().sum::<f64>() / m;
    let std = (all.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / m).sqrt();
    whiten(&mut advs, mean, std);
    (advs, rets, kl / tokens.max(1) as f64)
}

/// [`ppo_advantages`] before the whitening: GAE advantages and value targets, and the sum of the
/// per-token KL estimates with the number of tokens.
pub fn ppo_gae(
    rollouts: &[Rollout],
    old_values: &[f32],
    ref_logp: &[f32],
    t: usize,
    cfg: &GrpoLossConfig,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, (f64, usize)) {
    let mut advs = vec![];
    let mut rets = vec![];
    let mut kl = (0.0, 0usize);
    for (i, r) in rollouts.iter().enumerate() {
        let k = r.tokens.len();
        let kls: Vec<f64> = (0..k)
            .map(|j| {
                if r.old_logp[j].is_finite() {
                    kl_value(r.old_logp[j] as f64, ref_logp[i * t + j] as f64, cfg.kl)
                } else {
                    0.0
                }
            })
            .collect();
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
    (advs, rets, kl)
}

/// Whitening: `(a - mean) / (std + 1e-8)` for every token advantage.
pub fn whiten(advs: &mut [Vec<f64>], mean: f64, std: f64) {
    for a in advs.iter_mut().flatten() {
        *a = (*a - mean) / (std + 1e-8);
    }
}
