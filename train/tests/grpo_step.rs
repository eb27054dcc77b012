//! One GRPO exploration + update on the HF-parity model: the sampler's log-probs equal the
//! trainer's (pi_old is consistent), rewarded outputs gain probability relative to unrewarded
//! ones, a panicking reward function only voids its sample.

use std::path::Path;

use burn::module::AutodiffModule;
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_model::{SamplingParams, load_model_and_tokenizer};
use dsmath_train::optim::{AdamW, AdamWConfig};
use dsmath_train::rl::critic::{Critic, token_values};
use dsmath_train::rl::explore::{explore, informative_groups};
use dsmath_train::rl::logprobs::token_logp;
use dsmath_train::rl::loss::GrpoLossConfig;
use dsmath_train::rl::update::{UpdateArgs, grpo_update, ppo_update};

type A = Autodiff<Flex>;

#[test]
fn grpo_step_moves_probability_towards_rewarded_outputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/llama_mha");
    let dev = Default::default();
    let (ck, tok) = load_model_and_tokenizer::<A>(&dir, &dev).unwrap();
    let ck_vocab = ck.config.vocab_size;
    let policy = ck.model;
    let reference = policy.valid();
    let prompts: Vec<(Vec<u32>, String)> = ["Janet has 3 apples", "What is 2 + 2?"]
        .iter()
        .map(|p| (tok.encode(p).unwrap(), "x".to_string()))
        .collect();
    let params = SamplingParams {
        temperature: 1.0,
        max_new_tokens: 8,
        seed: 5,
        ignore_eos: true,
        first_prompt: 0,
        ..SamplingParams::greedy(8)
    };
    // Reward: the completion contains the letter `e` (about half of random texts do); a sample
    // whose text contains `q` makes the reward function panic.
    let reward = |text: &str, _gold: &str| {
        if text.contains('q') {
            panic!("reward function bug");
        }
        if text.contains('e') { 1.0 } else { 0.0 }
    };
    let (rollouts, failed) = explore(&reference, &tok, &prompts, 8, &params, &reward).unwrap();
    assert_eq!(rollouts.len(), 16);
    let panicked = rollouts.iter().filter(|r| r.text.contains('q')).count();
    assert_eq!(failed, panicked);
    let rewarded: Vec<bool> = rollouts.iter().map(|r| r.reward > 0.0).collect();
    assert!(
        rewarded.iter().any(|&x| x) && rewarded.iter().any(|&x| !x),
        "need both kinds: {rewarded:?}"
    );
    let before: Vec<f32> = token_logp(&reference, &rollouts, tok.pad_id, 64, 512, false).0;
    let mut opt = AdamW::new(AdamWConfig {
        weight_decay: 0.0,
        ..Default::default()
    });
    let (policy, stats) = grpo_update(
        policy,
        &reference,
        &mut opt,
        &rollouts,
        &UpdateArgs::new(2, GrpoLossConfig::default(), 1e-3, tok.pad_id),
    )
    .unwrap();
    assert!(
        stats.logp_mismatch < 1e-4,
        "sampler vs trainer log-probs differ by {}",
        stats.logp_mismatch
    );
    assert!(
        !stats.skipped && stats.grad_norm > 0.0 && stats.kl.abs() < 1e-6,
        "{stats:?}"
    );
    // Random weights over a 100+-token vocabulary: next-token entropy well above 1 nat, below log V.
    assert!(
        stats.entropy > 1.0 && stats.entropy <= (ck_vocab as f64).ln() + 1e-6,
        "{stats:?}"
    );
    let after: Vec<f32> = token_logp(&policy.valid(), &rollouts, tok.pad_id, 64, 512, false).0;
    let t = before.len() / rollouts.len();
    let gain = |want: bool| {
        let rows: Vec<usize> = (0..rollouts.len())
            .filter(|&i| rewarded[i] == want)
            .collect();
        rows.iter()
            .map(|&i| {
                (0..rollouts[i].tokens.len())
                    .map(|j| (after[i * t + j] - before[i * t + j]) as f64)
                    .sum::<f64>()
            })
            .sum::<f64>()
            / rows.len() as f64
    };
    assert!(
        gain(true) > gain(false),
        "rewarded {} vs unrewarded {}",
        gain(true),
        gain(false)
    );

    // KL in the reward: with the policy moved away from the reference, rewards are lowered by
    // beta * KL, which changes the advantages and so the update.
    let cfg = GrpoLossConfig {
        kl_in_reward: true,
        beta: 5.0,
        ..Default::default()
    };
    let (rollouts2, _) = explore(&policy.valid(), &tok, &prompts, 8, &params, &reward).unwrap();
    let mut o1 = AdamW::new(AdamWConfig::default());
    let mut o2 = AdamW::new(AdamWConfig::default());
    let (_, with) = grpo_update(
        policy.clone(),
        &reference,
        &mut o1,
        &rollouts2,
        &UpdateArgs::new(2, cfg.clone(), 1e-3, tok.pad_id),
    )
    .unwrap();
    let policy_for_mask = policy.clone();
    let (_, without) = grpo_update(
        policy,
        &reference,
        &mut o2,
        &rollouts2,
        &UpdateArgs::new(
            2,
            GrpoLossConfig {
                beta: 0.0,
                ..Default::default()
            },
            1e-3,
            tok.pad_id,
        ),
    )
    .unwrap();
    assert!(
        (with.grad_norm - without.grad_norm).abs() > 1e-6 * without.grad_norm.max(1e-12),
        "{with:?} vs {without:?}"
    );
    assert_eq!(
        with.kl, 0.0,
        "KL is not in the loss when it is in the reward"
    );

    // Overlong masking: every sample ran into max_new_tokens (EOS ignored), so with
    // `mask_truncated` no token counts and the update is zero.
    assert!(rollouts2.iter().all(|r| r.truncated));
    let masked = GrpoLossConfig {
        mask_truncated: true,
        ..Default::default()
    };
    let mut o3 = AdamW::new(AdamWConfig::default());
    let (_, m) = grpo_update(
        policy_for_mask,
        &reference,
        &mut o3,
        &rollouts2,
        &UpdateArgs::new(2, masked.clone(), 1e-3, tok.pad_id),
    )
    .unwrap();
    assert!(
        m.grad_norm == 0.0 && m.loss == 0.0 && m.truncated_share == 1.0,
        "{m:?}"
    );

    // Dynamic sampling's filter keeps groups with differing rewards only.
    let mut rs = rollouts2.clone();
    rs.iter_mut()
        .filter(|r| r.group == 1)
        .for_each(|r| r.reward = 1.0);
    rs.iter_mut()
        .filter(|r| r.group == 0)
        .enumerate()
        .for_each(|(k, r)| r.reward = (k % 2) as f64);
    assert_eq!(informative_groups(&rs, 2), vec![0]);
}

/// PPO's critic regresses on the GAE returns: repeated updates on one batch shrink the value loss,
/// and the values end up tracking the outcome (rewarded outputs' last-token values above the
/// unrewarded ones'). The values are read where the policy's log-probs are (position p - 1 + t).
#[test]
fn ppo_critic_fits_the_returns() {
    use dsmath_train::reward_model::RewardModel;
    use dsmath_train::rl::loss::Algorithm;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/llama_mha");
    let dev = Default::default();
    let (ck, tok) = load_model_and_tokenizer::<A>(&dir, &dev).unwrap();
    let mut policy = ck.model;
    let reference = policy.valid();
    let prompts: Vec<(Vec<u32>, String)> = ["Janet has 3 apples", "What is 2 + 2?"]
        .iter()
        .map(|p| (tok.encode(p).unwrap(), "x".to_string()))
        .collect();
    let params = SamplingParams {
        temperature: 1.0,
        max_new_tokens: 6,
        seed: 11,
        ignore_eos: true,
        first_prompt: 0,
        ..SamplingParams::greedy(6)
    };
    let reward = |text: &str, _: &str| if text.contains('e') { 1.0 } else { 0.0 };
    let (rollouts, _) = explore(&reference, &tok, &prompts, 4, &params, &reward).unwrap();
    // Values sit at the positions that predict each token: for the first rollout, equal to the
    // critic's scores on prompt + completion shifted by one.
    let rm = RewardModel::from_policy(
        load_model_and_tokenizer::<Flex>(&dir, &dev)
            .unwrap()
            .0
            .model,
    );
    let mut rm = rm;
    rm.score = burn::module::Param::from_tensor(burn::tensor::Tensor::ones(
        [1, ck.config.hidden_size],
        &dev,
    ));
    let row: Vec<u32> = rollouts[0]
        .prompt_ids
        .iter()
        .chain(&rollouts[0].tokens)
        .copied()
        .collect();
    let scores: Vec<f32> = rm.scores(&[row], tok.pad_id).into_data().to_vec().unwrap();
    let values: Vec<f32> = token_values(&rm, &rollouts[..1], tok.pad_id)
        .into_data()
        .to_vec()
        .unwrap();
    let p = rollouts[0].prompt_ids.len();
    for (j, v) in values.iter().enumerate() {
        assert!(
            (v - scores[p - 1 + j]).abs() < 1e-5,
            "token {j}: {v} vs {}",
            scores[p - 1 + j]
        );
    }
    let mut critic = Critic {
        model: RewardModel::from_policy(load_model_and_tokenizer::<A>(&dir, &dev).unwrap().0.model),
        opt: AdamW::new(AdamWConfig {
            weight_decay: 0.0,
            ..Default::default()
        }),
    };
    let cfg = dsmath_train::rl::loss::GrpoLossConfig {
        algorithm: Algorithm::Ppo,
        critic_lr_scale: 30.0,
        ..Default::default()
    };
    let mut opt = AdamW::new(AdamWConfig {
        weight_decay: 0.0,
        ..Default::default()
    });
    let mut losses = vec![];
    for _ in 0..10 {
        let (p, c, st) = ppo_update(
            policy,
            critic,
            &reference,
            &mut opt,
            &rollouts,
            &UpdateArgs::new(2, cfg.clone(), 1e-4, tok.pad_id),
        )
        .unwrap();
        assert!(!st.skipped && st.grad_norm > 0.0, "{st:?}");
        (policy, critic) = (p, c);
        losses.push(st.value_loss);
    }
    assert!(
        losses[9] < losses[0] * 0.3,
        "value loss did not fall: {losses:?}"
    );
    let v: Vec<f32> = token_values(&critic.model.valid(), &rollouts, tok.pad_id)
        .into_data()
        .to_vec()
        .unwrap();
    let t = v.len() / rollouts.len();
    let last = |want: bool| {
        let xs: Vec<f64> = rollouts
            .iter()
            .enumerate()
            .filter(|(_, r)| (r.reward > 0.0) == want)
            .map(|(i, r)| v[i * t + r.tokens.len() - 1] as f64)
            .collect();
        xs.iter().sum::<f64>() / xs.len().max(1) as f64
    };
    assert!(rollouts.iter().any(|r| r.reward > 0.0) && rollouts.iter().any(|r| r.reward == 0.0));
    assert!(
        last(true) > last(false) + 0.2,
        "rewarded {} vs not {}",
        last(true),
        last(false)
    );
}

/// Mixed precision (`UpdateArgs::dtype`): the same update in bf16 sees the same rollouts
/// through bf16 weights, so the trainer's log-probs move off the f32 sampler's by bf16 rounding
/// (not more), the loss and gradient norm follow f32 to bf16 accuracy, and the updated master
/// weights stay f32 and close to the f32 update's.
#[test]
fn grpo_update_in_bf16_follows_f32() {
    use burn::tensor::DType;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/llama_mha");
    let dev = Default::default();
    let (ck, tok) = load_model_and_tokenizer::<A>(&dir, &dev).unwrap();
    let reference = ck.model.valid();
    let prompts: Vec<(Vec<u32>, String)> = ["Janet has 3 apples", "What is 2 + 2?"]
        .iter()
        .map(|p| (tok.encode(p).unwrap(), "x".to_string()))
        .collect();
    let params = SamplingParams {
        temperature: 1.0,
        max_new_tokens: 8,
        seed: 11,
        ignore_eos: true,
        first_prompt: 0,
        ..SamplingParams::greedy(8)
    };
    let reward = |text: &str, _gold: &str| if text.contains('e') { 1.0 } else { 0.0 };
    let (rollouts, _) = explore(&reference, &tok, &prompts, 8, &params, &reward).unwrap();
    let loss = GrpoLossConfig {
        beta: 0.04,
        ..Default::default()
    };
    let f32_args = UpdateArgs::new(2, loss, 1e-3, tok.pad_id);
    let bf16_args = UpdateArgs {
        dtype: Some(DType::BF16),
        ..f32_args.clone()
    };
    let opt = || {
        AdamW::new(AdamWConfig {
            weight_decay: 0.0,
            ..Default::default()
        })
    };
    let (p32, s32) = grpo_update(
        ck.model.clone(),
        &reference,
        &mut opt(),
        &rollouts,
        &f32_args,
    )
    .unwrap();
    let (p16, s16) = grpo_update(
        ck.model.clone(),
        &reference,
        &mut opt(),
        &rollouts,
        &bf16_args,
    )
    .unwrap();
    assert!(s32.logp_mismatch < 1e-4, "{s32:?}");
    // bf16 keeps 8 significant bits: per-token log-probs of a ~5-nat distribution move by ~1e-2.
    assert!(
        s16.logp_mismatch > 1e-4 && s16.logp_mismatch < 0.1,
        "bf16 mismatch {} (no cast happened, or too much error)",
        s16.logp_mismatch
    );
    assert!(
        !s16.skipped
            && (s16.loss - s32.loss).abs() < 0.05
            && (s16.grad_norm / s32.grad_norm - 1.0).abs() < 0.1,
        "f32 {s32:?}\nbf16 {s16:?}"
    );
    let (w32, w16) = (p32.valid().named_tensors(), p16.valid().named_tensors());
    let w0 = reference.named_tensors();
    for (((name, a), (_, b)), (_, c)) in w32.iter().zip(&w16).zip(&w0) {
        assert_eq!(b.dtype, DType::F32, "{name}: master weights must stay f32");
        let (a, b, c): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            a.to_vec().unwrap(),
            b.to_vec().unwrap(),
            c.to_vec().unwrap(),
        );
        // Both moved (Adam steps are ~lr per weight), and in nearly the same direction.
        let (d32, d16): (Vec<f32>, Vec<f32>) = (
            a.iter().zip(&c).map(|(x, y)| x - y).collect(),
            b.iter().zip(&c).map(|(x, y)| x - y).collect(),
        );
        let dot: f32 = d32.iter().zip(&d16).map(|(x, y)| x * y).sum();
        let (n32, n16) = (
            d32.iter().map(|x| x * x).sum::<f32>().sqrt(),
            d16.iter().map(|x| x * x).sum::<f32>().sqrt(),
        );
        assert!(
            n16 > 0.0 && dot / (n32 * n16) > 0.8,
            "{name}: cosine of the f32 and bf16 updates {}",
            dot / (n32 * n16)
        );
    }
}
