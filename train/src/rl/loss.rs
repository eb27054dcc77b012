//! The GRPO objective (DeepSeekMath §4.1, Eq. 3) and its variants, as pure functions over one
//! batch of sampled outputs: group-normalised outcome advantages `(r - mean) / std`, process
//! advantages (sum of group-normalised step rewards from a token's step onward), the per-token
//! clipped ratio with `epsilon_low` / `epsilon_high` (clip-higher), the KL to the reference with
//! the k1 / k2 / k3 estimators (k3 = `pi_ref/pi - log(pi_ref/pi) - 1`, in the loss with beta
//! 0.04), and the aggregations: sequence-mean-then-mean (GRPO), token-mean (DAPO), constant
//! normaliser (Dr. GRPO), with a sequence-level ratio option (GSPO).

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimator {
    /// `log pi - log pi_ref`
    K1,
    /// `(log pi - log pi_ref)^2 / 2`
    K2,
    /// `pi_ref / pi - log(pi_ref / pi) - 1` (the paper's, unbiased and positive)
    K3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Mean over each output's tokens, then over outputs (GRPO, the paper).
    SequenceMean,
    /// Mean over all tokens of the batch (DAPO).
    TokenMean,
    /// Sum over tokens / (outputs x `max_len`) (Dr. GRPO).
    ConstantNormalizer,
}

/// The algorithm of the update: DeepSeekMath §5.2.1's unified paradigm on one code path. They
/// differ in the data source (samples of the SFT model = the frozen reference, or of the current
/// policy) and the gradient coefficient of each output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Policy samples; group-normalised advantages, clipped ratio, KL to the reference.
    Grpo,
    /// Policy samples; coefficient 1 for correct outputs, 0 otherwise (log-likelihood).
    OnlineRft,
    /// Rejection-sampling fine-tuning: samples of the SFT model; coefficient 1 if correct.
    Rft,
    /// Direct preference optimisation on (correct, wrong) pairs of SFT-model samples of one
    /// question, with the SFT model as reference.
    Dpo,
    /// PPO (§4.1.1, Eq. 1-2): policy samples; a learned value model (the decoder with a scalar
    /// head) as baseline, per-token rewards `-beta * KL` plus the outcome reward on the last
    /// token, GAE advantages, the clipped objective, and a clipped value loss.
    Ppo,
}

impl Algorithm {
    /// Explores with the frozen SFT model instead of the current policy.
    pub fn offline(self) -> bool {
        matches!(self, Algorithm::Rft | Algorithm::Dpo)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoLossConfig {
    pub algorithm: Algorithm,
    /// DPO's beta.
    pub dpo_beta: f64,
    pub epsilon_low: f64,
    pub epsilon_high: f64,
    /// KL coefficient (the paper: 0.04); 0 disables the reference.
    pub beta: f64,
    pub kl: KlEstimator,
    /// KL in the loss (GRPO) or subtracted from the reward (PPO-style).
    pub kl_in_reward: bool,
    pub aggregation: Aggregation,
    /// Dr. GRPO's constant: the generation length budget.
    pub max_len: usize,
    /// GSPO: one ratio per output, `exp(mean token log-ratio)`.
    pub sequence_ratio: bool,
    /// Divide advantages by the group std (off for Dr. GRPO).
    pub scale_by_std: bool,
    /// Overlong masking (DAPO's overlong filtering): outputs cut at `max_new_tokens` get no loss.
    pub mask_truncated: bool,
    /// PPO: GAE's discount and lambda (OpenRLHF / TRL defaults: 1.0 and 0.95).
    pub gamma: f64,
    pub gae_lambda: f64,
    /// PPO: the value loss clips new values to `old +- value_clip`.
    pub value_clip: f64,
    /// PPO: the value model's learning rate as a multiple of the policy's (same schedule).
    pub critic_lr_scale: f64,
}

impl Default for GrpoLossConfig {
    fn default() -> Self {
        GrpoLossConfig {
            algorithm: Algorithm::Grpo,
            dpo_beta: 0.1,
            epsilon_low: 0.2,
            epsilon_high: 0.2,
            beta: 0.04,
            kl: KlEstimator::K3,
            kl_in_reward: false,
            aggregation: Aggregation::SequenceMean,
            max_len: 1024,
            sequence_ratio: false,
            scale_by_std: true,
            mask_truncated: false,
            gamma: 1.0,
            gae_lambda: 0.95,
            value_clip: 0.2,
            critic_lr_scale: 2.0,
        }
    }
}

/// Outcome advantages of one group: `(r - mean) / (std + 1e-6)` (std over the group, unbiased,
/// as torch.std in TRL / verl), or just `r - mean` without std scaling (Dr. GRPO). A group whose
/// rewards are all equal gets zeros.
pub fn outcome_advantages(rewards: &[f64], scale_by_std: bool) -> Vec<f64> {
    let n = rewards.len() as f64;
    if rewards.is_empty() {
        return vec![];
    }
    let mean = rewards.iter().sum::<f64>() / n;
    let std = if rewards.len() > 1 {
        (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    rewards
        .iter()
        .map(|r| {
            if scale_by_std {
                (r - mean) / (std + 1e-6)
            } else {
                r - mean
            }
        })
        .collect()
}

/// Process advantages of one group (§4.1.3): step rewards `steps[i][j]` of output `i` are
/// normalised with the mean / std over all steps of the group; the advantage of a token in step
/// `j` is the sum of the normalised rewards of steps `j..`. `step_of[i][t]` is the step index of
/// token `t` of output `i`. Returns per-token advantages.
pub fn process_advantages(steps: &[Vec<f64>], step_of: &[Vec<usize>]) -> Vec<Vec<f64>> {
    let all: Vec<f64> = steps.iter().flatten().copied().collect();
    let n = all.len() as f64;
    let mean = if all.is_empty() {
        0.0
    } else {
        all.iter().sum::<f64>() / n
    };
    let std = if all.len() > 1 {
        (all.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    steps
        .iter()
        .zip(step_of)
        .map(|(s, tok)| {
            let norm: Vec<f64> = s.iter().map(|r| (r - mean) / (std + 1e-6)).collect();
            // Suffix sums: from step j onward.
            let mut suffix = vec![0.0; norm.len() + 1];
            for j in (0..norm.len()).rev() {
                suffix[j] = suffix[j + 1] + norm[j];
            }
            tok.iter().map(|&j| suffix[j.min(norm.len())]).collect()
        })
        .collect()
}

/// Generalised advantage estimation over one output's tokens (Schulman et al. 2016, as PPO uses
/// it in §4.1.1): `delta_t = r_t + gamma V_{t+1} - V_t` with `V_T = 0` after the last token,
/// `A_t = delta_t + gamma lambda A_{t+1}`. Returns the advantages and the value targets
/// `A_t + V_t`.
pub fn gae(rewards: &[f64], values: &[f64], gamma: f64, lambda: f64) -> (Vec<f64>, Vec<f64>) {
    let n = rewards.len();
    let mut adv = vec![0.0; n];
    let mut next = 0.0; // A_{t+1}
    for t in (0..n).rev() {
        let v_next = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * v_next - values[t];
        next = delta + gamma * lambda * next;
        adv[t] = next;
    }
    let returns = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, returns)
}

/// PPO's value loss (to minimise) from the value model's outputs `values` `[n, t]`: the sum over
/// `mask` of `0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)` divided by `tokens`
/// (the step's counted tokens; `None`: this call's, the token mean).
pub fn value_loss<B: Backend>(
    values: Tensor<B, 2>,
    old_values: &[f32],
    returns: &[f32],
    mask: &[f32],
    clip: f64,
    tokens: Option<f64>,
) -> Tensor<B, 1> {
    let [n, t] = values.dims();
    let device = values.device();
    let t2 = |v: &[f32]| Tensor::<B, 2>::from_data(TensorData::new(v.to_vec(), [n, t]), &device);
    let (old, ret, m) = (t2(old_values), t2(returns), t2(mask));
    let clipped = old.clone() + (values.clone() - old).clamp(-clip, clip);
    let a = (values - ret.clone()).powf_scalar(2.0);
    let b = (clipped - ret).powf_scalar(2.0);
    let total = (a.max_pair(b) * m.clone()).sum().mul_scalar(0.5);
    match tokens {
        Some(k) => total.div_scalar(k.max(1.0)),
        None => total / m.sum().clamp_min(1.0),
    }
}

/// Per-token KL estimate from `log pi` and `log pi_ref`.
pub fn kl_value(logp: f64, ref_logp: f64, est: KlEstimator) -> f64 {
    let d = ref_logp - logp; // log(pi_ref / pi)
    match est {
        KlEstimator::K1 => -d,
        KlEstimator::K2 => 0.5 * d * d,
        KlEstimator::K3 => d.exp() - d - 1.0,
    }
}

/// Host-side inputs of the loss for `n` outputs padded to `t` tokens: a whole step's batch, or
/// one micro-batch of it with the step's normalisers (`seq_total`, `token_total`), so that the
/// micro-batch losses of a step sum to the whole-batch loss for every aggregation.
#[derive(Debug, Clone)]
pub struct LossInputs {
    pub n: usize,
    pub t: usize,
    /// Outputs in the whole step (the sequence-mean and Dr. GRPO denominators).
    pub seq_total: usize,
    /// Counted tokens in the whole step (the token-mean denominator; at least 1).
    pub token_total: f64,
    /// Importance weights of the policy term per token (sampler / trainer mismatch correction,
    /// [`crate::rl::correction`]), `[n * t]`; empty: all 1.
    pub is_weight: Vec<f32>,
    /// pi_old's log-probs (the sampler's, or the trainer's under a mismatch correction), `[n * t]`.
    pub old_logp: Vec<f32>,
    /// Reference log-probs, `[n * t]` (ignored when beta = 0 or the KL is in the reward).
    pub ref_logp: Vec<f32>,
    /// Per-token advantages, `[n * t]`.
    pub advantages: Vec<f32>,
    /// 1 for completion tokens that count, `[n * t]`.
    pub mask: Vec<f32>,
}

impl LossInputs {
    /// Zeroed inputs for `n` outputs of `t` tokens that are a whole step.
    pub fn zeros(n: usize, t: usize) -> Self {
        LossInputs {
            n,
            t,
            seq_total: n,
            token_total: 1.0,
            is_weight: vec![],
            old_logp: vec![0.0; n * t],
            ref_logp: vec![0.0; n * t],
            advantages: vec![0.0; n * t],
            mask: vec![0.0; n * t],
        }
    }

    /// Sets `token_total` from the mask (call once on the whole step's inputs).
    pub fn count_tokens(mut self) -> Self {
        self.token_total = self.mask.iter().map(|&m| m as f64).sum::<f64>().max(1.0);
        self
    }

    /// Outputs `rows` (padded to `t` = their longest length `t_rows`), keeping the step's
    /// normalisers.
    pub fn rows(&self, rows: std::ops::Range<usize>, t_rows: usize) -> LossInputs {
        let n = rows.len();
        let pick = |v: &[f32]| -> Vec<f32> {
            if v.is_empty() {
                return vec![];
            }
            rows.clone()
                .flat_map(|i| v[i * self.t..i * self.t + t_rows].iter().copied())
                .collect()
        };
        LossInputs {
            n,
            t: t_rows,
            seq_total: self.seq_total,
            token_total: self.token_total,
            is_weight: pick(&self.is_weight),
            old_logp: pick(&self.old_logp),
            ref_logp: pick(&self.ref_logp),
            advantages: pick(&self.advantages),
            mask: pick(&self.mask),
        }
    }
}

/// What the loss saw (for metrics): means over the counted tokens of the call, and their count.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LossStats {
    pub kl: f64,
    pub clip_low_fraction: f64,
    pub clip_high_fraction: f64,
    pub tokens: f64,
}

impl LossStats {
    /// The token-weighted combination of two calls' stats (micro-batches of one step).
    pub fn merge(&self, o: &LossStats) -> LossStats {
        let n = (self.tokens + o.tokens).max(1e-300);
        let w = |a: f64, b: f64| (a * self.tokens + b * o.tokens) / n;
        LossStats {
            kl: w(self.kl, o.kl),
            clip_low_fraction: w(self.clip_low_fraction, o.clip_low_fraction),
            clip_high_fraction: w(self.clip_high_fraction, o.clip_high_fraction),
            tokens: self.tokens + o.tokens,
        }
    }
}

/// The GRPO loss (to minimise) from the policy's log-probs of the sampled tokens `logp` `[n, t]`.
pub fn grpo_loss<B: Backend>(
    logp: Tensor<B, 2>,
    x: &LossInputs,
    cfg: &GrpoLossConfig,
) -> (Tensor<B, 1>, LossStats) {
    let device = logp.device();
    let t2 =
        |v: &Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(v.clone(), [x.n, x.t]), &device);
    let (old, reference, adv, mask) = (
        t2(&x.old_logp),
        t2(&x.ref_logp),
        t2(&x.advantages),
        t2(&x.mask),
    );
    let lens = mask.clone().sum_dim(1); // [n, 1]
    let log_ratio = (logp.clone() - old) * mask.clone(); // [n, t]
    let ratio = if cfg.sequence_ratio {
        // GSPO: exp(mean log-ratio) per output, broadcast to its tokens.
        (log_ratio.clone().sum_dim(1) / lens.clone().clamp_min(1.0))
            .exp()
            .expand([x.n, x.t])
    } else {
        log_ratio.clone().exp()
    };
    let rft = matches!(cfg.algorithm, Algorithm::Rft | Algorithm::OnlineRft);
    // PPO has its KL in the per-token rewards.
    let kl_in_loss = cfg.beta > 0.0 && !cfg.kl_in_reward && !rft && cfg.algorithm != Algorithm::Ppo;
    let surrogate = if rft {
        logp.clone() * adv.clone() // gradient coefficient x grad log pi
    } else {
        let clipped = ratio
            .clone()
            .clamp(1.0 - cfg.epsilon_low, 1.0 + cfg.epsilon_high);
        (ratio.clone() * adv.clone()).min_pair(clipped * adv.clone()) // [n, t]
    };
    let mut per_token = -surrogate;
    if !x.is_weight.is_empty() {
        per_token = per_token * t2(&x.is_weight); // the policy term only, as TRL weights it
    }
    let mut stats = LossStats::default();
    if kl_in_loss {
        let d = reference - logp; // log(pi_ref / pi)
        let kl = match cfg.kl {
            KlEstimator::K1 => -d,
            KlEstimator::K2 => d.powf_scalar(2.0).mul_scalar(0.5),
            KlEstimator::K3 => d.clone().exp() - d - 1.0,
        };
        let kl_mean: f64 = ((kl.clone() * mask.clone()).sum() / mask.clone().sum().clamp_min(1.0))
            .into_scalar()
            .elem();
        stats.kl = kl_mean;
        per_token = per_token + kl.mul_scalar(cfg.beta);
    }
    let masked = per_token * mask.clone();
    let loss = match cfg.aggregation {
        Aggregation::SequenceMean => (masked.sum_dim(1) / lens.clamp_min(1.0))
            .sum()
            .div_scalar(x.seq_total.max(1) as f64),
        Aggregation::TokenMean => masked.sum().div_scalar(x.token_total.max(1e-300)),
        Aggregation::ConstantNormalizer => masked
            .sum()
            .div_scalar((x.seq_total.max(1) * cfg.max_len.max(1)) as f64),
    };
    // Clip fractions over counted tokens.
    let r: Vec<f32> = ratio
        .into_data()
        .convert::<f32>()
        .to_vec()
        .unwrap_or_default();
    let counted_n = x.mask.iter().filter(|&&m| m > 0.0).count();
    stats.tokens = counted_n as f64;
    let counted = counted_n.max(1) as f64;
    let (mut lo, mut hi) = (0usize, 0usize);
    for ((rv, a), m) in r.iter().zip(&x.advantages).zip(&x.mask) {
        if *m > 0.0 {
            lo += (*a < 0.0 && (*rv as f64) < 1.0 - cfg.epsilon_low) as usize;
            hi += (*a > 0.0 && (*rv as f64) > 1.0 + cfg.epsilon_high) as usize;
        }
    }
    stats.clip_low_fraction = lo as f64 / counted;
    stats.clip_high_fraction = hi as f64 / counted;
    (loss, stats)
}

use burn::tensor::ElementConversion;

/// DPO's loss over `pairs` (chosen, rejected) of outputs: `-log sigmoid(beta * ((lp_c - ref_c) -
/// (lp_r - ref_r)))` averaged, with sequence log-probs summed over each output's counted tokens.
pub fn dpo_loss<B: Backend>(
    logp: Tensor<B, 2>,
    x: &LossInputs,
    pairs: &[(usize, usize)],
    beta: f64,
) -> Tensor<B, 1> {
    let device = logp.device();
    let t2 =
        |v: &Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(v.clone(), [x.n, x.t]), &device);
    let mask = t2(&x.mask);
    let seq = (logp * mask.clone()).sum_dim(1).reshape([x.n]); // [n]
    let seq_ref: Vec<f32> = (0..x.n)
        .map(|i| {
            (0..x.t)
                .map(|j| x.ref_logp[i * x.t + j] * x.mask[i * x.t + j])
                .sum()
        })
        .collect();
    let idx = |v: Vec<i64>| {
        Tensor::<B, 1, burn::tensor::Int>::from_data(TensorData::new(v, [pairs.len()]), &device)
    };
    let c = seq
        .clone()
        .select(0, idx(pairs.iter().map(|p| p.0 as i64).collect()));
    let r = seq.select(0, idx(pairs.iter().map(|p| p.1 as i64).collect()));
    let ref_margin: Vec<f32> = pairs.iter().map(|p| seq_ref[p.0] - seq_ref[p.1]).collect();
    let m = Tensor::<B, 1>::from_data(TensorData::new(ref_margin, [pairs.len()]), &device);
    -burn::tensor::activation::log_sigmoid((c - r - m).mul_scalar(beta)).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_flex::Flex;

    #[test]
    fn outcome_advantages_by_hand() {
        // rewards 1, 0, 0, 1: mean 0.5, unbiased std sqrt(1/3).
        let a = outcome_advantages(&[1.0, 0.0, 0.0, 1.0], true);
        let s = (1.0f64 / 3.0).sqrt();
        assert!((a[0] - 0.5 / (s + 1e-6)).abs() < 1e-12 && (a[1] + 0.5 / (s + 1e-6)).abs() < 1e-12);
        assert_eq!(
            outcome_advantages(&[1.0, 1.0, 1.0], true),
            vec![0.0, 0.0, 0.0]
        );
        assert_eq!(outcome_advantages(&[1.0, 0.0], false), vec![0.5, -0.5]);
    }

    #[test]
    fn process_advantages_sum_later_steps() {
        // Two outputs: steps [1, 0] and [0]; all steps: 1, 0, 0 -> mean 1/3, std sqrt(1/3).
        let adv = process_advantages(&[vec![1.0, 0.0], vec![0.0]], &[vec![0, 0, 1], vec![0, 0]]);
        let s = (1.0f64 / 3.0).sqrt() + 1e-6;
        let (n1, n0) = ((1.0 - 1.0 / 3.0) / s, (0.0 - 1.0 / 3.0) / s);
        assert!(
            (adv[0][0] - (n1 + n0)).abs() < 1e-12
                && (adv[0][2] - n0).abs() < 1e-12
                && (adv[1][1] - n0).abs() < 1e-12
        );
    }

    #[test]
    fn gae_by_hand() {
        // Three tokens, rewards (KL penalties and the outcome on the last): -0.1, 0, 1;
        // values 0.5, 0.6, 0.8; gamma 0.9, lambda 0.5.
        let (r, v, g, l) = ([-0.1, 0.0, 1.0], [0.5, 0.6, 0.8], 0.9, 0.5);
        let d2 = 1.0 - 0.8; // last token: V_T = 0
        let d1 = 0.0 + g * 0.8 - 0.6;
        let d0 = -0.1 + g * 0.6 - 0.5;
        let a2 = d2;
        let a1 = d1 + g * l * a2;
        let a0 = d0 + g * l * a1;
        let (adv, ret) = gae(&r, &v, g, l);
        for (got, want) in adv.iter().zip([a0, a1, a2]) {
            assert!((got - want).abs() < 1e-12, "{adv:?}");
        }
        assert!((ret[0] - (a0 + 0.5)).abs() < 1e-12 && (ret[2] - 1.0).abs() < 1e-12);
        // lambda = 1, gamma = 1: the advantage is the return-to-go minus the value.
        let (adv, ret) = gae(&r, &v, 1.0, 1.0);
        assert!(
            (adv[0] - (0.9 - 0.5)).abs() < 1e-12
                && (ret[0] - 0.9).abs() < 1e-12
                && (ret[1] - 1.0).abs() < 1e-12
        );
    }

    #[test]
    fn value_loss_clips_by_hand() {
        // V_old 0, returns 1; new values 0.1 (inside the clip: both terms equal), 0.5 (clipped to
        // 0.2: the larger clipped error counts), -0.5 (clipped to -0.2: the unclipped error is
        // larger), and a masked token.
        let values = Tensor::<Flex, 2>::from_data(
            TensorData::new(vec![0.1f32, 0.5, -0.5, 3.0], [2, 2]),
            &Default::default(),
        );
        let loss: f32 = value_loss(
            values,
            &[0.0; 4],
            &[1.0; 4],
            &[1.0, 1.0, 1.0, 0.0],
            0.2,
            None,
        )
        .into_scalar();
        let want = 0.5 * (0.9f64.powi(2) + 0.8f64.powi(2) + 1.5f64.powi(2)) / 3.0;
        assert!((loss as f64 - want).abs() < 1e-6, "{loss} vs {want}");
    }

    #[test]
    fn k3_is_the_papers_estimator() {
        let (p, r) = (-1.0f64, -1.5f64);
        let ratio = (r - p).exp();
        assert!((kl_value(p, r, KlEstimator::K3) - (ratio - (r - p) - 1.0)).abs() < 1e-15);
        assert!(kl_value(p, p, KlEstimator::K3).abs() < 1e-15);
    }

    fn inputs() -> LossInputs {
        // 2 outputs x 3 tokens; output 1 has 2 tokens.
        LossInputs {
            n: 2,
            t: 3,
            seq_total: 2,
            token_total: 5.0,
            is_weight: vec![],
            old_logp: vec![-1.0, -2.0, -0.5, -1.0, -1.0, 0.0],
            ref_logp: vec![-1.2, -2.0, -0.4, -0.9, -1.1, 0.0],
            advantages: vec![1.0, 1.0, 1.0, -1.0, -1.0, 0.0],
            mask: vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        }
    }

    /// The loss by hand in f64, for a given policy log-prob vector.
    fn by_hand(logp: &[f64], x: &LossInputs, c: &GrpoLossConfig) -> f64 {
        let mut per_seq = vec![];
        let mut all = (0.0, 0.0);
        for i in 0..x.n {
            let (mut s, mut k) = (0.0, 0.0);
            for j in 0..x.t {
                let q = i * x.t + j;
                if x.mask[q] == 0.0 {
                    continue;
                }
                let ratio = (logp[q] - x.old_logp[q] as f64).exp();
                let a = x.advantages[q] as f64;
                let sur =
                    (ratio * a).min(ratio.clamp(1.0 - c.epsilon_low, 1.0 + c.epsilon_high) * a);
                let l = -sur + c.beta * kl_value(logp[q], x.ref_logp[q] as f64, c.kl);
                s += l;
                k += 1.0;
                all.0 += l;
                all.1 += 1.0;
            }
            per_seq.push(s / k);
        }
        match c.aggregation {
            Aggregation::SequenceMean => per_seq.iter().sum::<f64>() / x.n as f64,
            Aggregation::TokenMean => all.0 / all.1,
            Aggregation::ConstantNormalizer => all.0 / (x.n * c.max_len) as f64,
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        type A = burn_autodiff::Autodiff<Flex>;
        let x = inputs();
        let logp = [-0.95, -2.1, -0.45, -1.1, -0.97, 0.0]; // inside the clip range: smooth
        let c = GrpoLossConfig::default();
        let t = Tensor::<A, 2>::from_data(
            TensorData::new(logp.iter().map(|&v| v as f32).collect::<Vec<_>>(), [2, 3]),
            &Default::default(),
        )
        .require_grad();
        let (loss, _) = grpo_loss(t.clone(), &x, &c);
        let g = t
            .grad(&loss.backward())
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        for q in 0..6 {
            let h = 1e-5;
            let (mut up, mut dn) = (logp, logp);
            up[q] += h;
            dn[q] -= h;
            let fd = (by_hand(&up, &x, &c) - by_hand(&dn, &x, &c)) / (2.0 * h);
            assert!(
                (g[q] as f64 - fd).abs() < 1e-4,
                "token {q}: autodiff {} vs finite difference {fd}",
                g[q]
            );
        }
    }

    #[test]
    fn loss_matches_hand_computation_for_every_aggregation() {
        let x = inputs();
        let logp = [-0.7, -2.3, -0.5, -1.4, -0.9, 0.0]; // ratios above and below the clip range
        for agg in [
            Aggregation::SequenceMean,
            Aggregation::TokenMean,
            Aggregation::ConstantNormalizer,
        ] {
            for (lo, hi) in [(0.2, 0.2), (0.2, 0.28)] {
                let c = GrpoLossConfig {
                    aggregation: agg,
                    epsilon_low: lo,
                    epsilon_high: hi,
                    max_len: 4,
                    ..Default::default()
                };
                let t = Tensor::<Flex, 2>::from_data(
                    TensorData::new(logp.iter().map(|&v| v as f32).collect::<Vec<_>>(), [2, 3]),
                    &Default::default(),
                );
                let (loss, stats) = grpo_loss(t, &x, &c);
                let got: f32 = loss.into_scalar();
                let want = by_hand(&logp, &x, &c);
                assert!(
                    (got as f64 - want).abs() < 1e-5,
                    "{agg:?} eps ({lo}, {hi}): {got} vs {want}"
                );
                assert!(stats.kl > 0.0);
            }
        }
        // Clip fractions: token 0 has ratio e^0.3 = 1.35 > 1.2 with A > 0; token 3 has ratio
        // e^-0.4 = 0.67 < 0.8 with A < 0.
        let t = Tensor::<Flex, 2>::from_data(
            TensorData::new(logp.iter().map(|&v| v as f32).collect::<Vec<_>>(), [2, 3]),
            &Default::default(),
        );
        let (_, s) = grpo_loss(t, &x, &GrpoLossConfig::default());
        assert!(
            (s.clip_high_fraction - 0.2).abs() < 1e-9 && (s.clip_low_fraction - 0.2).abs() < 1e-9,
            "{s:?}"
        );
    }
}
