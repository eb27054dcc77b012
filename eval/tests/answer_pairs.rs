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
