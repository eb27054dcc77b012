//! The `cargo xtask` commands as a user runs them, checked against the HF transformers fixtures.

use std::path::{Path, PathBuf};
use std::process::Command;

use dsmath_model::{LlamaConfig, Tokenizer};
use safetensors::SafeTensors;
use serde_json::Value;

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures").join(case)
}

fn xtask(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn hf_logits(case: &str) -> (Vec<f32>, usize, usize) {
    let bytes = std::fs::read(fixture(case).join("expected.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("logits").unwrap();
    let v: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    (v, t.shape()[1], t.shape()[2])
}

fn log_softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = row.iter().map(|&x| ((x - max) as f64).exp()).sum::<f64>().ln() as f32 + max;
    row.iter().map(|&x| x - lse).collect()
}

#[test]
fn score_reproduces_hf_logprobs_and_logits_and_rejects_bad_lines() {
    let case = "llama_mha";
    let exp: Value = serde_json::from_str(&std::fs::read_to_string(fixture(case).join("expected.json")).unwrap()).unwrap();
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
    let (ok, _, err) = xtask(&["score", "--model", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--full-logits"]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3);
    let (hf, s, v) = hf_logits(case);
    for (b, row) in rows[..2].iter().enumerate() {
        let lps = row["logprobs"].as_array().unwrap();
        assert!(lps[0].is_null());
        for j in 1..s {
            let want = log_softmax(&hf[(b * s + j - 1) * v..(b * s + j) * v])[ids[b][j].as_u64().unwrap() as usize];
            let got = lps[j].as_f64().unwrap() as f32;
            assert!((got - want).abs() < 1e-4, "row {b} pos {j}: {got} vs HF {want}");
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
    let rejects: Vec<Value> = rejects.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let lines: Vec<u64> = rejects.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![2, 4, 6]);
    assert!(rejects[0]["reason"].as_str().unwrap().contains("invalid JSON"));
    assert!(rejects[1]["reason"].as_str().unwrap().contains("99999"));
    assert!(err.contains("3 line(s) rejected"), "{err}");
}

#[test]
fn generate_prints_hf_greedy_continuation() {
    let case = "qwen2_gqa_f16";
    let dir = fixture(case);
    let exp: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let g = &exp["greedy"][1];
    let hf_ids: Vec<u32> = g["generated_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    let cfg = LlamaConfig::from_file(dir.join("config.json")).unwrap();
    let tok = Tokenizer::from_dir(&dir, &cfg).unwrap();
    let eos = hf_ids.iter().position(|&t| tok.is_eos(t)).unwrap_or(hf_ids.len());
    let want = tok.decode(&hf_ids[..eos]).unwrap();
    let n = hf_ids.len().to_string();
    let (ok, stdout, err) = xtask(&["generate", "--model", dir.to_str().unwrap(), "--prompt", g["prompt"].as_str().unwrap(), "--max-new-tokens", &n]);
    assert!(ok, "{err}");
    assert_eq!(stdout.trim_end_matches('\n'), format!("{}{}", g["prompt"].as_str().unwrap(), want));
    assert!(err.contains("tok/s"), "{err}");
}

#[test]
fn info_reports_parameters_and_memory() {
    let dir = fixture("llama_gqa_tied_bf16_sharded");
    let exp: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let (ok, stdout, err) = xtask(&["info", "--model", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    let n = exp["num_parameters"].as_u64().unwrap();
    assert!(stdout.contains(&format!("parameters        {n} ")), "{stdout}");
    assert!(stdout.contains("tied embeddings true") && stdout.contains("linear factor 2"), "{stdout}");
    assert!(stdout.contains("20 tensors in safetensors"), "{stdout}");
}

#[test]
fn errors_are_clear_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = xtask(&["generate", "--model", dir.path().to_str().unwrap(), "--prompt", "x"]);
    assert!(!ok);
    assert!(err.contains("config.json"), "{err}");
    if !cfg!(feature = "cuda") {
        let (ok, _, err) = xtask(&["--backend", "cuda", "info", "--model", "."]);
        assert!(!ok);
        assert!(err.contains("not compiled into this binary") && err.contains("--features cuda"), "{err}");
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
    let (ok, stdout, err) = xtask(&["eval", "--grade", input.to_str().unwrap(), "--bench", "math", "--out", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(stdout.contains("3/4 correct, accuracy 75.00%"), "{stdout}");
    assert!(err.contains("completions.jsonl:4") && err.contains("`gold`"), "{err}");
    let rows: Vec<Value> = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let correct: Vec<bool> = rows.iter().map(|r| r["correct"].as_bool().unwrap()).collect();
    assert_eq!(correct, vec![true, false, true, true]);
    assert_eq!(rows[0]["id"], 7, "other fields pass through");
    assert_eq!(rows[0]["extracted"], "\\frac{1}{2}");
}
