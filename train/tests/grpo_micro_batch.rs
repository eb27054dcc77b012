//! The micro-batched update equals the whole-batch update: for every aggregation and algorithm on
//! GRPO's code path (GRPO's sequence mean, DAPO's token mean, Dr. GRPO's constant, GSPO, online
//! RFT, DPO pairs, PPO with its critic, and the mismatch correction's importance weights),
//! micro-batches of 1, 3 and the whole batch give the same loss, gradient norm and weights after
//! one step (f32, 1e-6), with rollouts of different prompt and completion lengths.

use std::path::Path;

use burn::module::AutodiffModule;
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_model::{LlamaForCausalLM, SamplingParams, Tokenizer, load_model_and_tokenizer};
use dsmath_train::optim::{AdamW, AdamWConfig};
use dsmath_train::reward_model::RewardModel;
use dsmath_train::rl::critic::Critic;
use dsmath_train::rl::explore::{Rollout, explore};
use dsmath_train::rl::loss::{Aggregation, Algorithm, GrpoLossConfig};
use dsmath_train::rl::update::{GrpoStepStats, UpdateArgs, grpo_update, ppo_update};

type A = Autodiff<Flex>;

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/llama_mha")
}

/// 2 questions x 5 samples, completions cut to 4..7 tokens, rewards mixed within each group.
fn rollouts(policy: &LlamaForCausalLM<Flex>, tok: &Tokenizer) -> Vec<Rollout> {
    let prompts: Vec<(Vec<u32>, String)> =
        ["Janet has 3 apples and buys two more", "What is 2 + 2?"]
            .iter()
            .map(|p| (tok.encode(p).unwrap(), "x".to_string()))
            .collect();
    let params = SamplingParams {
        temperature: 1.0,
        max_new_tokens: 7,
        seed: 3,
        ignore_eos: true,
        first_prompt: 0,
        ..SamplingParams::greedy(7)
    };
    let (mut rs, _) = explore(policy, tok, &prompts, 5, &params, &|_: &str, _: &str| 0.0).unwrap();
    for (i, r) in rs.iter_mut().enumerate() {
        let k = 7 - i % 4;
        r.tokens.truncate(k);
        r.old_logp.truncate(k);
        r.reward = if i % 3 == 0 { 1.0 } else { 0.0 };
        r.truncated = i % 2 == 0;
    }
    assert!(rs.len() == 10 && rs[0].prompt_ids.len() != rs[5].prompt_ids.len());
    rs
}

/// AdamW with a large epsilon: the first step is `lr * g / (|g| + 1)`, smooth in the gradient,
/// so equal gradients give equal weights (with the default epsilon the first step is
/// `lr * sign(g)`, which rounding flips on gradients that are ~0).
fn opt() -> AdamW<Flex> {
    AdamW::new(AdamWConfig {
        weight_decay: 0.0,
        eps: 1.0,
        ..Default::default()
    })
}

fn weights(m: &LlamaForCausalLM<A>) -> Vec<f32> {
    m.valid()
        .named_tensors()
        .into_iter()
        .flat_map(|(_, t)| t.to_vec::<f32>().unwrap())
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, f64::max)
}

fn check(name: &str, runs: &[(usize, GrpoStepStats, Vec<f32>)], start: &[f32]) {
    let (_, s0, w0) = &runs[runs.len() - 1]; // the whole batch
    assert!(!s0.skipped && s0.grad_norm > 0.0, "{name}: {s0:?}");
    let moved = max_diff(w0, start);
    assert!(
        moved > 1e-4,
        "{name}: the step barely moved the weights ({moved})"
    );
    for (mb, s, w) in runs {
        let d = max_diff(w, w0);
        assert!(
            d < 1e-6,
            "{name}: micro_batch {mb}: weights differ by {d} from the whole-batch step"
        );
        assert!(
            (s.loss - s0.loss).abs() < 1e-6 * s0.loss.abs().max(1.0),
            "{name}: micro_batch {mb}: loss {} vs {}",
            s.loss,
            s0.loss
        );
        assert!(
            (s.grad_norm - s0.grad_norm).abs() < 1e-5 * s0.grad_norm,
            "{name}: micro_batch {mb}: grad norm {} vs {}",
            s.grad_norm,
            s0.grad_norm
        );
        assert!(
            (s.kl - s0.kl).abs() < 1e-6
                && (s.entropy - s0.entropy).abs() < 1e-5
                && (s.clip_high - s0.clip_high).abs() < 1e-9,
            "{name}: micro_batch {mb}: {s:?} vs {s0:?}"
        );
    }
}

#[test]
fn micro_batches_give_the_whole_batch_step_for_every_algorithm() {
    let dev = Default::default();
    let (ck, tok) = load_model_and_tokenizer::<A>(&fixture(), &dev).unwrap();
    let reference = ck.model.valid();
    let mut rs = rollouts(&reference, &tok);
    let start = weights(&ck.model);
    let grpo = GrpoLossConfig::default();
    let cases: Vec<(&str, GrpoLossConfig)> = vec![
        ("grpo sequence mean", grpo.clone()),
        (
            "dapo token mean, clip-higher, overlong masking",
            GrpoLossConfig {
                aggregation: Aggregation::TokenMean,
                epsilon_high: 0.28,
                mask_truncated: true,
                beta: 0.0,
                ..grpo.clone()
            },
        ),
        (
            "dr grpo constant normaliser",
            GrpoLossConfig {
                aggregation: Aggregation::ConstantNormalizer,
                scale_by_std: false,
                max_len: 7,
                ..grpo.clone()
            },
        ),
        (
            "gspo sequence ratio",
            GrpoLossConfig {
                sequence_ratio: true,
                ..grpo.clone()
            },
        ),
        (
            "online rft",
            GrpoLossConfig {
                algorithm: Algorithm::OnlineRft,
                ..grpo.clone()
            },
        ),
        (
            "dpo pairs",
            GrpoLossConfig {
                algorithm: Algorithm::Dpo,
                ..grpo.clone()
            },
        ),
    ];
    for (name, loss) in &cases {
        let runs: Vec<(usize, GrpoStepStats, Vec<f32>)> = [1, 3, 0]
            .into_iter()
            .map(|mb| {
                let args = UpdateArgs {
                    micro_batch: mb,
                    logits_chunk: 5,
                    ..UpdateArgs::new(2, loss.clone(), 1e-2, tok.pad_id)
                };
                let (p, s) =
                    grpo_update(ck.model.clone(), &reference, &mut opt(), &rs, &args).unwrap();
                (mb, s, weights(&p))
            })
            .collect();
        check(name, &runs, &start);
    }

    // The mismatch correction's pi_old and importance weights, as `correction::apply` sets them.
    for (i, r) in rs.iter_mut().enumerate() {
        r.trainer_logp = r
            .old_logp
            .iter()
            .map(|l| l + 0.05 * (i as f32 - 4.5) / 4.5)
            .collect();
        r.is_weight = (0..r.tokens.len())
            .map(|j| 0.5 + ((i + j) % 4) as f32 * 0.5)
            .collect();
    }
    let runs: Vec<(usize, GrpoStepStats, Vec<f32>)> = [1, 3, 0]
        .into_iter()
        .map(|mb| {
            let args = UpdateArgs {
                micro_batch: mb,
                ..UpdateArgs::new(2, grpo.clone(), 1e-2, tok.pad_id)
            };
            let (p, s) = grpo_update(ck.model.clone(), &reference, &mut opt(), &rs, &args).unwrap();
            (mb, s, weights(&p))
        })
        .collect();
    check("grpo with importance weights", &runs, &start);
    let plain: Vec<Rollout> = rs
        .iter()
        .cloned()
        .map(|mut r| {
            r.trainer_logp.clear();
            r.is_weight.clear();
            r
        })
        .collect();
    let args = UpdateArgs::new(2, grpo.clone(), 1e-2, tok.pad_id);
    let (_, s) = grpo_update(ck.model.clone(), &reference, &mut opt(), &plain, &args).unwrap();
    assert!(
        (s.loss - runs[2].1.loss).abs() > 1e-4,
        "the importance weights changed nothing: {} vs {}",
        s.loss,
        runs[2].1.loss
    );

    // PPO: the policy and its critic.
    let ppo = GrpoLossConfig {
        algorithm: Algorithm::Ppo,
        ..grpo
    };
    let mut critics = vec![];
    let mut runs = vec![];
    for mb in [1, 3, 0] {
        let critic = Critic {
            model: RewardModel::from_policy(
                load_model_and_tokenizer::<A>(&fixture(), &dev)
                    .unwrap()
                    .0
                    .model,
            ),
            opt: opt(),
        };
        let args = UpdateArgs {
            micro_batch: mb,
            logits_chunk: 4,
            ..UpdateArgs::new(2, ppo.clone(), 1e-2, tok.pad_id)
        };
        let (p, c, s) = ppo_update(
            ck.model.clone(),
            critic,
            &reference,
            &mut opt(),
            &plain,
            &args,
        )
        .unwrap();
        critics.push((
            mb,
            s.value_loss,
            c.model
                .valid()
                .body
                .named_tensors()
                .into_iter()
                .flat_map(|(_, t)| t.to_vec::<f32>().unwrap())
                .collect::<Vec<f32>>(),
        ));
        runs.push((mb, s, weights(&p)));
    }
    check("ppo policy", &runs, &start);
    let (_, v0, c0) = &critics[2];
    for (mb, v, c) in &critics {
        assert!(
            (v - v0).abs() < 1e-6 * v0.abs().max(1.0) && max_diff(c, c0) < 1e-6,
            "ppo critic: micro_batch {mb}: value loss {v} vs {v0}, weights {}",
            max_diff(c, c0)
        );
    }
}
