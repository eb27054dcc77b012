//! The grader on the real benchmark files (acceptance criteria of the Evaluation issue).

use dsmath_eval::bench::Benchmark;
use dsmath_eval::extract::{boxed_answers, extract_answer};
use dsmath_eval::is_equiv;
use dsmath_eval::normalize::normalize;

#[test]
fn math500_boxed_solution_answers_equal_the_given_answers() {
    let probs = Benchmark::Math500.load_default().unwrap();
    let raw: Vec<serde_json::Value> = std::fs::read_to_string(Benchmark::Math500.default_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut misses = vec![];
    for (p, r) in probs.iter().zip(&raw) {
        let solution = r["solution"].as_str().unwrap();
        let boxed = boxed_answers(solution).pop().unwrap_or_default();
        let v = is_equiv(&boxed, &p.gold);
        if !v.correct {
            misses.push(format!(
                "{}: boxed {boxed:?} vs answer {:?} ({})",
                p.id, p.gold, v.reason
            ));
        }
    }
    let rate = 1.0 - misses.len() as f64 / probs.len() as f64;
    eprintln!(
        "MATH500 boxed==answer: {:.2}% ({} exceptions)\n{}",
        rate * 100.0,
        misses.len(),
        misses.join("\n")
    );
    assert!(
        rate >= 0.995,
        "{:.2}%:\n{}",
        rate * 100.0,
        misses.join("\n")
    );
}

#[test]
fn every_math_gold_equals_itself_after_normalisation() {
    let probs = Benchmark::Math.load_default().unwrap();
    for p in &probs {
        let n = normalize(&p.gold);
        assert!(
            is_equiv(&n, &p.gold).correct,
            "{}: {:?} -> {:?}",
            p.id,
            p.gold,
            n
        );
        assert!(is_equiv(&p.gold, &p.gold).correct, "{}: {:?}", p.id, p.gold);
        // A reference solution graded as a completion gets its own answer right.
        let one_line = p.gold.replace('\n', " ");
        assert!(
            is_equiv(
                &extract_answer(&format!("So $\\boxed{{{one_line}}}$.")).0,
                &p.gold
            )
            .correct,
            "{}",
            p.id
        );
    }
}

#[test]
fn gsm8k_worked_solutions_grade_correct_by_last_number() {
    for b in [Benchmark::Gsm8k] {
        let text = std::fs::read_to_string(b.default_path()).unwrap();
        let probs = b.load_default().unwrap();
        for (line, p) in text.lines().zip(&probs) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let solution = v["answer"].as_str().unwrap();
            let (pred, _) = extract_answer(solution);
            assert!(
                is_equiv(&pred, &p.gold).correct,
                "{}: {pred:?} vs {:?}",
                p.id,
                p.gold
            );
        }
    }
}

#[test]
fn wrong_answers_are_not_accepted() {
    // Shift every MATH500 answer that is a plain integer by one: all must be judged wrong.
    let probs = Benchmark::Math500.load_default().unwrap();
    let mut n = 0;
    for p in &probs {
        if let Ok(k) = p.gold.parse::<i64>() {
            assert!(
                !is_equiv(&(k + 1).to_string(), &p.gold).correct,
                "{}",
                p.gold
            );
            n += 1;
        }
    }
    assert!(n > 200);
}

/// Extraction and equivalence take any text without a panic: every line of every shipped
/// benchmark file (questions, solutions, options, in English and Chinese) as a completion and
/// as an answer.
#[test]
fn every_benchmark_line_is_graded_without_a_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut n = 0;
    for bench in std::fs::read_dir(&dir).unwrap() {
        let path = bench.unwrap().path().join("test.jsonl");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines().take(400) {
            let (ans, _) = extract_answer(line);
            let _ = is_equiv(&ans, line);
            let _ = is_equiv(line, &ans);
            n += 1;
        }
    }
    assert!(n > 3000, "{n} lines");
}
