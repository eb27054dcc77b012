//! GSM8K-train SFT records on real data: every CoT record ends in the gold answer, and the
//! program-of-thought / tool-integrated records' ```output blocks are exactly what Python prints
//! when their code runs (in the eval sandbox).

use std::path::Path;

use dsmath_eval::sandbox::{Outcome, Sandbox, SandboxConfig};
use dsmath_train::sft_data::{Template, gsm8k_record};

fn gsm8k() -> Vec<(String, String)> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval/data/gsm8k/train.jsonl");
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["question"].as_str().unwrap().to_string(),
                v["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// (code, the output block after it) pairs of a response.
fn blocks(resp: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut rest = resp;
    while let Some(i) = rest.find("```python\n") {
        let body = &rest[i + 10..];
        let end = body.find("```\n```output\n").unwrap();
        let after = &body[end + 14..];
        let oend = after.find("\n```").unwrap();
        out.push((body[..end].to_string(), after[..oend].to_string()));
        rest = &after[oend..];
    }
    out
}

#[test]
fn records_are_faithful_on_gsm8k_train() {
    let data = gsm8k();
    let mut cot = 0;
    for (q, a) in &data {
        let r = gsm8k_record(q, a, Template::Cot).unwrap();
        assert!(
            dsmath_eval::is_equiv(&dsmath_eval::extract_answer(&r.response).0, &r.gold).correct
        );
        cot += 1;
    }
    assert_eq!(cot, 7473);
    let pot = data
        .iter()
        .filter(|(q, a)| gsm8k_record(q, a, Template::Pot).is_some())
        .count();
    let tool = data
        .iter()
        .filter(|(q, a)| gsm8k_record(q, a, Template::Tool).is_some())
        .count();
    assert!(pot > 6500 && tool > 7000, "pot {pot}, tool {tool}");

    let sb = Sandbox::new(SandboxConfig::default()).unwrap();
    let mut runs = 0;
    for (q, a) in data.iter().step_by(150).take(25) {
        for t in [Template::Pot, Template::Tool] {
            let Some(r) = gsm8k_record(q, a, t) else {
                continue;
            };
            for (code, shown) in blocks(&r.response) {
                let run = sb.run(&code);
                assert_eq!(run.outcome, Outcome::Ok, "{code}");
                assert_eq!(
                    run.stdout.trim_end(),
                    shown,
                    "printed output differs for\n{code}"
                );
                runs += 1;
            }
            assert!(
                dsmath_eval::is_equiv(&dsmath_eval::extract_answer(&r.response).0, &r.gold).correct
            );
        }
    }
    assert!(runs > 50, "{runs}");
}
