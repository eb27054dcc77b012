//! The unified-paradigm comparison (`cargo xtask rl-compare`) on the demo's SFT model: every
//! algorithm runs on the same prompts and is evaluated on the same held-out problems, results
//! are written and reused on a rerun; the algorithms differ as the paper says (RFT / DPO learn
//! from the SFT model's samples, a wrong output has RFT coefficient 0, DPO needs a pair).

use std::path::Path;

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_train::arith::{Split, problems};
use dsmath_train::compare::{CompareOptions, compare};
use dsmath_train::rl::loss::{Algorithm, GrpoLossConfig};
use dsmath_train::rl::run::GrpoConfig;

#[test]
fn every_algorithm_runs_from_one_sft_model_and_is_compared() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arith_sft");
    let tmp = tempfile::tempdir().unwrap();
    let lines = |v: Vec<serde_json::Value>| v.iter().map(|x| format!("{x}\n")).collect::<String>();
    let (heldout, rl) = (
        tmp.path().join("heldout.jsonl"),
        tmp.path().join("rl.jsonl"),
    );
    std::fs::write(
        &heldout,
        lines(
            problems(4, 24, Split::Heldout)
                .iter()
                .map(|p| serde_json::json!({"question": p.question, "answer": p.answer}))
                .collect(),
        ),
    )
    .unwrap();
    std::fs::write(
        &rl,
        lines(
            problems(3, 100, Split::Train)
                .iter()
                .map(|p| serde_json::json!({"question": p.question, "gold": p.gold}))
                .collect(),
        ),
    )
    .unwrap();
    let mut base = GrpoConfig::default();
    base.grpo.group_size = 4;
    base.grpo.prompts_per_step = 4;
    base.grpo.max_new_tokens = 48;
    base.schedule.peak_lr = 2e-4;
    base.train.steps = 2;
    base.train.checkpoint_every = 2;
    let o = CompareOptions {
        sft: fixture,
        prompts: rl,
        heldout,
        out: tmp.path().join("cmp"),
        algorithms: vec![
            Algorithm::Rft,
            Algorithm::OnlineRft,
            Algorithm::Dpo,
            Algorithm::Ppo,
            Algorithm::Grpo,
        ],
        base,
        progress: false,
    };
    let dev = Default::default();
    let rows = compare::<Flex>(&o, &dev).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.algorithm.as_str()).collect();
    assert_eq!(names, ["sft", "rft", "online_rft", "dpo", "ppo", "grpo"]);
    assert!(
        rows[0].heldout_greedy > 20.0,
        "the SFT fixture solves some problems: {rows:?}"
    );
    let md = std::fs::read_to_string(tmp.path().join("cmp/compare.md")).unwrap();
    for r in &rows {
        assert!(
            md.contains(&format!("| {} | {:.1} |", r.algorithm, r.heldout_greedy)),
            "{md}"
        );
    }
    // RFT and DPO explore with the SFT model: their first-quarter rewards are the SFT model's
    // samples on the same prompts and seeds, so equal.
    assert_eq!(rows[1].reward_first, rows[3].reward_first);
    // A rerun reuses the results.
    let again = compare::<Flex>(&o, &dev).unwrap();
    assert_eq!(again[1..], rows[1..]);
}

#[test]
fn rft_coefficients_and_dpo_pairs() {
    use burn::module::AutodiffModule;
    use dsmath_model::load_model_and_tokenizer;
    use dsmath_train::optim::AdamW;
    use dsmath_train::rl::explore::Rollout;
    use dsmath_train::rl::logprobs::token_logp;
    use dsmath_train::rl::update::{UpdateArgs, grpo_update};
    type A = Autodiff<Flex>;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arith_sft");
    let dev = Default::default();
    let (ck, tok) = load_model_and_tokenizer::<A>(&dir, &dev).unwrap();
    let reference = ck.model.valid();
    let mk = |text: &str, reward: f64| {
        let prompt_ids = tok.encode("User: Tom has 2 pens.").unwrap();
        let tokens = tok.encode(text).unwrap();
        let mut r = Rollout {
            group: 0,
            prompt_ids,
            tokens,
            old_logp: vec![],
            trainer_logp: vec![],
            is_weight: vec![],
            text: text.into(),
            reward,
            truncated: false,
            step_rewards: None,
            step_of: vec![],
        };
        r.old_logp = token_logp(
            &reference,
            std::slice::from_ref(&r),
            tok.pad_id,
            64,
            512,
            false,
        )
        .0;
        r
    };
    let wrong = vec![mk(" 3", 0.0), mk(" 4", 0.0)];
    let cfg = |a| GrpoLossConfig {
        algorithm: a,
        ..Default::default()
    };
    // RFT: wrong outputs have coefficient 0, so nothing moves; DPO: no correct/wrong pair, skipped.
    let (_, st) = grpo_update(
        ck.model.clone(),
        &reference,
        &mut AdamW::new(Default::default()),
        &wrong,
        &UpdateArgs::new(1, cfg(Algorithm::Rft), 1e-3, tok.pad_id),
    )
    .unwrap();
    assert_eq!(st.grad_norm, 0.0, "{st:?}");
    let (_, st) = grpo_update(
        ck.model.clone(),
        &reference,
        &mut AdamW::new(Default::default()),
        &wrong,
        &UpdateArgs::new(1, cfg(Algorithm::Dpo), 1e-3, tok.pad_id),
    )
    .unwrap();
    assert!(st.skipped, "{st:?}");
    // With one right output, RFT raises its log-prob; DPO raises its margin over the wrong ones.
    let mixed = vec![mk(" 2", 1.0), mk(" 3", 0.0), mk(" 4", 0.0)];
    for a in [Algorithm::Rft, Algorithm::OnlineRft, Algorithm::Dpo] {
        let (p, st) = grpo_update(
            ck.model.clone(),
            &reference,
            &mut AdamW::new(Default::default()),
            &mixed,
            &UpdateArgs::new(1, cfg(a), 1e-2, tok.pad_id),
        )
        .unwrap();
        assert!(!st.skipped && st.grad_norm > 0.0, "{a:?}: {st:?}");
        let before: Vec<f32> = token_logp(&reference, &mixed, tok.pad_id, 64, 512, false).0;
        let after: Vec<f32> = token_logp(&p.valid(), &mixed, tok.pad_id, 64, 512, false).0;
        let t = before.len() / 3;
        let seq = |v: &[f32], i: usize| {
            (0..mixed[i].tokens.len())
                .map(|j| v[i * t + j] as f64)
                .sum::<f64>()
        };
        let margin = |v: &[f32]| seq(v, 0) - (seq(v, 1) + seq(v, 2)) / 2.0;
        assert!(
            seq(&after, 0) > seq(&before, 0) || a == Algorithm::Dpo,
            "{a:?}: right output's log-prob fell"
        );
        assert!(
            margin(&after) > margin(&before),
            "{a:?}: margin {} -> {}",
            margin(&before),
            margin(&after)
        );
    }
}
