//! The committed answer-pair table (scripts/make_answer_pairs.py): dsmath's grader must give the
//! expected verdict on every pair; agreement with math-verify (recorded per pair) is reported.

use dsmath_eval::is_equiv;
use serde_json::Value;

#[test]
fn grader_gives_the_expected_verdict_on_every_pair() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/answer_pairs.jsonl");
    let rows: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 300);
    let mut wrong = vec![];
    let mut agree_mv = 0;
    let mut rules = std::collections::BTreeSet::new();
    for r in &rows {
        let (pred, gold) = (r["pred"].as_str().unwrap(), r["gold"].as_str().unwrap());
        let expected = r["expected"].as_bool().unwrap();
        let v = is_equiv(pred, gold);
        rules.insert(r["rule"].as_str().unwrap().to_string());
        if v.correct != expected {
            wrong.push(format!(
                "[{}] {pred:?} vs {gold:?}: got {} ({}), expected {expected}",
                r["rule"], v.correct, v.reason
            ));
        }
        agree_mv += (v.correct == r["math_verify"].as_bool().unwrap()) as usize;
    }
    eprintln!(
        "{} pairs, {} rules; dsmath agrees with math-verify on {agree_mv}",
        rows.len(),
        rules.len()
    );
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The table of answers as models write them (scripts/make_answer_forms.py): hand-written pairs
/// and completions for each class the grader reads, MATH reference solutions with the box
/// removed, and completions of SmolLM2-135M-Instruct; every disagreement with math-verify is
/// explained in the row's `note`.
#[test]
fn grader_reads_answers_the_way_models_write_them() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/answer_forms.jsonl");
    let rows: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 200);
    let mut wrong = vec![];
    let mut agree_mv = 0;
    let mut sources = std::collections::BTreeMap::<&str, usize>::new();
    for r in &rows {
        let gold = r["gold"].as_str().unwrap();
        let expected = r["expected"].as_bool().unwrap();
        let (what, correct, reason) = if r["kind"] == "pair" {
            let pred = r["pred"].as_str().unwrap();
            let v = is_equiv(pred, gold);
            (pred.to_string(), v.correct, v.reason.to_string())
        } else {
            let c = r["completion"].as_str().unwrap();
            let g = dsmath_eval::grade(dsmath_eval::bench::Benchmark::Math, c, gold, 0);
            (
                c.chars()
                    .rev()
                    .take(100)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect(),
                g.correct,
                format!("{:?} {:?}, {}", g.source, g.extracted, g.reason),
            )
        };
        let source = r["source"].as_str().unwrap();
        *sources
            .entry(source.split(':').next().unwrap())
            .or_default() += 1;
        if correct != expected {
            wrong.push(format!(
                "[{}] {what:?} vs {gold:?}: got {correct} ({reason}), expected {expected}",
                r["rule"]
            ));
        }
        let mv = r["math_verify"].as_bool().unwrap();
        agree_mv += (correct == mv) as usize;
        assert!(
            mv == expected || !r["note"].as_str().unwrap().is_empty(),
            "math-verify disagrees without a note: {r}"
        );
    }
    eprintln!(
        "{} rows ({sources:?}); dsmath agrees with math-verify on {agree_mv}",
        rows.len()
    );
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
