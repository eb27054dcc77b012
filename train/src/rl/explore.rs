//! GRPO exploration (DeepSeekMath §4.1, Algorithm 1): G outputs per question from the generation
//! engine (one shared prefill), the sampler's per-token log-probs kept as pi_old, rule-based
//! rewards from the eval grader. A reward function that panics on one sample gives that sample no
//! reward and is reported; it does not stop the step.

use burn::tensor::backend::Backend;
use dsmath_model::{LlamaForCausalLM, SamplingParams, Tokenizer, generate};

use crate::error::TrainError;

/// One sampled output.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub group: usize,
    pub prompt_ids: Vec<u32>,
    pub tokens: Vec<u32>,
    /// Sampler log-probs of `tokens` (pi_old unless a mismatch correction replaces it).
    pub old_logp: Vec<f32>,
    /// The trainer's log-probs of `tokens` under the policy that sampled them and the tokens'
    /// importance weights, set by a sampler / trainer mismatch correction
    /// ([`crate::rl::correction`]); empty otherwise.
    pub trainer_logp: Vec<f32>,
    pub is_weight: Vec<f32>,
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
            let c = tok
                .decode(&tokens[..=t])
                .map(|s| s.matches(delimiter).count())
                .unwrap_or(count);
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
                trainer_logp: vec![],
                is_weight: vec![],
                text: s.text,
                reward: r,
                step_rewards: None,
                step_of: vec![],
            }
        })
        .collect();
    Ok((out, failed))
}

/// Indices of the groups whose rewards are not all equal (dynamic sampling keeps only these:
/// an all-equal group has zero advantages and teaches nothing).
pub fn informative_groups(rollouts: &[Rollout], groups: usize) -> Vec<usize> {
    (0..groups)
        .filter(|&g| {
            let rs: Vec<f64> = rollouts
                .iter()
                .filter(|r| r.group == g)
                .map(|r| r.reward)
                .collect();
            rs.windows(2).any(|w| w[0] != w[1])
        })
        .collect()
}

/// The longest completion of `rollouts` (at least 1): the padded width `t` of `[n * t]` arrays.
pub fn max_len(rollouts: &[Rollout]) -> usize {
    rollouts
        .iter()
        .map(|r| r.tokens.len())
        .max()
        .unwrap_or(1)
        .max(1)
}
