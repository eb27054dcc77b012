//! Sampler / trainer mismatch correction (truncated importance sampling, as TRL's
//! `vllm_importance_sampling_correction`, verl's rollout IS and OpenRLHF ship it): when the
//! rollouts come from another engine or dtype than the trainer's forward, pi_old in the clipped
//! ratio becomes the trainer's log-prob under the sampling policy, and each token's policy term is
//! weighted by `rho = pi_old_trainer / pi_sampler`, either truncated at `cap` (token level) or, per
//! sequence, kept at 1 while the sequence's geometric-mean ratio lies in `[1 / cap, cap]` and 0
//! outside it (sequence-level masking). Off by default.

use serde::{Deserialize, Serialize};

use crate::rl::explore::Rollout;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionMode {
    Off,
    /// Token-level truncated IS: weight `min(rho_t, cap)`.
    TokenTruncate,
    /// Sequence-level masking: weight 0 for every token of a sequence whose geometric-mean ratio
    /// `exp(mean_t log rho_t)` lies outside `[1 / cap, cap]`, 1 otherwise.
    SequenceMask,
}

/// `[grpo.correction]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrectionConfig {
    pub mode: CorrectionMode,
    /// The truncation cap (token level) or the ratio bound (sequence level); TRL's default: 2.
    pub cap: f64,
}

impl Default for CorrectionConfig {
    fn default() -> Self {
        CorrectionConfig {
            mode: CorrectionMode::Off,
            cap: 2.0,
        }
    }
}

impl CorrectionConfig {
    pub fn check(&self) -> Result<(), String> {
        if self.mode != CorrectionMode::Off && !(self.cap.is_finite() && self.cap > 1.0) {
            return Err(format!(
                "grpo.correction.cap = {}: must be a finite number above 1",
                self.cap
            ));
        }
        Ok(())
    }
}

/// Shares of the step's completion tokens whose weight the correction changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CorrectionStats {
    /// Token level: tokens with `rho > cap` (weight capped).
    pub is_capped_share: f64,
    /// Sequence level: tokens of masked sequences.
    pub is_masked_share: f64,
}

/// Sets each rollout's `trainer_logp` (from `trainer_logp` `[n * t]`, the trainer's log-probs
/// under the policy that sampled) and `is_weight`. Tokens whose sampler log-prob is not finite get
/// weight 0 (they are masked from the loss anyway).
pub fn apply(
    cfg: &CorrectionConfig,
    rollouts: &mut [Rollout],
    trainer_logp: &[f32],
    t: usize,
) -> CorrectionStats {
    let (mut capped, mut masked, mut total) = (0usize, 0usize, 0usize);
    for (i, r) in rollouts.iter_mut().enumerate() {
        let k = r.tokens.len();
        r.trainer_logp = trainer_logp[i * t..i * t + k].to_vec();
        let log_rho: Vec<f64> = (0..k)
            .map(|j| {
                if r.old_logp[j].is_finite() {
                    (r.trainer_logp[j] - r.old_logp[j]) as f64
                } else {
                    f64::NAN
                }
            })
            .collect();
        total += k;
        r.is_weight = match cfg.mode {
            CorrectionMode::Off => vec![],
            CorrectionMode::TokenTruncate => log_rho
                .iter()
                .map(|&l| {
                    if !l.is_finite() {
                        return 0.0;
                    }
                    let rho = l.exp();
                    if rho > cfg.cap {
                        capped += 1;
                    }
                    rho.min(cfg.cap) as f32
                })
                .collect(),
            CorrectionMode::SequenceMask => {
                let fin: Vec<f64> = log_rho.iter().copied().filter(|l| l.is_finite()).collect();
                let geo = (fin.iter().sum::<f64>() / fin.len().max(1) as f64).exp();
                let keep = geo <= cfg.cap && geo >= 1.0 / cfg.cap;
                if !keep {
                    masked += k;
                }
                log_rho
                    .iter()
                    .map(|l| if keep && l.is_finite() { 1.0 } else { 0.0 })
                    .collect()
            }
        };
    }
    let n = total.max(1) as f64;
    CorrectionStats {
        is_capped_share: capped as f64 / n,
        is_masked_share: masked as f64 / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(sampler: Vec<f32>) -> Rollout {
        Rollout {
            group: 0,
            prompt_ids: vec![1],
            tokens: vec![5; sampler.len()],
            old_logp: sampler,
            trainer_logp: vec![],
            is_weight: vec![],
            text: String::new(),
            reward: 0.0,
            truncated: false,
            step_rewards: None,
            step_of: vec![],
        }
    }

    #[test]
    fn token_truncation_and_sequence_masking_by_hand() {
        // Trainer log-probs: rollout 0 agrees with its sampler but for one token with rho = e
        // (> cap 2); rollout 1 is off by log 3 on every token (geometric ratio 3).
        let mut rs = vec![
            rollout(vec![-1.0, -2.0, -0.5]),
            rollout(vec![-1.0, -1.0, -1.0]),
        ];
        let trainer = [
            -1.0,
            -1.0,
            -0.5,
            -1.0 + 3f32.ln(),
            -1.0 + 3f32.ln(),
            -1.0 + 3f32.ln(),
        ];
        let tok = CorrectionConfig {
            mode: CorrectionMode::TokenTruncate,
            cap: 2.0,
        };
        let s = apply(&tok, &mut rs, &trainer, 3);
        assert_eq!(rs[0].trainer_logp, vec![-1.0, -1.0, -0.5]);
        assert!(
            (rs[0].is_weight[0] - 1.0).abs() < 1e-6
                && (rs[0].is_weight[1] - 2.0).abs() < 1e-6
                && (rs[1].is_weight[2] - 2.0).abs() < 1e-6
        );
        assert!(
            (s.is_capped_share - 4.0 / 6.0).abs() < 1e-12 && s.is_masked_share == 0.0,
            "{s:?}"
        );
        let seq = CorrectionConfig {
            mode: CorrectionMode::SequenceMask,
            cap: 2.0,
        };
        let s = apply(&seq, &mut rs, &trainer, 3);
        // Rollout 0: geometric ratio e^(1/3) = 1.40, kept; rollout 1: 3 > 2, masked.
        assert_eq!(rs[0].is_weight, vec![1.0; 3]);
        assert_eq!(rs[1].is_weight, vec![0.0; 3]);
        assert!(
            (s.is_masked_share - 0.5).abs() < 1e-12 && s.is_capped_share == 0.0,
            "{s:?}"
        );
        assert!(
            CorrectionConfig {
                mode: CorrectionMode::TokenTruncate,
                cap: 0.5
            }
            .check()
            .is_err()
        );
    }
}
