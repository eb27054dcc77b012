//! The training loop on real text (GSM8K train): exact resume (20 steps straight equal 10, a
//! resume and 10 more, losses and weights), accumulation == one big batch, non-finite steps skipped then the
//! run stopped, SFT loss only on responses with packing, checkpoints loadable as models.

use std::path::{Path, PathBuf};

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use dsmath_data::shards::{train_bpe, write_shard};
use dsmath_train::batches::SourceSpec;
use dsmath_train::trainer::{StepMetrics, TrainConfig, Trainer};

type B = Autodiff<Flex>;

fn gsm8k(n: usize) -> Vec<(String, String)> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval/data/gsm8k/train.jsonl");
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["question"].as_str().unwrap().to_string(),
                v["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A tokenizer dir and a token shard of 400 GSM8K problems.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let texts: Vec<String> = gsm8k(400)
        .into_iter()
        .map(|(q, a)| format!("{q}\n{a}"))
        .collect();
    let tok_dir = dir.join("tok");
    std::fs::create_dir_all(&tok_dir).unwrap();
    let tok = train_bpe(texts.iter().map(String::as_str), 400).unwrap();
    tok.save(tok_dir.join("tokenizer.json"), false).unwrap();
    let stem = dir.join("gsm8k");
    write_shard(
        &stem,
        texts.iter().map(String::as_str),
        &tok_dir.join("tokenizer.json"),
        "gsm8k",
    )
    .unwrap();
    (tok_dir, stem)
}

fn config(tok: &Path, stem: &Path) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.model.preset = Some("tiny".into());
    c.model.tokenizer = Some(tok.display().to_string());
    c.data.sources = vec![SourceSpec {
        name: "gsm8k".into(),
        path: stem.display().to_string(),
        weight: 1.0,
    }];
    c.train.steps = 20;
    c.train.batch_size = 4;
    c.train.micro_batch = 2;
    c.train.seq_len = 32;
    c.train.checkpoint_every = 10;
    c.train.eval_every = 0;
    c.schedule.peak_lr = 3e-3;
    c.schedule.warmup_steps = 3;
    c
}

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let m = dsmath_model::load_model::<Flex>(dir, &Default::default())
        .unwrap()
        .model;
    m.named_tensors()
        .into_iter()
        .map(|(n, d)| (n, d.convert::<f32>().to_vec::<f32>().unwrap()))
        .collect()
}

#[test]
fn resume_is_exact_and_accumulation_equals_a_big_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, stem) = setup(tmp.path());
    let dev = Default::default();
    let straight = tmp.path().join("straight");
    let a = Trainer::<B>::new(config(&tok, &stem), &straight, &dev)
        .unwrap()
        .run(None, false)
        .unwrap();
    assert_eq!(a.len(), 20);
    assert!(
        a[19].loss < a[0].loss - 0.5,
        "loss {} -> {}",
        a[0].loss,
        a[19].loss
    );
    let split = tmp.path().join("split");
    let b1 = Trainer::<B>::new(config(&tok, &stem), &split, &dev)
        .unwrap()
        .run(Some(10), false)
        .unwrap();
    // "Kill" after step 10: a new process-like Trainer resumes from `latest`.
    let mut t = Trainer::<B>::new(config(&tok, &stem), &split, &dev).unwrap();
    assert_eq!(t.state.step, 10);
    let b2 = t.run(None, false).unwrap();
    let la: Vec<f64> = a.iter().map(|m| m.loss).collect();
    let lb: Vec<f64> = b1.iter().chain(&b2).map(|m| m.loss).collect();
    assert_eq!(la, lb, "losses differ after resume");
    assert_eq!(
        weights(&straight.join("step-20")),
        weights(&split.join("step-20")),
        "weights differ after resume"
    );
    assert!(!straight.join("step-10").exists() || straight.join("step-20").exists());
    assert_eq!(
        std::fs::read_to_string(straight.join("latest")).unwrap(),
        "step-20"
    );
    assert!(
        std::fs::read_to_string(straight.join("loss.svg"))
            .unwrap()
            .contains("<svg")
    );
    let lines = std::fs::read_to_string(straight.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, 20);

    // Accumulating 2 micro-batches of 2 == one batch of 4 (same data, same first update).
    let mut big = config(&tok, &stem);
    big.train.micro_batch = 4;
    big.train.steps = 2;
    let mut small = config(&tok, &stem);
    small.train.steps = 2;
    let m_big = Trainer::<B>::new(big, &tmp.path().join("big"), &dev)
        .unwrap()
        .run(None, false)
        .unwrap();
    let m_small = Trainer::<B>::new(small, &tmp.path().join("small"), &dev)
        .unwrap()
        .run(None, false)
        .unwrap();
    for (x, y) in m_big.iter().zip(&m_small) {
        assert!(
            (x.loss - y.loss).abs() < 1e-5
                && (x.grad_norm - y.grad_norm).abs() < 1e-4 * x.grad_norm,
            "{x:?} vs {y:?}"
        );
    }
}

#[test]
fn non_finite_steps_are_skipped_then_the_run_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, stem) = setup(tmp.path());
    let dev = Default::default();
    let mut c = config(&tok, &stem);
    c.train.steps = 6;
    c.train.checkpoint_every = 0;
    c.train.poison_steps = vec![3];
    let mut t = Trainer::<B>::new(c.clone(), &tmp.path().join("one"), &dev).unwrap();
    t.run(Some(3), false).unwrap();
    let before = t.model.named_tensors()[0].1.clone();
    let m = t.run(Some(1), false).unwrap();
    assert!(m[0].skipped && !m[0].loss.is_finite());
    assert_eq!(
        t.model.named_tensors()[0].1,
        before,
        "a skipped step leaves the weights alone"
    );
    let rest = t.run(None, false).unwrap();
    assert!(rest.iter().all(|m| !m.skipped && m.loss.is_finite()));
    c.train.poison_steps = vec![1, 2, 3];
    c.train.max_bad_steps = 2;
    let err = Trainer::<B>::new(c, &tmp.path().join("two"), &dev)
        .unwrap()
        .run(None, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("step 2") && err.contains("2 non-finite steps in a row"),
        "{err}"
    );
}

#[test]
fn sft_trains_on_responses_only_with_packing() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, _) = setup(tmp.path());
    let sft = tmp.path().join("sft.jsonl");
    let recs: Vec<String> = gsm8k(200)
        .into_iter()
        .map(|(q, a)| serde_json::json!({"prompt": format!("User: {q}\n\nAssistant:"), "response": format!(" {a}")}).to_string())
        .collect();
    std::fs::write(&sft, recs.join("\n")).unwrap();
    // Response-only weights.
    let mut mc = dsmath_model::LlamaConfig::tiny(400);
    mc.eos_token_id = Some(dsmath_model::config::TokenIds::One(0));
    mc.pad_token_id = Some(1);
    let tk = dsmath_model::Tokenizer::from_dir(&tok, &mc).unwrap();
    let (ex, _) = dsmath_train::batches::read_sft(&sft, &tk, None, 512).unwrap();
    let prompt_len = tk
        .encode_with(&format!("User: {}\n\nAssistant:", gsm8k(1)[0].0), false)
        .unwrap()
        .len();
    assert!(
        ex[0].weight[..prompt_len].iter().all(|&w| w == 0.0)
            && ex[0].weight[prompt_len..].iter().all(|&w| w == 1.0)
    );
    assert_eq!(*ex[0].ids.last().unwrap(), 0, "response ends with EOS");
    let mut c = TrainConfig::default();
    c.model.preset = Some("tiny".into());
    c.model.tokenizer = Some(tok.display().to_string());
    c.data.sft = vec![sft.display().to_string()];
    c.data.heldout = Some(sft.display().to_string());
    c.data.heldout_rows = 4;
    c.data.pack = true;
    c.train.stage = "sft".into();
    c.train.steps = 12;
    c.train.batch_size = 2;
    c.train.micro_batch = 2;
    c.train.seq_len = 256;
    c.train.eval_every = 12;
    c.train.checkpoint_every = 12;
    c.schedule.peak_lr = 3e-3;
    c.schedule.warmup_steps = 2;
    let out = tmp.path().join("sft");
    let m = Trainer::<B>::new(c, &out, &Default::default())
        .unwrap()
        .run(None, false)
        .unwrap();
    assert!(m[11].loss < m[0].loss, "{} -> {}", m[0].loss, m[11].loss);
    assert!(m[11].heldout_loss.unwrap().is_finite());
    // The checkpoint is a model directory: it generates.
    let (ck, tk2) =
        dsmath_model::load_model_and_tokenizer::<Flex>(&out.join("step-12"), &Default::default())
            .unwrap();
    let ids = tk2.encode("User: 2+2?\n\nAssistant:").unwrap();
    let s = dsmath_model::generate(
        &ck.model,
        &tk2,
        &[ids],
        &dsmath_model::SamplingParams::greedy(4),
        None,
    )
    .unwrap();
    assert_eq!(s.len(), 1);
}

/// Gradient checkpointing (burn-autodiff's `BalancedCheckpointing`, `train.gradient_checkpointing`)
/// recomputes activations in the backward pass: the same losses, gradient norms and weights as
/// keeping them.
#[test]
fn gradient_checkpointing_gives_the_same_training() {
    use burn_autodiff::checkpoint::strategy::BalancedCheckpointing;
    let tmp = tempfile::tempdir().unwrap();
    let (tok, stem) = setup(tmp.path());
    let dev = Default::default();
    let mut c = config(&tok, &stem);
    c.train.steps = 4;
    c.train.checkpoint_every = 4;
    let plain = Trainer::<B>::new(c.clone(), &tmp.path().join("plain"), &dev)
        .unwrap()
        .run(None, false)
        .unwrap();
    c.train.gradient_checkpointing = true;
    let ckpt =
        Trainer::<Autodiff<Flex, BalancedCheckpointing>>::new(c, &tmp.path().join("ckpt"), &dev)
            .unwrap()
            .run(None, false)
            .unwrap();
    for (x, y) in plain.iter().zip(&ckpt) {
        assert!(
            (x.loss - y.loss).abs() < 1e-6
                && (x.grad_norm - y.grad_norm).abs() < 1e-6 * x.grad_norm.max(1.0),
            "{x:?} vs {y:?}"
        );
    }
    let (wa, wb) = (
        weights(&tmp.path().join("plain/step-4")),
        weights(&tmp.path().join("ckpt/step-4")),
    );
    for ((n, a), (_, b)) in wa.iter().zip(&wb) {
        assert!(
            a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6),
            "{n} differs"
        );
    }
}

/// burn-collective keeps one collective per backend type and process: the tests that use it
/// take turns.
static COLLECTIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The same training as `one` (steps and its checkpoint `one_ckpt`): losses to 1e-6 and gradient
/// norms to 1e-5 (relative), every checkpointed weight to 1e-6.
fn assert_same_training(
    one: &[StepMetrics],
    one_ckpt: &Path,
    other: &[StepMetrics],
    other_ckpt: &Path,
) {
    for (x, y) in one.iter().zip(other) {
        assert!(
            (x.loss - y.loss).abs() < 1e-6 * x.loss.abs()
                && (x.grad_norm - y.grad_norm).abs() < 1e-5 * x.grad_norm,
            "{x:?} vs {y:?}"
        );
    }
    for ((n, a), (_, b)) in weights(one_ckpt).iter().zip(&weights(other_ckpt)) {
        let d = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(d < 1e-6, "{}: {n} differs by {d}", other_ckpt.display());
    }
}

/// Data parallel over burn-collective on the CPU: two peers (threads sharing the flex device),
/// each running half of every step's micro-batches, all-reduce their gradients and make the same
/// update as one device running the whole batch: same losses, gradient norms and weights. Only
/// rank 0 writes (one metrics line per step).
#[test]
fn two_data_parallel_peers_equal_one_device() {
    let _turn = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (tok, stem) = setup(tmp.path());
    let dev = Default::default();
    let mut c = config(&tok, &stem);
    c.train.steps = 3;
    c.train.checkpoint_every = 3;
    c.train.micro_batch = 1; // 4 micro-batches per step: 2 per peer
    let one = Trainer::<B>::new(c.clone(), &tmp.path().join("one"), &dev)
        .unwrap()
        .run(None, false)
        .unwrap();
    let two = dsmath_train::parallel::train_data_parallel::<B>(
        c.clone(),
        &tmp.path().join("two"),
        vec![Default::default(); 2],
        None,
        false,
    )
    .unwrap();
    assert_eq!(two.len(), 3);
    assert_same_training(
        &one,
        &tmp.path().join("one/step-3"),
        &two,
        &tmp.path().join("two/step-3"),
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("two/metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    // Micro-batches that do not split over the devices are refused.
    c.train.micro_batch = 4;
    let e = dsmath_train::parallel::train_data_parallel::<B>(
        c.clone(),
        &tmp.path().join("bad"),
        vec![Default::default(); 2],
        None,
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("do not split over 2 devices"), "{e}");
    // One peer failing alone (rank 0 cannot write step 1's checkpoint: a file is in the way):
    // the run returns rank 0's error.
    let fail = tmp.path().join("fail");
    std::fs::create_dir_all(&fail).unwrap();
    std::fs::write(fail.join("step-1.tmp"), "in the way").unwrap();
    c.train.micro_batch = 1;
    c.train.checkpoint_every = 1;
    let e = within(move || {
        dsmath_train::parallel::train_data_parallel::<B>(
            c,
            &fail,
            vec![Default::default(); 2],
            None,
            false,
        )
        .map(|m| m.len())
    })
    .unwrap_err();
    assert!(e.to_string().contains("step-1.tmp"), "{e}");
    // A peer that fails while the other already waits in an all-reduce releases it: the run
    // returns the failure (checked within a deadline; without the release it waits for ever),
    // twice, so the collective is usable again afterwards.
    use dsmath_train::error::TrainError;
    use dsmath_train::parallel::{all_reduce_grads, run_peers};
    let model = dsmath_model::checkpoint::init_model::<B>(
        &dsmath_model::LlamaConfig::preset("tiny", 64).unwrap(),
        0,
        &dev,
    )
    .unwrap();
    for _ in 0..2 {
        let m = model.clone();
        let e = within(move || {
            run_peers::<Flex, _>(vec![Default::default(); 2], |peer, device| {
                if peer.rank == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(300)); // rank 1 is waiting by now
                    return Err(TrainError::Backend("rank 0 out of memory".into()));
                }
                all_reduce_grads::<B, _>(
                    peer,
                    &m,
                    vec![],
                    0.0,
                    &device,
                    std::time::Duration::from_secs(600),
                )
                .map(|_| ())
            })
            .map(|v| v.len())
        })
        .unwrap_err();
        assert!(e.to_string().contains("rank 0 out of memory"), "{e}");
    }
}

/// Multi-node data parallel through burn-collective's global orchestrator, on one machine as on
/// a cluster: this process runs the orchestrator and node 0, and node 1 is a second process
/// (this test binary again, told by `DSMATH_TEST_NODE1` to play node 1), each node with one
/// device and its own run directory. Both nodes stop after two steps and resume from their
/// checkpoints; the two nodes make the same updates as one device on the whole batch (losses,
/// gradient norms, weights), and both write their checkpoints and metrics.
#[test]
fn two_nodes_equal_one_device() {
    if let Ok(dir) = std::env::var("DSMATH_TEST_NODE1") {
        let dir = PathBuf::from(dir);
        let c: TrainConfig =
            serde_json::from_str(&std::fs::read_to_string(dir.join("node1.json")).unwrap())
                .unwrap();
        two_phases(c, &dir.join("node1"));
        return;
    }
    let _turn = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (tok, stem) = setup(tmp.path());
    let mut c = config(&tok, &stem);
    c.train.steps = 3;
    c.train.checkpoint_every = 3;
    c.train.micro_batch = 1; // 4 micro-batches per step: 2 per node
    let one = Trainer::<B>::new(c.clone(), &tmp.path().join("one"), &Default::default())
        .unwrap()
        .run(None, false)
        .unwrap();
    c.train.checkpoint_every = 1;
    if let Err(e) = std::net::TcpListener::bind("127.0.0.1:0") {
        eprintln!("SKIPPED two_nodes_equal_one_device: no loopback network here ({e})");
        return;
    }
    let (c, c1) = two_nodes(c);
    // Bad multi-node settings are refused naming the key.
    let refused = |f: &dyn Fn(&mut TrainConfig), key: &str| {
        let mut bad = c1.clone();
        f(&mut bad);
        let e = bad.check().unwrap_err();
        assert!(e.contains(key), "{key}: {e}");
    };
    refused(&|b| b.train.node_rank = 2, "train.node_rank");
    refused(
        &|b| b.train.orchestrator = "127.0.0.1:3000".into(),
        "train.orchestrator",
    );
    refused(
        &|b| b.train.node_address = "ws://127.0.0.1".into(),
        "train.node_address",
    );
    refused(&|b| b.train.micro_batch = 4, "train.nodes x train.devices");
    refused(&|b| b.train.nodes = 1, "multi-node");
    refused(
        &|b| b.train.collective_timeout_s = 0,
        "train.collective_timeout_s",
    );
    std::fs::write(
        tmp.path().join("node1.json"),
        serde_json::to_string(&c1).unwrap(),
    )
    .unwrap();
    let mut node1 = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "two_nodes_equal_one_device", "--nocapture"])
        .env("DSMATH_TEST_NODE1", tmp.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout1 = node1.stdout.take().unwrap();
    let printed1 = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout1, &mut s).map(|_| s)
    });
    let out0 = tmp.path().join("node0");
    let two = match std::panic::catch_unwind(|| within(move || two_phases(c, &out0))) {
        Ok(m) => m,
        Err(e) => {
            let _ = node1.kill();
            std::panic::resume_unwind(e);
        }
    };
    assert!(node1.wait().unwrap().success(), "node 1 failed");
    // burn-collective's logging stays off stdout (INFO lines for every all-reduce, unpatched).
    let printed1 = printed1.join().unwrap().unwrap();
    assert!(
        printed1.contains("test two_nodes_equal_one_device ... ok"),
        "{printed1}"
    );
    assert!(
        !printed1.contains("INFO") && !printed1.contains("Connecting to"),
        "node 1 printed on stdout:\n{printed1}"
    );
    assert_eq!(two.len(), 3);
    for node in ["node0", "node1"] {
        assert_same_training(
            &one,
            &tmp.path().join("one/step-3"),
            &two,
            &tmp.path().join(node).join("step-3"),
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(node).join("metrics.jsonl"))
                .unwrap()
                .lines()
                .count(),
            3,
            "{node}"
        );
    }
}

/// A node that is lost mid-run does not leave the other node waiting for ever, and that node's
/// run stops with a clear error, its checkpoints intact: a node killed (`kill -9` after its
/// first checkpoint; its connections close) makes the other's all-reduce fail at once, and a
/// node that hangs (`kill -STOP`; its connections stay open) makes it give up after
/// `train.collective_timeout_s`. Both nodes are child processes (this test binary again, told by
/// `DSMATH_TEST_LOST_NODE` which node to play): a node that gave up keeps a stuck collective.
#[test]
fn a_lost_node_stops_the_other_with_an_error() {
    if let (Ok(dir), Ok(rank)) = (
        std::env::var("DSMATH_TEST_LOST_NODE"),
        std::env::var("DSMATH_TEST_NODE_RANK"),
    ) {
        let dir = PathBuf::from(dir);
        let c: TrainConfig = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("node{rank}.json"))).unwrap(),
        )
        .unwrap();
        let r = dsmath_train::parallel::train_data_parallel::<B>(
            c,
            &dir.join(format!("node{rank}")),
            vec![Default::default()],
            None,
            false,
        );
        let e = r
            .map(|m| m.len())
            .expect_err("the run went on without the lost node");
        std::fs::write(dir.join(format!("node{rank}-error.txt")), e.to_string()).unwrap();
        return;
    }
    if let Err(e) = std::net::TcpListener::bind("127.0.0.1:0") {
        eprintln!(
            "SKIPPED a_lost_node_stops_the_other_with_an_error: no loopback network here ({e})"
        );
        return;
    }
    let timed_out = "no answer within 10 s (train.collective_timeout_s)";
    // (A node killed after a step's data exchange, inside its closing barrier, may be noticed by
    // the timeout only.) Last, node 1 never starts ("" for no signal): node 0 gives up joining.
    let scenarios = [
        (
            "KILL",
            vec!["another node has most likely stopped", timed_out],
        ),
        ("STOP", vec![timed_out]),
        (
            "",
            vec!["registering with the other nodes got no answer within 10 s"],
        ),
    ];
    for (signal, expected) in scenarios {
        let tmp = tempfile::tempdir().unwrap();
        let (tok, stem) = setup(tmp.path());
        let mut c = config(&tok, &stem);
        c.train.steps = 200;
        c.train.checkpoint_every = 1;
        c.train.micro_batch = 1;
        c.train.collective_timeout_s = 10; // far above a step of this model, even on a loaded machine
        let (c, c1) = two_nodes(c);
        let node = |rank: usize, c: &TrainConfig| {
            std::fs::write(
                tmp.path().join(format!("node{rank}.json")),
                serde_json::to_string(c).unwrap(),
            )
            .unwrap();
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "a_lost_node_stops_the_other_with_an_error",
                    "--nocapture",
                ])
                .env("DSMATH_TEST_LOST_NODE", tmp.path())
                .env("DSMATH_TEST_NODE_RANK", rank.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let wait_for = |what: &str, done: &mut dyn FnMut() -> bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while !done() {
                if std::time::Instant::now() > deadline {
                    return Err(format!("{what}: not within two minutes"));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(())
        };
        let mut node0 = node(0, &c);
        let mut node1 = (!signal.is_empty()).then(|| node(1, &c1));
        let stopped = match &node1 {
            None => wait_for("node 0 stopping without node 1", &mut || {
                node0.try_wait().unwrap().is_some()
            }),
            Some(n1) => wait_for("node 1's first checkpoint", &mut || {
                tmp.path().join("node1/step-1").exists()
            })
            .and_then(|_| {
                let status = std::process::Command::new("kill")
                    .args([format!("-{signal}"), n1.id().to_string()])
                    .status()
                    .map_err(|e| e.to_string())?;
                status
                    .success()
                    .then_some(())
                    .ok_or(format!("kill -{signal} failed"))
            })
            .and_then(|_| {
                wait_for(
                    &format!("node 0 stopping after kill -{signal} of node 1"),
                    &mut || node0.try_wait().unwrap().is_some(),
                )
            }),
        };
        if let Some(n1) = node1.as_mut() {
            let _ = (n1.kill(), n1.wait());
        }
        if let Err(e) = stopped {
            let _ = node0.kill();
            panic!("{e}");
        }
        let case = if signal.is_empty() {
            "no node 1".to_string()
        } else {
            format!("kill -{signal}")
        };
        assert!(
            node0.wait().unwrap().success(),
            "{case}: node 0's run did not fail as it should"
        );
        let e = std::fs::read_to_string(tmp.path().join("node0-error.txt")).unwrap();
        assert!(expected.iter().any(|x| e.contains(x)), "{case}: {e}");
        assert!(
            node1.is_none() || tmp.path().join("node0/step-1/model.safetensors").exists(),
            "{case}: node 0 lost its checkpoint"
        );
    }
}

/// Node 0's and node 1's configs for a two-node run of `c` on 127.0.0.1, with an orchestrator
/// started on a thread of this process.
fn two_nodes(mut c: TrainConfig) -> (TrainConfig, TrainConfig) {
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (orchestrator, port0, port1) = (port(), port(), port());
    std::thread::spawn(move || dsmath_train::parallel::run_orchestrator(orchestrator));
    c.train.nodes = 2;
    c.train.orchestrator = format!("ws://127.0.0.1:{orchestrator}");
    let mut c1 = c.clone();
    c.train.node_address = format!("ws://127.0.0.1:{port0}");
    c1.train.node_rank = 1;
    c1.train.node_address = format!("ws://127.0.0.1:{port1}");
    (c, c1)
}

/// A node's side of `two_nodes_equal_one_device`: two steps, stop (as if killed after the
/// step-2 checkpoint), wait until the other node has stopped too (a restart of the whole job),
/// then resume from the run directory to the end.
fn two_phases(c: TrainConfig, out: &Path) -> Vec<StepMetrics> {
    let run = |stop| {
        dsmath_train::parallel::train_data_parallel::<B>(
            c.clone(),
            out,
            vec![Default::default()],
            stop,
            false,
        )
        .unwrap()
    };
    let mut metrics = run(Some(2));
    assert_eq!(metrics.len(), 2);
    let dir = out.parent().unwrap();
    std::fs::write(dir.join(format!("stopped-{}", c.train.node_rank)), "").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(0..c.train.nodes).all(|n| dir.join(format!("stopped-{n}")).exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the other node did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    metrics.extend(run(None));
    metrics
}

/// `f()` on its own thread; panics if it has not returned within two minutes (a peer left blocked).
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("a failed peer left the other blocked in the all-reduce")
}

/// Mixed precision (`train.dtype = "bf16"`): forward and backward on a bf16 view of the f32
/// master weights. The losses follow f32 training to bf16 accuracy, the model learns, the
/// checkpoint holds f32 weights, and an unknown dtype is refused.
#[test]
fn bf16_mixed_precision_follows_f32_training() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, stem) = setup(tmp.path());
    let dev = Default::default();
    let mut c = config(&tok, &stem);
    c.train.steps = 10;
    c.train.checkpoint_every = 10;
    let f32_run = Trainer::<B>::new(c.clone(), &tmp.path().join("f32"), &dev)
        .unwrap()
        .run(None, false)
        .unwrap();
    c.train.dtype = "bf16".into();
    let bf16_run = Trainer::<B>::new(c.clone(), &tmp.path().join("bf16"), &dev)
        .unwrap()
        .run(None, false)
        .unwrap();
    let pairs: Vec<(f64, f64)> = f32_run
        .iter()
        .zip(&bf16_run)
        .map(|(a, b)| (a.loss, b.loss))
        .collect();
    // The first step sees the same weights: bf16 rounding only. Later steps drift apart by the
    // accumulated rounding of the updates, within a few percent.
    assert!(
        (pairs[0].0 - pairs[0].1).abs() < 0.01 * pairs[0].0,
        "{pairs:?}"
    );
    assert!(
        pairs.iter().all(|(a, b)| (a - b).abs() < 0.05 * a),
        "{pairs:?}"
    );
    assert!(
        bf16_run
            .iter()
            .any(|m| m.loss != f32_run[(m.step - 1) as usize].loss),
        "bf16 computed exactly like f32: no cast happened"
    );
    assert!(
        bf16_run[9].loss < bf16_run[0].loss - 0.3,
        "{} -> {}",
        bf16_run[0].loss,
        bf16_run[9].loss
    );
    let st = std::fs::read(tmp.path().join("bf16/step-10/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st).unwrap();
    assert!(
        st.tensors()
            .iter()
            .all(|(_, t)| t.dtype() == safetensors::Dtype::F32)
    );
    c.train.dtype = "fp8".into();
    assert!(c.check().unwrap_err().contains("train.dtype"));
}

#[test]
fn sft_messages_in_a_chat_template_learn_the_assistant_turns_only() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures");
    let dir = tmp.path().join("model");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixtures.join("llama_mha").join(f), dir.join(f)).unwrap();
    }
    let templates = fixtures.join("chat/templates");
    std::fs::copy(
        templates.join("smollm2-instruct.jinja"),
        dir.join("chat_template.jinja"),
    )
    .unwrap();
    let cfg = dsmath_model::LlamaConfig::from_file(dir.join("config.json")).unwrap();
    let tk = dsmath_model::Tokenizer::from_dir(&dir, &cfg).unwrap();
    let chat = dsmath_model::chat::ChatTemplate::from_dir(&dir)
        .unwrap()
        .unwrap();
    let sft = tmp.path().join("sft.jsonl");
    let msgs = serde_json::json!([
        {"role": "user", "content": "What is 3 * 4?"},
        {"role": "assistant", "content": "3 * 4 = 12."},
        {"role": "user", "content": "And 12 / 4?"},
        {"role": "assistant", "content": "12 / 4 = 3."},
    ]);
    std::fs::write(&sft, serde_json::json!({"messages": msgs}).to_string()).unwrap();
    let (ex, _) = dsmath_train::batches::read_sft(&sft, &tk, Some(&chat), 512).unwrap();
    let messages: Vec<dsmath_model::chat::Message> = serde_json::from_value(msgs).unwrap();
    let full = chat.render(&messages, false, &[]).unwrap();
    // The ids are the whole rendered conversation; the learned ones are the assistant turns with
    // their end-of-turn text, and nothing else.
    assert_eq!(tk.inner.decode(&ex[0].ids, false).unwrap(), full);
    let learned: Vec<u32> = ex[0]
        .ids
        .iter()
        .zip(&ex[0].weight)
        .filter(|(_, w)| **w == 1.0)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(
        tk.inner.decode(&learned, false).unwrap(),
        "3 * 4 = 12.<|im_end|>\n12 / 4 = 3.<|im_end|>\n"
    );
    assert!(ex[0].weight.iter().all(|&w| w == 0.0 || w == 1.0));
    // Qwen3's template drops the reasoning of earlier assistant turns: no prefix, no mask.
    std::fs::copy(
        templates.join("qwen3.jinja"),
        dir.join("chat_template.jinja"),
    )
    .unwrap();
    let qwen3 = dsmath_model::chat::ChatTemplate::from_dir(&dir)
        .unwrap()
        .unwrap();
    let think = serde_json::json!([
        {"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "<think>\nadd\n</think>\n\n2"},
        {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"},
    ]);
    std::fs::write(&sft, serde_json::json!({"messages": think}).to_string()).unwrap();
    let err = dsmath_train::batches::read_sft(&sft, &tk, Some(&qwen3), 512)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot be masked") && err.contains("line 1"),
        "{err}"
    );
}
