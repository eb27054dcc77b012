//! The evaluation runner end to end with scripted engines on real benchmark data: greedy,
//! maj@k over equivalence classes, pass@k, few-shot stop strings, program-of-thought and
//! tool-integrated rounds through the real sandbox, and the written report.

use std::collections::HashMap;

use dsmath_eval::bench::Benchmark;
use dsmath_eval::prompts::{PromptKind, choice_exemplars, gsm8k_exemplars, math_exemplars};
use dsmath_eval::run::{Engine, Mode, evaluate};
use dsmath_eval::sandbox::{Outcome, Sandbox, SandboxConfig};
use dsmath_eval::{extract_answer, grade};

/// Answers from a table keyed by the prompt's question, and records how it was called.
struct Scripted<F: FnMut(&str, usize) -> String> {
    reply: F,
    calls: Vec<(usize, usize, bool, Vec<String>)>,
}

impl<F: FnMut(&str, usize) -> String> Engine for Scripted<F> {
    fn complete(
        &mut self,
        prompts: &[String],
        n: usize,
        sampled: bool,
        stop: &[String],
    ) -> Result<Vec<Vec<String>>, String> {
        self.calls.push((prompts.len(), n, sampled, stop.to_vec()));
        Ok(prompts
            .iter()
            .map(|p| (0..n).map(|i| (self.reply)(p, i)).collect())
            .collect())
    }
}

#[test]
fn greedy_gsm8k_with_real_worked_solutions() {
    let problems = Benchmark::Gsm8k.load_default().unwrap();
    let problems = &problems[..20];
    let raw: Vec<serde_json::Value> = std::fs::read_to_string(Benchmark::Gsm8k.default_path())
        .unwrap()
        .lines()
        .take(20)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The real solution for even problems, an off-by-one answer for odd ones.
    let answers: HashMap<String, (String, usize)> = raw
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let a = r["answer"].as_str().unwrap();
            let (work, gold) = a.split_once("####").unwrap();
            let gold = gold.trim().replace(',', "");
            let text = if i % 2 == 0 {
                format!(" {work}The answer is {gold}.")
            } else {
                format!(" {work}The answer is {}.", gold.parse::<i64>().unwrap() + 1)
            };
            (r["question"].as_str().unwrap().to_string(), (text, i))
        })
        .collect();
    let mut engine = Scripted {
        reply: |p: &str, _| {
            let q = p
                .rsplit_once("Question: ")
                .unwrap()
                .1
                .trim_end_matches("\nAnswer:");
            answers[q].0.clone()
        },
        calls: vec![],
    };
    let mut seen = vec![];
    let run = evaluate(
        &mut engine,
        Benchmark::Gsm8k,
        problems,
        PromptKind::FewShot,
        Mode::Greedy,
        None,
        8,
        &mut |d| seen.push(d),
    )
    .unwrap();
    assert_eq!(run.accuracy(), 50.0);
    assert_eq!(seen, vec![8, 16, 20]);
    assert_eq!(
        engine.calls[0],
        (8, 1, false, vec!["\n\nQuestion:".to_string()])
    );
    assert!(run.samples[0].prompt.matches("Question: ").count() == 9);
    assert!(
        run.samples
            .iter()
            .enumerate()
            .all(|(i, s)| s.correct == (i % 2 == 0))
    );
}

#[test]
fn maj_at_k_votes_over_equivalence_classes() {
    let problems = Benchmark::Math500.load_default().unwrap();
    let p = problems
        .iter()
        .find(|p| p.gold == "\\frac{14}{3}")
        .expect("a MATH500 problem with gold 14/3")
        .clone();
    // Two spellings of the right answer form one class of 2 against three single wrong answers;
    // a raw-string vote would see five different strings and keep the first.
    let replies = [
        "\\boxed{4.6667}",
        "\\boxed{\\frac{14}{3}}",
        "\\boxed{\\dfrac{28}{6}}",
        "\\boxed{5}",
        "\\boxed{4}",
    ];
    let mut engine = Scripted {
        reply: |_: &str, i| replies[i].to_string(),
        calls: vec![],
    };
    let run = evaluate(
        &mut engine,
        Benchmark::Math500,
        std::slice::from_ref(&p),
        PromptKind::Cot,
        Mode::Maj(5),
        None,
        4,
        &mut |_| {},
    )
    .unwrap();
    assert!(run.problems[0].correct, "{:?}", run.problems[0]);
    assert_eq!(run.problems[0].n_correct, 2); // a rounded decimal is not the exact fraction
    assert_eq!(engine.calls[0], (1, 5, true, vec![]));
    let run = evaluate(
        &mut engine,
        Benchmark::Math500,
        &[p],
        PromptKind::Cot,
        Mode::Pass(5),
        None,
        4,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(run.accuracy(), 100.0);
    assert!((run.pass_at(1) - 100.0 * run.problems[0].n_correct as f64 / 5.0).abs() < 1e-9);
}

fn sandbox() -> Sandbox {
    Sandbox::new(SandboxConfig {
        timeout: std::time::Duration::from_secs(5),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn program_of_thought_runs_the_program_and_grades_its_output() {
    let problems = Benchmark::Gsm8k.load_default().unwrap();
    let p = problems[0].clone(); // Janet's ducks: 16 - 3 - 4 = 9 eggs at $2 -> 18
    assert_eq!(p.gold, "18");
    let mut engine = Scripted {
        reply: |_: &str, _| "```python\neggs = 16 - 3 - 4\nprint(eggs * 2)\n```".to_string(),
        calls: vec![],
    };
    let sb = sandbox();
    let run = evaluate(
        &mut engine,
        Benchmark::Gsm8k,
        &[p],
        PromptKind::Pot,
        Mode::Greedy,
        Some(&sb),
        1,
        &mut |_| {},
    )
    .unwrap();
    let s = &run.samples[0];
    assert!(
        s.completion.ends_with("```output\n18\n```\n"),
        "{}",
        s.completion
    );
    assert_eq!((s.extracted.as_str(), s.correct), ("18", true));
    assert_eq!(s.executions[0].outcome, Outcome::Ok);
}

#[test]
fn tool_integrated_feeds_outputs_back_for_two_rounds() {
    let problems = Benchmark::Gsm8k.load_default().unwrap();
    let p = problems[0].clone();
    // Round 1 has a bug, round 2 fixes it, then the model answers; a third block is never run.
    let mut engine = Scripted {
        reply: |prompt: &str, _| {
            let outputs = prompt.matches("```output").count();
            match outputs {
                0 => "Let me compute.\n```python\nprint(egg * 2)\n```\n".into(),
                1 => "Typo.\n```python\neggs = 16 - 3 - 4\nprint(eggs * 2)\n```\n".into(),
                2 => {
                    "So she makes \\boxed{18} dollars.\n```python\nprint('never run')\n```\n".into()
                }
                _ => "too many rounds".into(),
            }
        },
        calls: vec![],
    };
    let sb = sandbox();
    let run = evaluate(
        &mut engine,
        Benchmark::Gsm8k,
        &[p],
        PromptKind::Tool,
        Mode::Greedy,
        Some(&sb),
        1,
        &mut |_| {},
    )
    .unwrap();
    let s = &run.samples[0];
    assert_eq!(s.executions.len(), 2);
    assert_eq!(
        s.executions[0].output,
        "NameError: name 'egg' is not defined"
    );
    assert_eq!(s.executions[1].output, "18");
    assert!(s.correct, "{}", s.completion);
    assert!(!s.completion.contains("never run\n```output"));
    assert_eq!(engine.calls.len(), 3);
    assert!(
        engine
            .calls
            .iter()
            .all(|c| c.3 == vec!["```output".to_string()])
    );
}

#[test]
fn report_has_breakdowns_and_a_chart() {
    let problems = Benchmark::Math500.load_default().unwrap();
    let problems = &problems[..30];
    let golds: HashMap<String, String> = problems
        .iter()
        .map(|p| (p.question.clone(), p.gold.clone()))
        .collect();
    // Right on every third problem.
    let mut k = 0;
    let mut engine = Scripted {
        reply: |prompt: &str, _| {
            k += 1;
            let q = prompt
                .strip_prefix("User: ")
                .unwrap()
                .split("\nPlease reason step by step")
                .next()
                .unwrap();
            if k % 3 == 0 {
                format!("\\boxed{{{}}}", golds[q])
            } else {
                "no idea".into()
            }
        },
        calls: vec![],
    };
    let run = evaluate(
        &mut engine,
        Benchmark::Math500,
        problems,
        PromptKind::Cot,
        Mode::Greedy,
        None,
        30,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(run.accuracy(), 100.0 / 3.0);
    let dir = tempfile::tempdir().unwrap();
    dsmath_eval::report::write(
        dir.path(),
        "test",
        std::slice::from_ref(&run),
        &[],
        serde_json::json!({}),
    )
    .unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("| math500 | cot | greedy acc | 33.3 |"), "{md}");
    assert!(md.contains("## math500 by level") && md.contains("## math500 by subject"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let levels = json["results"][0]["by_level"].as_array().unwrap();
    assert_eq!(
        levels.iter().map(|g| g["n"].as_u64().unwrap()).sum::<u64>(),
        30
    );
    assert_eq!(
        levels
            .iter()
            .map(|g| g["correct"].as_u64().unwrap())
            .sum::<u64>(),
        10
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("samples.jsonl"))
            .unwrap()
            .lines()
            .count(),
        30
    );
    let svg = std::fs::read_to_string(dir.path().join("accuracy.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("33.3") && svg.contains("math500 greedy"));
}

#[test]
fn exemplars_are_clean_and_self_consistent() {
    let train: HashMap<String, String> = std::fs::read_to_string(
        Benchmark::Gsm8k
            .default_path()
            .with_file_name("train.jsonl"),
    )
    .unwrap()
    .lines()
    .map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        (
            v["question"].as_str().unwrap().to_string(),
            dsmath_eval::gsm8k_gold(v["answer"].as_str().unwrap()).unwrap(),
        )
    })
    .collect();
    let test: Vec<String> = Benchmark::Gsm8k
        .load_default()
        .unwrap()
        .into_iter()
        .map(|p| p.question)
        .collect();
    let ex = gsm8k_exemplars();
    assert_eq!(ex.len(), 8);
    for e in &ex {
        assert_eq!(
            train.get(&e.question),
            Some(&e.answer),
            "exemplar not from GSM8K train: {}",
            e.question
        );
        assert!(!test.contains(&e.question));
        assert_eq!(extract_answer(&e.solution).0, e.answer);
    }
    let math_test: Vec<String> = Benchmark::Math
        .load_default()
        .unwrap()
        .into_iter()
        .map(|p| p.question)
        .collect();
    let ex = math_exemplars();
    assert_eq!(ex.len(), 4);
    for e in &ex {
        assert!(
            !math_test
                .iter()
                .any(|q| q.contains(&e.question) || e.question.contains(q.as_str())),
            "{}",
            e.question
        );
        assert!(
            grade(Benchmark::Math, &e.solution, &e.answer, 0).correct,
            "{}",
            e.solution
        );
    }
    for e in choice_exemplars() {
        assert!(
            grade(Benchmark::Sat, &e.solution, &e.answer, e.choices.len()).correct,
            "{}",
            e.solution
        );
    }
}
