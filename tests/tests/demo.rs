//! The demo (`cargo xtask demo --quick`, issue "the main job"): every stage runs on the shipped
//! data and leaves its artefacts, `report.md` / `summary.json` carry exactly the numbers the
//! stages logged, a rerun resumes (finished stages are skipped, an unfinished one is redone
//! with the same result), and a run directory of another plan is refused.

use std::path::{Path, PathBuf};

use burn_flex::Flex;
use dsmath_train::demo::{DemoOptions, DemoPlan, run};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

fn metrics(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn quick_demo_runs_every_stage_reports_logged_numbers_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let opts = DemoOptions {
        out: out.clone(),
        root: root(),
        plan: DemoPlan::quick(),
        progress: false,
    };
    let dev = Default::default();
    let s = run::<Flex>(&opts, &dev).unwrap();

    // Every stage's artefacts.
    for f in [
        "config.toml",
        "summary.json",
        "report.md",
        "accuracy.svg",
        "data/sft.jsonl",
        "data/rl.jsonl",
        "data/heldout.jsonl",
        "data/worked.jsonl",
        "corpus/run/DONE",
        "corpus/run/report.md",
        "corpus/run/iterate/iter-1/classifier.bin",
        "corpus/run/decontam/removals.jsonl",
        "corpus/run/tokenize/tokenizer.json",
        "corpus/run/tokenize/math.bin",
        "corpus/run/tokenize/worked.bin",
        "pretrain/loss.svg",
        "pretrain/metrics.jsonl",
        "sft/loss.svg",
        "sft/metrics.jsonl",
        "grpo/reward.svg",
        "grpo/kl.svg",
        "grpo/metrics.jsonl",
        "eval-base/report.json",
        "eval-sft/samples.jsonl",
        "eval-grpo/report.md",
    ] {
        assert!(out.join(f).exists(), "missing {f}");
    }
    for d in ["pretrain", "sft", "grpo"] {
        let latest = std::fs::read_to_string(out.join(d).join("latest")).unwrap();
        assert!(
            out.join(d)
                .join(latest.trim())
                .join("model.safetensors")
                .exists(),
            "{d} has no checkpoint"
        );
    }
    let p = DemoPlan::quick();
    assert_eq!(
        s.data["heldout_problems"].as_u64(),
        Some(p.heldout_problems as u64)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("data/heldout.jsonl"))
            .unwrap()
            .lines()
            .count(),
        p.heldout_problems
    );
    assert!(
        s.corpus["iterate"]["documents"].as_u64().unwrap() > 100,
        "the classifier collected math pages: {}",
        s.corpus["iterate"]
    );
    assert_eq!(
        s.corpus["tokenize"]["vocab_size"].as_u64(),
        Some(p.vocab_size as u64)
    );

    // The summary's numbers are the logged ones.
    let pm = metrics(&out.join("pretrain/metrics.jsonl"));
    assert_eq!(pm.len() as u64, p.pretrain_steps);
    assert_eq!(s.pretrain["loss_last"], pm.last().unwrap()["loss"]);
    assert_eq!(
        s.sft["loss_last"],
        metrics(&out.join("sft/metrics.jsonl")).last().unwrap()["loss"]
    );
    let gm = metrics(&out.join("grpo/metrics.jsonl"));
    assert_eq!(gm.len() as u64, p.grpo_steps);
    assert_eq!(s.grpo["kl_last"], gm.last().unwrap()["kl"]);
    assert_eq!(
        s.evals.iter().map(|e| e.model.as_str()).collect::<Vec<_>>(),
        ["base", "SFT", "GRPO"]
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for (e, dir) in s.evals.iter().zip(["eval-base", "eval-sft", "eval-grpo"]) {
        let r = json(&out.join(dir).join("report.json"));
        let acc: Vec<f64> = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["accuracy"].as_f64().unwrap())
            .collect();
        assert_eq!(
            acc,
            [e.heldout_greedy, e.heldout_maj, e.gsm8k_greedy, e.gsm8k_maj],
            "{dir}"
        );
        let row = format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            e.model, e.heldout_greedy, e.heldout_maj, e.gsm8k_greedy, e.gsm8k_maj
        );
        assert!(report.contains(&row), "report.md lacks `{row}`");
        // Each score is a share of graded samples: recount the greedy held-out one.
        let samples: Vec<Value> = metrics(&out.join(dir).join("samples.jsonl"));
        let held: Vec<&Value> = samples
            .iter()
            .filter(|x| x["bench"] == "held-out")
            .take(p.heldout_problems)
            .collect();
        let right = held.iter().filter(|x| x["correct"] == true).count();
        assert!(
            (100.0 * right as f64 / p.heldout_problems as f64 - e.heldout_greedy).abs() < 1e-9,
            "{dir}"
        );
    }
    assert!(report.contains(&format!(
        "| loss_last | {:.4} |",
        pm.last().unwrap()["loss"].as_f64().unwrap()
    )));

    // Resume: finished stages are skipped; a stage without its marker is redone, same numbers.
    std::fs::remove_file(out.join("eval-grpo/_done")).unwrap();
    let t = std::time::Instant::now();
    let again = run::<Flex>(&opts, &dev).unwrap();
    let acc = |v: &[dsmath_train::demo::EvalScores]| {
        v.iter()
            .map(|e| (e.heldout_greedy, e.heldout_maj, e.gsm8k_greedy, e.gsm8k_maj))
            .collect::<Vec<_>>()
    };
    assert_eq!(acc(&again.evals), acc(&s.evals));
    assert_eq!(again.pretrain, s.pretrain);
    assert!(
        t.elapsed().as_secs_f64() < s.seconds["total"].as_f64().unwrap(),
        "the rerun redid finished stages"
    );

    // Another plan in the same directory is refused with a message naming it.
    let mut other = DemoPlan::quick();
    other.grpo_steps += 1;
    let err = run::<Flex>(
        &DemoOptions {
            plan: other,
            ..opts
        },
        &dev,
    )
    .expect_err("another plan must be refused");
    assert!(err.to_string().contains("config.toml"), "{err}");
}
