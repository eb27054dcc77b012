//! Data-parallel GRPO over burn-collective on the CPU: two ranks (threads sharing the flex
//! device), each exploring half of every step's prompts, give the same run as one device on the
//! whole batch (losses, gradient norms, rewards, weights), with an interruption and exact resume
//! in the middle; two nodes on loopback do the same; settings that cannot run are refused naming
//! the key.

use std::path::{Path, PathBuf};

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_train::rl::loss::{Aggregation, Algorithm};
use dsmath_train::rl::parallel::grpo_data_parallel;
use dsmath_train::rl::run::{GrpoConfig, GrpoMetrics, GrpoRun, RewardFn};

type A = Autodiff<Flex>;

/// Tests of this binary that use burn-collective take turns (it is one global per process).
static COLLECTIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn prompts(dir: &Path) -> PathBuf {
    let p = dir.join("prompts.jsonl");
    let lines: Vec<String> = (0..10)
        .map(|i| {
            serde_json::json!({"question": format!("Tell me about {i} apples"), "gold": "x"})
                .to_string()
        })
        .collect();
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

/// DAPO's token mean (the normaliser is the whole step's token count), 4 prompts x G = 4 per
/// step, micro-batches of 3 (uneven over a rank's 8 outputs).
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
    c.grpo.prompts_per_step = 4;
    c.grpo.max_new_tokens = 6;
    c.grpo.micro_batch = 3;
    c.grpo.loss.aggregation = Aggregation::TokenMean;
    c.schedule.peak_lr = 1e-3;
    c.train.steps = 3;
    c.train.checkpoint_every = 1;
    c
}

/// Reward: the completion contains the letter `e` (about half of random texts do).
fn reward() -> RewardFn {
    std::sync::Arc::new(|text: &str, _gold: &str| if text.contains('e') { 1.0 } else { 0.0 })
}

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    dsmath_model::load_model::<Flex>(dir, &Default::default())
        .unwrap()
        .model
        .named_tensors()
        .into_iter()
        .map(|(n, d)| (n, d.convert::<f32>().to_vec::<f32>().unwrap()))
        .collect()
}

/// Same steps (loss to 1e-6 + 1e-5 relative: the f32 all-reduce of a sum with cancellations;
/// grad norm to 1e-5, rewards and lengths equal) and the
/// same weights in the checkpoints (1e-6).
fn assert_same_run(one: &[GrpoMetrics], one_ckpt: &Path, other: &[GrpoMetrics], ckpt: &Path) {
    assert_eq!(one.len(), other.len());
    for (x, y) in one.iter().zip(other) {
        let (a, b) = (&x.stats, &y.stats);
        assert!(
            x.step == y.step
                && (a.loss - b.loss).abs() <= 1e-6 + 1e-5 * a.loss.abs()
                && (a.grad_norm - b.grad_norm).abs() <= 1e-5 * a.grad_norm
                && (a.reward_mean - b.reward_mean).abs() < 1e-6
                && (a.response_len_mean - b.response_len_mean).abs() < 1e-6
                && (a.kl - b.kl).abs() < 1e-6
                && (a.value_loss - b.value_loss).abs() <= 1e-6 + 1e-5 * a.value_loss.abs()
                && a.grad_norm > 0.0
                && !b.skipped,
            "step {}: {a:?}\nvs\n{b:?}",
            x.step
        );
    }
    for ((n, a), (_, b)) in weights(one_ckpt).iter().zip(&weights(ckpt)) {
        let d = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(d < 1e-6, "{}: {n} differs by {d}", ckpt.display());
    }
}

fn one_device(c: &GrpoConfig, out: &Path) -> Vec<GrpoMetrics> {
    GrpoRun::<A>::new(c.clone(), out, &Default::default())
        .unwrap()
        .with_reward(reward())
        .run(None, false)
        .unwrap()
}

/// Two steps, stop (as if killed after the step-2 checkpoint), resume to the end.
fn two_phases(c: &GrpoConfig, out: &Path, devices: usize, between: impl Fn()) -> Vec<GrpoMetrics> {
    let run = |stop| {
        grpo_data_parallel::<A>(
            c.clone(),
            out,
            vec![Default::default(); devices],
            stop,
            false,
            Some(reward()),
        )
        .unwrap()
    };
    let mut m = run(Some(2));
    assert_eq!(m.len(), 2);
    between();
    m.extend(run(None));
    m
}

#[test]
fn two_ranks_equal_one_device_and_resume_exactly() {
    let _turn = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let c = config(&prompts(tmp.path()));
    let one = one_device(&c, &tmp.path().join("one"));
    let mut c2 = c.clone();
    c2.train.devices = 2;
    let two = two_phases(&c2, &tmp.path().join("two"), 2, || {});
    assert_same_run(
        &one,
        &tmp.path().join("one/step-3"),
        &two,
        &tmp.path().join("two/step-3"),
    );
    // Rank 0 alone writes: one metrics line per step.
    let lines = std::fs::read_to_string(tmp.path().join("two/metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
    // DPO: its loss is the mean over the whole step's (correct, wrong) pairs (lr 1e-4: AdamW
    // turns the f32 rounding of near-zero gradients into weight differences of lr x 1e-3).
    let mut dpo = c.clone();
    dpo.grpo.loss.algorithm = Algorithm::Dpo;
    dpo.schedule.peak_lr = 1e-4;
    let one = one_device(&dpo, &tmp.path().join("dpo-one"));
    dpo.train.devices = 2;
    let two = two_phases(&dpo, &tmp.path().join("dpo-two"), 2, || {});
    assert_same_run(
        &one,
        &tmp.path().join("dpo-one/step-3"),
        &two,
        &tmp.path().join("dpo-two/step-3"),
    );
    // PPO: advantages whitened over every rank's tokens, the critic's loss over all of them and
    // its gradients all-reduced (the critic travels in the checkpoints through the resume).
    let mut ppo = c.clone();
    ppo.grpo.loss.algorithm = Algorithm::Ppo;
    ppo.schedule.peak_lr = 1e-4;
    let one = one_device(&ppo, &tmp.path().join("ppo-one"));
    ppo.train.devices = 2;
    let two = two_phases(&ppo, &tmp.path().join("ppo-two"), 2, || {});
    assert!(one.iter().all(|m| m.stats.value_loss > 0.0), "{one:?}");
    assert_same_run(
        &one,
        &tmp.path().join("ppo-one/step-3"),
        &two,
        &tmp.path().join("ppo-two/step-3"),
    );

    // What cannot run data-parallel is refused naming the key.
    let refused = |f: &dyn Fn(&mut GrpoConfig), key: &str| {
        let mut bad = c2.clone();
        f(&mut bad);
        let e = bad.check().unwrap_err();
        assert!(e.contains(key), "{key}: {e}");
    };
    refused(&|b| b.grpo.prompts_per_step = 3, "grpo.prompts_per_step");
    refused(&|b| b.grpo.dynamic_sampling = true, "grpo.dynamic_sampling");
    refused(&|b| b.train.devices = 0, "train.devices");
    refused(&|b| b.train.node_rank = 1, "train.node_rank");
    refused(
        &|b| b.train.collective_timeout_s = 0,
        "train.collective_timeout_s",
    );
    let e = grpo_data_parallel::<A>(
        c2.clone(),
        &tmp.path().join("bad"),
        vec![Default::default(); 3],
        None,
        false,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("train.devices is 2"), "{e}");

    // A rank that fails mid-run (rank 0 cannot write step 1's checkpoint: a file is in the way)
    // while the other waits in step 2's all-reduce: the run returns rank 0's error, within a
    // deadline (without the release the other rank would wait for ever).
    let fail = tmp.path().join("fail");
    std::fs::create_dir_all(&fail).unwrap();
    std::fs::write(fail.join("step-1.tmp"), "in the way").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = grpo_data_parallel::<A>(
            c2,
            &fail,
            vec![Default::default(); 2],
            None,
            false,
            Some(reward()),
        );
        let _ = tx.send(r.map(|m| m.len()));
    });
    let e = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("a failed rank left the other blocked in the all-reduce")
        .unwrap_err();
    assert!(e.to_string().contains("step-1.tmp"), "{e}");
}

/// Two nodes through burn-collective's global orchestrator on loopback: this process runs the
/// orchestrator and node 0, node 1 is this test binary again (told by `DSMATH_TEST_GRPO_NODE1`),
/// each node with one device and its own run directory; both stop after two steps and resume,
/// and both make the same updates as one device.
#[test]
fn two_nodes_equal_one_device() {
    if let Ok(dir) = std::env::var("DSMATH_TEST_GRPO_NODE1") {
        let dir = PathBuf::from(dir);
        let c: GrpoConfig =
            toml::from_str(&std::fs::read_to_string(dir.join("node1.toml")).unwrap()).unwrap();
        let m = two_phases(&c, &dir.join("node1"), 1, || wait_for_both(&dir, 1));
        assert_eq!(m.len(), 3);
        return;
    }
    let _turn = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = std::net::TcpListener::bind("127.0.0.1:0") {
        eprintln!("SKIPPED two_nodes_equal_one_device: no loopback network here ({e})");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let c = config(&prompts(tmp.path()));
    let one = one_device(&c, &tmp.path().join("one"));
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (orchestrator, port0, port1) = (port(), port(), port());
    std::thread::spawn(move || dsmath_train::parallel::run_orchestrator(orchestrator));
    let mut c0 = c.clone();
    c0.train.nodes = 2;
    c0.train.orchestrator = format!("ws://127.0.0.1:{orchestrator}");
    c0.train.collective_timeout_s = 120;
    let mut c1 = c0.clone();
    c0.train.node_address = format!("ws://127.0.0.1:{port0}");
    c1.train.node_rank = 1;
    c1.train.node_address = format!("ws://127.0.0.1:{port1}");
    std::fs::write(tmp.path().join("node1.toml"), toml::to_string(&c1).unwrap()).unwrap();
    let mut node1 = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "two_nodes_equal_one_device", "--nocapture"])
        .env("DSMATH_TEST_GRPO_NODE1", tmp.path())
        .spawn()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    let two = match std::panic::catch_unwind(|| {
        two_phases(&c0, &tmp.path().join("node0"), 1, || wait_for_both(&dir, 0))
    }) {
        Ok(m) => m,
        Err(e) => {
            let _ = node1.kill();
            std::panic::resume_unwind(e);
        }
    };
    assert!(node1.wait().unwrap().success(), "node 1 failed");
    for node in ["node0", "node1"] {
        let ckpt = tmp.path().join(node).join("step-3");
        assert_same_run(&one, &tmp.path().join("one/step-3"), &two, &ckpt);
    }
}

/// Node `me` has stopped; wait (at most a minute) until the other has too: a restart of the
/// whole job.
fn wait_for_both(dir: &Path, me: usize) {
    std::fs::write(dir.join(format!("stopped-{me}")), "").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(0..2).all(|n| dir.join(format!("stopped-{n}")).exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the other node did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
