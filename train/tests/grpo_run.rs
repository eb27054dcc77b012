//! The GRPO run on the parity model: metrics, checkpoints, plots, and exact resume (3 steps
//! straight == 2 + restart + 1).

use std::path::Path;

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_train::grpo_train::{GrpoConfig, GrpoRun};

type A = Autodiff<Flex>;

fn config(prompts: &Path) -> GrpoConfig {
    let mut c = GrpoConfig::default();
    c.model.init = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/llama_mha").display().to_string());
    c.data.prompts = prompts.display().to_string();
    c.grpo.group_size = 4;
    c.grpo.prompts_per_step = 2;
    c.grpo.max_new_tokens = 6;
    c.schedule.peak_lr = 1e-3;
    c.train.steps = 3;
    c.train.checkpoint_every = 1;
    c
}

#[test]
fn grpo_run_logs_checkpoints_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("prompts.jsonl");
    let lines: Vec<String> = dsmath_eval::bench::Benchmark::Gsm8k
        .load_default()
        .unwrap()
        .into_iter()
        .take(5)
        .map(|p| serde_json::json!({"question": p.question, "gold": p.gold}).to_string())
        .collect();
    std::fs::write(&prompts, lines.join("\n")).unwrap();
    let dev = Default::default();
    let a = GrpoRun::<A>::new(config(&prompts), &tmp.path().join("a"), &dev).unwrap().run(None, false).unwrap();
    assert_eq!(a.len(), 3);
    assert!(a.iter().all(|m| m.stats.logp_mismatch < 1e-4 && m.stats.response_len_max <= 6 && m.rollout_tokens_per_s > 0.0));
    GrpoRun::<A>::new(config(&prompts), &tmp.path().join("b"), &dev).unwrap().run(Some(2), false).unwrap();
    let mut r = GrpoRun::<A>::new(config(&prompts), &tmp.path().join("b"), &dev).unwrap();
    assert_eq!(r.step, 2);
    let b = r.run(None, false).unwrap();
    let key = |m: &dsmath_train::grpo_train::GrpoMetrics| (m.step, m.stats.reward_mean.to_bits(), m.stats.loss.to_bits(), m.stats.response_len_mean.to_bits());
    assert_eq!(key(&a[2]), key(&b[0]));
    let w = |d: &Path| dsmath_model::load_model::<Flex>(d, &Default::default()).unwrap().model.named_tensors()[3].1.clone();
    assert_eq!(w(&tmp.path().join("a/step-3")), w(&tmp.path().join("b/step-3")));
    assert!(std::fs::read_to_string(tmp.path().join("a/reward.svg")).unwrap().contains("<svg"));
    assert_eq!(std::fs::read_to_string(tmp.path().join("a/metrics.jsonl")).unwrap().lines().count(), 3);
}
