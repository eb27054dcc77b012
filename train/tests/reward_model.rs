//! Reward models on the parity model: pointwise (ORM) and pairwise training separate correct from
//! incorrect answers, a PRM learns per-step labels, scores survive save + load, and GRPO with
//! process supervision gives tokens of one output different advantages (a bad step lowers the
//! advantage of its own tokens, not of the steps before it).

use std::path::Path;

use burn::module::AutodiffModule;
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_model::load_model_and_tokenizer;
use dsmath_train::reward_model::{
    RewardModel, RmSample, RmTrainConfig, encode_steps, rm_optimizer, train_reward_model,
};

type A = Autodiff<Flex>;

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/llama_mha")
}

/// Outcome samples: the right answer `2 + n` is labelled 1, a wrong one 0.
fn outcome_samples() -> Vec<RmSample> {
    (0..8)
        .flat_map(|n| {
            let prompt = format!("What is 2 + {n}? ");
            [(n + 2, 1.0), (n + 7, 0.0)].map(|(a, l)| RmSample {
                prompt: prompt.clone(),
                response: format!("It is {a}."),
                label: Some(l),
                step_labels: None,
            })
        })
        .collect()
}

fn separation(
    rm: &RewardModel<Flex>,
    tok: &dsmath_model::Tokenizer,
    samples: &[RmSample],
) -> (f64, f64) {
    let enc: Vec<(Vec<u32>, Vec<usize>)> = samples
        .iter()
        .map(|s| encode_steps(tok, &s.prompt, &s.response, "").unwrap())
        .collect();
    let rows: Vec<Vec<u32>> = enc.iter().map(|e| e.0.clone()).collect();
    let at: Vec<Vec<usize>> = enc.iter().map(|e| e.1.clone()).collect();
    let sc = rm.score_at(&rows, &at, tok.pad_id);
    let mean = |want: f32| {
        let v: Vec<f64> = samples
            .iter()
            .zip(&sc)
            .filter(|(s, _)| s.label == Some(want))
            .map(|(_, x)| x[0])
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    (mean(1.0), mean(0.0))
}

#[test]
fn orm_pointwise_and_pairwise_learn_and_roundtrip() {
    let dev = Default::default();
    let samples = outcome_samples();
    for objective in ["pointwise", "pairwise"] {
        let (ck, tok) = load_model_and_tokenizer::<A>(&fixture(), &dev).unwrap();
        let rm = RewardModel::from_policy(ck.model);
        let (b_good, b_bad) = separation(&rm.valid(), &tok, &samples);
        assert!(
            (b_good - 0.5).abs() < 1e-6 && (b_bad - 0.5).abs() < 1e-6,
            "a zero head scores 0.5"
        );
        let cfg = RmTrainConfig {
            objective: objective.into(),
            epochs: 30,
            lr: 3e-3,
            batch_size: 16,
            ..Default::default()
        };
        let (rm, stats) =
            train_reward_model(rm, &tok, &samples, &cfg, &mut rm_optimizer()).unwrap();
        assert!(
            stats.last().unwrap().loss < stats[0].loss * 0.5,
            "{objective}: {stats:?}"
        );
        let rm = rm.valid();
        let (good, bad) = separation(&rm, &tok, &samples);
        assert!(
            good > bad + 0.3,
            "{objective}: correct {good:.3} vs wrong {bad:.3}"
        );
        // Save + load keeps the scores.
        let tmp = tempfile::tempdir().unwrap();
        rm.save(tmp.path(), &ck.config, Some(&fixture())).unwrap();
        let (back, _) = RewardModel::<Flex>::load(tmp.path(), &dev).unwrap();
        assert_eq!(separation(&back, &tok, &samples), (good, bad));
    }
}

#[test]
fn prm_learns_step_labels_and_drives_process_advantages() {
    let dev = Default::default();
    let (ck, tok) = load_model_and_tokenizer::<A>(&fixture(), &dev).unwrap();
    // Two steps; the second is wrong in half of the samples.
    let samples: Vec<RmSample> = (0..8)
        .flat_map(|n| {
            let prompt = format!("What is 3 * {n}? ");
            [(3 * n, 1.0), (3 * n + 5, 0.0)].map(|(a, l)| RmSample {
                prompt: prompt.clone(),
                response: format!("3 * {n}\n= {a}"),
                label: Some(l),
                step_labels: Some(vec![1.0, l]),
            })
        })
        .collect();
    let cfg = RmTrainConfig {
        process: true,
        epochs: 30,
        lr: 3e-3,
        ..Default::default()
    };
    let (rm, stats) = train_reward_model(
        RewardModel::from_policy(ck.model),
        &tok,
        &samples,
        &cfg,
        &mut rm_optimizer(),
    )
    .unwrap();
    assert!(
        stats.last().unwrap().loss < stats[0].loss * 0.5,
        "{stats:?}"
    );
    let rm = rm.valid();
    let enc: Vec<(Vec<u32>, Vec<usize>)> = samples
        .iter()
        .map(|s| encode_steps(&tok, &s.prompt, &s.response, "\n").unwrap())
        .collect();
    assert!(enc.iter().all(|e| e.1.len() == 2));
    // Training positions are GRPO's: prompt and completion encoded apart, steps by `step_ends`.
    for (s, (ids, ends)) in samples.iter().zip(&enc) {
        let (p, r) = (
            tok.encode(&s.prompt).unwrap(),
            tok.encode(&s.response).unwrap(),
        );
        assert_eq!(ids, &p.iter().chain(&r).copied().collect::<Vec<u32>>());
        let (_, want) = dsmath_train::rl::explore::step_ends(&tok, &r, "\n");
        assert_eq!(
            ends,
            &want.iter().map(|e| p.len() + e).collect::<Vec<usize>>()
        );
    }
    let sc = rm.score_at(
        &enc.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
        &enc.iter().map(|e| e.1.clone()).collect::<Vec<_>>(),
        tok.pad_id,
    );
    for (s, x) in samples.iter().zip(&sc) {
        let want = s.step_labels.as_ref().unwrap()[1];
        assert!(
            if want > 0.5 { x[1] > 0.6 } else { x[1] < 0.4 },
            "{:?}: {x:?}",
            s.response
        );
    }

    // Process advantages in a GRPO update: a group of two outputs whose second steps differ.
    use dsmath_train::rl::explore::{Rollout, step_ends};
    use dsmath_train::rl::update::{UpdateArgs, grpo_update};
    let mk = |s: &RmSample| {
        let prompt_ids = tok.encode(&s.prompt).unwrap();
        let tokens = tok.encode(&s.response).unwrap();
        let (step_of, ends) = step_ends(&tok, &tokens, "\n");
        assert_eq!(ends.len(), 2, "{:?}", s.response);
        let rows = vec![
            prompt_ids
                .iter()
                .chain(&tokens)
                .copied()
                .collect::<Vec<u32>>(),
        ];
        let steps = rm
            .score_at(
                &rows,
                &[ends.iter().map(|e| prompt_ids.len() + e).collect()],
                tok.pad_id,
            )
            .remove(0);
        let probe = Rollout {
            group: 0,
            prompt_ids: prompt_ids.clone(),
            tokens: tokens.clone(),
            old_logp: vec![0.0; tokens.len()],
            trainer_logp: vec![],
            is_weight: vec![],
            text: s.response.clone(),
            reward: 0.0,
            truncated: false,
            step_rewards: None,
            step_of: vec![],
        };
        let old_logp =
            dsmath_train::rl::logprobs::token_logp(&rm.body, &[probe], tok.pad_id, 1, 512, false).0;
        Rollout {
            group: 0,
            prompt_ids,
            tokens,
            old_logp,
            trainer_logp: vec![],
            is_weight: vec![],
            text: s.response.clone(),
            reward: *steps.last().unwrap(),
            truncated: false,
            step_rewards: Some(steps),
            step_of,
        }
    };
    let group = vec![mk(&samples[0]), mk(&samples[1])];
    let (policy, _) = load_model_and_tokenizer::<A>(&fixture(), &dev).unwrap();
    let mut opt = dsmath_train::optim::AdamW::new(Default::default());
    let (_, st) = grpo_update(
        policy.model,
        &rm.body,
        &mut opt,
        &group,
        &UpdateArgs::new(1, Default::default(), 1e-3, tok.pad_id),
    )
    .unwrap();
    assert!(!st.skipped && st.grad_norm > 0.0, "{st:?}");
    let adv = dsmath_train::rl::loss::process_advantages(
        &group
            .iter()
            .map(|r| r.step_rewards.clone().unwrap())
            .collect::<Vec<_>>(),
        &group.iter().map(|r| r.step_of.clone()).collect::<Vec<_>>(),
    );
    // A token's advantage sums the normalised rewards of its own and later steps: the wrong
    // output's last step is below the right one's, and its first-step tokens still gain from
    // the good first step.
    let first = |i: usize| adv[i][0];
    let last = |i: usize| *adv[i].last().unwrap();
    assert!(
        last(0) > last(1),
        "right output's final step {} vs wrong {}",
        last(0),
        last(1)
    );
    assert!(first(0) > first(1) && first(1) > last(1), "{adv:?}");
}

/// Math-Shepherd labelling on the demo's SFT model: one step label per step that `encode_steps`
/// finds (the steps GRPO scores), the last equal to the outcome label; and a labelled sample
/// trains a PRM without being dropped for a step-count mismatch.
#[test]
fn math_shepherd_labels_match_the_training_steps() {
    use dsmath_train::arith::{Split, problems};
    let dev = Default::default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arith_sft");
    let (ck, tok) = load_model_and_tokenizer::<Flex>(&dir, &dev).unwrap();
    let prompts: Vec<(String, String)> = problems(5, 3, Split::Train)
        .into_iter()
        .map(|p| (dsmath_eval::prompts::instruct(&p.question), p.gold))
        .collect();
    let params = dsmath_model::SamplingParams {
        temperature: 1.0,
        max_new_tokens: 48,
        seed: 3,
        ..dsmath_model::SamplingParams::greedy(48)
    };
    let samples =
        dsmath_train::reward_model::label_samples(&ck.model, &tok, &prompts, 2, 2, "\n", &params)
            .unwrap();
    assert_eq!(samples.len(), 6);
    let mut multi = 0;
    for s in &samples {
        let labels = s.step_labels.as_ref().unwrap();
        let (_, ends) = encode_steps(&tok, &s.prompt, &s.response, "\n").unwrap();
        assert_eq!(labels.len(), ends.len(), "{:?}", s.response);
        assert_eq!(labels.last(), s.label.as_ref());
        multi += (labels.len() > 1) as usize;
    }
    assert!(multi > 0, "the model's solutions have several lines");
    let (ad, _) = load_model_and_tokenizer::<A>(&dir, &dev).unwrap();
    let cfg = RmTrainConfig {
        process: true,
        epochs: 1,
        ..Default::default()
    };
    let (_, stats) = train_reward_model(
        RewardModel::from_policy(ad.model),
        &tok,
        &samples,
        &cfg,
        &mut rm_optimizer(),
    )
    .unwrap();
    assert_eq!(stats[0].samples, 6, "{stats:?}");
}
