//! The GRPO run on the parity model: metrics, checkpoints, plots, and exact resume (3 steps
//! straight == 2 + restart + 1).

use std::path::Path;

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_train::rl::run::{GrpoConfig, GrpoRun};

type A = Autodiff<Flex>;

fn config(prompts: &Path) -> GrpoConfig {
    let mut c = GrpoConfig::default();
    c.model.init = Some(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../model/tests/fixtures/llama_mha")
            .display()
            .to_string(),
    );
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
    let a = GrpoRun::<A>::new(config(&prompts), &tmp.path().join("a"), &dev)
        .unwrap()
        .run(None, false)
        .unwrap();
    assert_eq!(a.len(), 3);
    assert!(a.iter().all(|m| m.stats.logp_mismatch < 1e-4
        && m.stats.response_len_max <= 6
        && m.rollout_tokens_per_s > 0.0
        && m.train_tokens_per_s > 0.0
        && m.rollout_seconds < m.step_seconds));
    GrpoRun::<A>::new(config(&prompts), &tmp.path().join("b"), &dev)
        .unwrap()
        .run(Some(2), false)
        .unwrap();
    let mut r = GrpoRun::<A>::new(config(&prompts), &tmp.path().join("b"), &dev).unwrap();
    assert_eq!(r.step, 2);
    let b = r.run(None, false).unwrap();
    let key = |m: &dsmath_train::rl::run::GrpoMetrics| {
        (
            m.step,
            m.stats.reward_mean.to_bits(),
            m.stats.loss.to_bits(),
            m.stats.response_len_mean.to_bits(),
        )
    };
    assert_eq!(key(&a[2]), key(&b[0]));
    let w = |d: &Path| {
        dsmath_model::load_model::<Flex>(d, &Default::default())
            .unwrap()
            .model
            .named_tensors()[3]
            .1
            .clone()
    };
    assert_eq!(
        w(&tmp.path().join("a/step-3")),
        w(&tmp.path().join("b/step-3"))
    );
    assert!(
        std::fs::read_to_string(tmp.path().join("a/reward.svg"))
            .unwrap()
            .contains("<svg")
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("a/metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

/// Dynamic sampling keeps only groups whose rewards differ (refilling from more questions), and
/// a step whose every group is uninformative is skipped after `max_refills` rounds; mu = 2 makes
/// a second update on the same samples.
#[test]
fn dynamic_sampling_drops_equal_groups_and_mu_updates_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("prompts.jsonl");
    let lines: Vec<String> = (0..12)
        .map(|i| {
            serde_json::json!({"question": format!("Tell me about {i}"), "gold": "987654321"})
                .to_string()
        })
        .collect();
    std::fs::write(&prompts, lines.join("\n")).unwrap();
    let dev = Default::default();
    let contains_e: dsmath_train::rl::run::RewardFn =
        std::sync::Arc::new(|t: &str, _: &str| if t.contains('e') { 1.0 } else { 0.0 });

    // All rewards 0 (the grader on random text): every group dropped, the step skipped.
    let mut c = config(&prompts);
    c.train.steps = 1;
    c.grpo.dynamic_sampling = true;
    c.grpo.max_refills = 2;
    let mut r = GrpoRun::<A>::new(c.clone(), &tmp.path().join("none"), &dev).unwrap();
    let m = r.step_once().unwrap();
    assert!(
        m.stats.skipped && m.stats.refills == 2 && m.stats.dropped_groups == 2 * 3,
        "{:?}",
        m.stats
    );

    // Reward `contains e`: kept groups all have both kinds of reward.
    let mut r = GrpoRun::<A>::new(c.clone(), &tmp.path().join("some"), &dev)
        .unwrap()
        .with_reward(contains_e.clone());
    let m = r.step_once().unwrap();
    assert!(
        !m.stats.skipped && m.stats.zero_std_groups == 0.0 && m.stats.grad_norm > 0.0,
        "{:?}",
        m.stats
    );

    // mu = 2 moves the weights further than mu = 1 from the same samples.
    let mut c1 = config(&prompts);
    c1.train.steps = 1;
    c1.grpo.group_size = 8;
    let mut c2 = c1.clone();
    c2.grpo.mu = 2;
    let vals = |d: burn::tensor::TensorData| d.convert::<f32>().to_vec::<f32>().unwrap();
    let w0 = vals(
        dsmath_model::load_model::<Flex>(Path::new(c1.model.init.as_ref().unwrap()), &dev)
            .unwrap()
            .model
            .named_tensors()[3]
            .1
            .clone(),
    );
    let dist = |c: GrpoConfig, name: &str| {
        let mut r = GrpoRun::<A>::new(c, &tmp.path().join(name), &dev)
            .unwrap()
            .with_reward(contains_e.clone());
        let m = r.step_once().unwrap();
        assert!(!m.stats.skipped, "{:?}", m.stats);
        let w = vals(
            burn::module::AutodiffModule::valid(&r.policy).named_tensors()[3]
                .1
                .clone(),
        );
        w.iter()
            .zip(&w0)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
    };
    let (d1, d2) = (dist(c1, "mu1"), dist(c2, "mu2"));
    assert!(d1 > 0.0 && d2 > d1 * 1.2, "mu=1 moved {d1}, mu=2 {d2}");
}

/// Iterative RL (Algorithm 1): with a reward model and `iteration_steps = 1`, after step 1 the
/// reference is the policy (`reference-1/`) and the reward model has been trained on the step's
/// samples labelled by the grader (`reward_model-1/`, its head moved); a restarted run loads both.
#[test]
fn iterative_rl_moves_the_reference_and_retrains_the_reward_model() {
    use burn::module::AutodiffModule;
    use dsmath_train::reward_model::RewardModel;
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("prompts.jsonl");
    let lines: Vec<String> = (0..6)
        .map(|i| {
            serde_json::json!({"question": format!("Say something about {i}"), "gold": "x"})
                .to_string()
        })
        .collect();
    std::fs::write(&prompts, lines.join("\n")).unwrap();
    let dev = Default::default();
    let mut c = config(&prompts);
    let init = Path::new(c.model.init.as_ref().unwrap()).to_path_buf();
    let rm_dir = tmp.path().join("rm0");
    let base = dsmath_model::load_model::<Flex>(&init, &dev).unwrap();
    // A non-zero head, so the step-1 rewards differ within a group and the policy learns from
    // them (with a zero head every reward is equal, every advantage 0, and at step 1 the policy
    // equals the reference: no gradient at all).
    let mut rm0 = RewardModel::from_policy(base.model);
    let d = rm0.score.val().dims()[1];
    let head0: Vec<f32> = (0..d).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
    rm0.score = burn::module::Param::from_tensor(burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(head0.clone(), [1, d]),
        &dev,
    ));
    rm0.save(&rm_dir, &base.config, Some(&init)).unwrap();
    c.grpo.reward_model = Some(rm_dir.display().to_string());
    c.grpo.iteration_steps = 1;
    c.grpo.rm_lr = 1e-2;
    c.train.steps = 2;
    let contains_e: dsmath_train::rl::run::RewardFn =
        std::sync::Arc::new(|t: &str, _: &str| if t.contains('e') { 1.0 } else { 0.0 });
    let out = tmp.path().join("run");
    let mut r = GrpoRun::<A>::new(c.clone(), &out, &dev)
        .unwrap()
        .with_reward(contains_e);
    let m = r.run(None, false).unwrap();
    assert!(
        m[0].stats.zero_std_groups < 1.0 && m[0].stats.grad_norm > 0.0,
        "step 1 has a learning signal: {m:?}"
    );
    assert!(
        out.join("reference-1/model.safetensors").exists()
            && out.join("reward_model-1/score.safetensors").exists()
    );
    assert!(
        !out.join("reference-2").exists(),
        "no new iteration after the last step"
    );
    let logged = std::fs::read_to_string(out.join("rm_samples.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(logged, 2 * 2 * 4, "2 steps x 2 questions x 4 samples");
    let (rm1, _) = RewardModel::<Flex>::load(&out.join("reward_model-1"), &dev).unwrap();
    let head: Vec<f32> = rm1.score.val().into_data().to_vec().unwrap();
    assert_ne!(head, head0, "the reward model was not trained");
    // The reference is the policy after step 1, not the initial model.
    let r1 = dsmath_model::load_model::<Flex>(&out.join("reference-1"), &dev)
        .unwrap()
        .model
        .named_tensors()[3]
        .1
        .clone();
    assert_ne!(
        r1,
        dsmath_model::load_model::<Flex>(&init, &dev)
            .unwrap()
            .model
            .named_tensors()[3]
            .1
            .clone()
    );
    // A restart finds both.
    let again = GrpoRun::<A>::new(c, &out, &dev).unwrap();
    let h2: Vec<f32> = again
        .reward_model
        .as_ref()
        .unwrap()
        .score
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(h2, head);
    let _ = again.policy.valid();
}

/// PPO (the unified paradigm's critic baseline): the value model is trained alongside the policy,
/// travels in every checkpoint (`critic/`, `critic_optimizer.safetensors`), and a restarted run
/// continues exactly (3 steps straight == 2 + restart + 1, value losses included).
#[test]
fn ppo_run_trains_a_critic_and_resumes_exactly() {
    use dsmath_train::rl::loss::Algorithm;
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("prompts.jsonl");
    let lines: Vec<String> = (0..6)
        .map(|i| {
            serde_json::json!({"question": format!("Say something about {i}"), "gold": "x"})
                .to_string()
        })
        .collect();
    std::fs::write(&prompts, lines.join("\n")).unwrap();
    let dev = Default::default();
    let contains_e: dsmath_train::rl::run::RewardFn =
        std::sync::Arc::new(|t: &str, _: &str| if t.contains('e') { 1.0 } else { 0.0 });
    let mut c = config(&prompts);
    c.grpo.loss.algorithm = Algorithm::Ppo;
    let a = GrpoRun::<A>::new(c.clone(), &tmp.path().join("a"), &dev)
        .unwrap()
        .with_reward(contains_e.clone())
        .run(None, false)
        .unwrap();
    assert!(
        a.iter().all(|m| !m.stats.skipped
            && m.stats.value_loss > 0.0
            && m.stats.value_loss.is_finite()
            && m.stats.grad_norm > 0.0),
        "{a:?}"
    );
    assert!(
        tmp.path()
            .join("a/step-3/critic/score.safetensors")
            .exists()
            && tmp
                .path()
                .join("a/step-3/critic_optimizer.safetensors")
                .exists()
    );
    GrpoRun::<A>::new(c.clone(), &tmp.path().join("b"), &dev)
        .unwrap()
        .with_reward(contains_e.clone())
        .run(Some(2), false)
        .unwrap();
    let mut r = GrpoRun::<A>::new(c, &tmp.path().join("b"), &dev)
        .unwrap()
        .with_reward(contains_e);
    assert_eq!(r.step, 2);
    let b = r.run(None, false).unwrap();
    let key = |m: &dsmath_train::rl::run::GrpoMetrics| {
        (
            m.step,
            m.stats.reward_mean.to_bits(),
            m.stats.loss.to_bits(),
            m.stats.value_loss.to_bits(),
        )
    };
    assert_eq!(key(&a[2]), key(&b[0]));
    let head = |d: &str| {
        let (rm, _) = dsmath_train::reward_model::RewardModel::<Flex>::load(
            &tmp.path().join(d).join("step-3/critic"),
            &dev,
        )
        .unwrap();
        rm.score.val().into_data().to_vec::<f32>().unwrap()
    };
    assert_eq!(head("a"), head("b"));
    assert!(
        head("a").iter().any(|&x| x != 0.0),
        "the critic's head never moved"
    );
}

/// `[train] dtype = "bf16"` in a GRPO config: sampling and both log-prob passes run on bf16 views
/// (the sampler/trainer log-prob gap is bf16 rounding, not f32's ~0), the checkpoints hold the f32
/// master weights, and an unknown dtype is refused naming the field.
#[test]
fn grpo_run_in_bf16_keeps_f32_master_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("prompts.jsonl");
    std::fs::write(&prompts, (0..4).map(|i| serde_json::json!({"question": format!("What is {i} + {i}?"), "gold": (2 * i).to_string()}).to_string() + "\n").collect::<String>()).unwrap();
    let dev = Default::default();
    let mut c = config(&prompts);
    c.train.steps = 2;
    c.train.dtype = "bf16".into();
    let m = GrpoRun::<A>::new(c.clone(), &tmp.path().join("bf16"), &dev)
        .unwrap()
        .run(None, false)
        .unwrap();
    assert_eq!(m.len(), 2);
    assert!(
        m.iter()
            .all(|m| !m.stats.skipped && m.stats.loss.is_finite() && m.stats.grad_norm > 0.0),
        "{m:?}"
    );
    assert!(
        m.iter()
            .all(|m| m.stats.logp_mismatch > 1e-4 && m.stats.logp_mismatch < 0.1),
        "{m:?}"
    );
    let st = std::fs::read(tmp.path().join("bf16/step-2/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st).unwrap();
    assert!(
        st.tensors()
            .iter()
            .all(|(_, t)| t.dtype() == safetensors::Dtype::F32)
    );
    c.train.dtype = "fp8".into();
    let err = GrpoRun::<A>::new(c, &tmp.path().join("bad"), &dev)
        .err()
        .expect("fp8 accepted")
        .to_string();
    assert!(err.contains("train.dtype") && err.contains("fp8"), "{err}");
}

/// With a chat template beside the model, each RL prompt is one user turn in it (question +
/// DeepSeekMath's instruction); `[data] plain_prompt` keeps the "User: ... Assistant:" text.
#[test]
fn rl_prompts_use_the_checkpoints_chat_template() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures");
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(fixtures.join("llama_mha").join(f), model.join(f)).unwrap();
    }
    std::fs::copy(
        fixtures.join("chat/templates/smollm2-instruct.jinja"),
        model.join("chat_template.jinja"),
    )
    .unwrap();
    let prompts = tmp.path().join("prompts.jsonl");
    let q = "What is 12 + 30?";
    std::fs::write(
        &prompts,
        serde_json::json!({"question": q, "gold": "42"}).to_string(),
    )
    .unwrap();
    let mut c = config(&prompts);
    c.model.init = Some(model.display().to_string());
    let dev = Default::default();
    let run = GrpoRun::<A>::new(c.clone(), &tmp.path().join("chat"), &dev).unwrap();
    let chat = dsmath_model::chat::ChatTemplate::from_dir(&model)
        .unwrap()
        .unwrap();
    let want = chat
        .user_prompt(&dsmath_eval::prompts::instruct_turn(q))
        .unwrap();
    assert!(
        want.starts_with("<|im_start|>system\n") && want.ends_with("<|im_start|>assistant\n"),
        "{want}"
    );
    assert_eq!(run.prompts()[0].0, run.tok.encode_prompt(&want).unwrap());
    c.data.plain_prompt = true;
    let plain = GrpoRun::<A>::new(c, &tmp.path().join("plain"), &dev).unwrap();
    assert_eq!(
        plain.prompts()[0].0,
        plain
            .tok
            .encode(&dsmath_eval::prompts::instruct(q))
            .unwrap()
    );
}
