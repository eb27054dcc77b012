//! GRPO learns (issue: "a seeded end-to-end CPU run in which GRPO raises held-out accuracy of an
//! SFT-trained tiny model on generated arithmetic word problems by at least 15 points"). The
//! fixture `fixtures/arith_sft/` is the demo's SFT model (`cargo xtask demo`, made by
//! `scripts/make_arith_sft_fixture.sh`): 0.22M parameters, about 38% greedy on held-out problems.
//! 60 GRPO steps with the rule-based grader must lift it by 15 points or more.

use std::path::Path;

use burn::module::AutodiffModule;
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_model::Tokenizer;
use dsmath_train::arith::{Split, problems};
use dsmath_train::compare::heldout_accuracy;
use dsmath_train::rl::run::{GrpoConfig, GrpoRun};

type A = Autodiff<Flex>;

#[test]
fn grpo_raises_heldout_accuracy_of_the_sft_model_by_15_points() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arith_sft");
    let tmp = tempfile::tempdir().unwrap();
    let heldout = tmp.path().join("heldout.jsonl");
    let rl = tmp.path().join("rl.jsonl");
    let lines = |v: Vec<serde_json::Value>| v.iter().map(|x| format!("{x}\n")).collect::<String>();
    // The demo's streams: RL prompts from seed 3, held-out problems from seed 4.
    std::fs::write(
        &heldout,
        lines(
            problems(4, 150, Split::Heldout)
                .iter()
                .map(|p| serde_json::json!({"question": p.question, "answer": p.answer}))
                .collect(),
        ),
    )
    .unwrap();
    std::fs::write(
        &rl,
        lines(
            problems(3, 2000, Split::Train)
                .iter()
                .map(|p| serde_json::json!({"question": p.question, "gold": p.gold}))
                .collect(),
        ),
    )
    .unwrap();

    let dev = Default::default();
    let sft = dsmath_model::load_model::<Flex>(&fixture, &dev).unwrap();
    let tok = Tokenizer::from_dir(&fixture, &sft.config).unwrap();
    let before = heldout_accuracy(&sft.model, &tok, &heldout, 48).unwrap();

    let mut cfg = GrpoConfig::default();
    cfg.model.init = Some(fixture.display().to_string());
    cfg.data.prompts = rl.display().to_string();
    cfg.grpo.group_size = 8;
    cfg.grpo.prompts_per_step = 8;
    cfg.grpo.max_new_tokens = 48;
    cfg.schedule.peak_lr = 2e-4;
    cfg.train.steps = 60;
    cfg.train.checkpoint_every = 60;
    let mut run = GrpoRun::<A>::new(cfg, &tmp.path().join("grpo"), &dev).unwrap();
    let m = run.run(None, false).unwrap();
    let after = heldout_accuracy(&run.policy.valid(), &tok, &heldout, 48).unwrap();
    let r = |s: &[dsmath_train::rl::run::GrpoMetrics]| {
        s.iter().map(|x| x.stats.reward_mean).sum::<f64>() / s.len() as f64
    };
    eprintln!(
        "held-out greedy {before:.1}% -> {after:.1}%; reward {:.3} (first 10 steps) -> {:.3} (last 10)",
        r(&m[..10]),
        r(&m[50..])
    );
    assert!(after >= before + 15.0, "GRPO: {before:.1}% -> {after:.1}%");
    assert!(r(&m[50..]) > r(&m[..10]), "the mean reward did not rise");
}
