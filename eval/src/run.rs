//! Model-driven evaluation (DeepSeekMath §2.3 / §3.2): prompts -> completions from any
//! [`Engine`] -> code execution for program-of-thought and tool-integrated prompts (up to 2
//! rounds of ```python / ```output) -> grading -> greedy accuracy, maj@k, pass@k.

use serde::Serialize;

use crate::bench::{Benchmark, Problem};
use crate::grade::grade;
use crate::metrics::{majority, pass_at_k};
use crate::prompts::{Prompt, PromptKind, instruct_turn, question_text, render};
use crate::sandbox::{Outcome, Sandbox};

/// How many samples per problem and how they count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", content = "k", rename_all = "snake_case")]
pub enum Mode {
    /// One greedy completion.
    Greedy,
    /// k sampled completions; the majority answer (over equivalence classes) counts.
    Maj(usize),
    /// k sampled completions; unbiased pass@1 and pass@k.
    Pass(usize),
}

impl Mode {
    /// `greedy`, `maj@K`, `pass@K`.
    pub fn parse(s: &str) -> Option<Mode> {
        if s == "greedy" {
            return Some(Mode::Greedy);
        }
        let (name, k) = s.split_once('@')?;
        let k: usize = k.parse().ok().filter(|&k| k > 0)?;
        match name {
            "maj" => Some(Mode::Maj(k)),
            "pass" => Some(Mode::Pass(k)),
            _ => None,
        }
    }

    pub fn name(self) -> String {
        match self {
            Mode::Greedy => "greedy".into(),
            Mode::Maj(k) => format!("maj@{k}"),
            Mode::Pass(k) => format!("pass@{k}"),
        }
    }

    pub fn samples(self) -> usize {
        match self {
            Mode::Greedy => 1,
            Mode::Maj(k) | Mode::Pass(k) => k,
        }
    }

    pub fn sampled(self) -> bool {
        self != Mode::Greedy
    }
}

/// A text-completion engine: dsmath's generator, or a client of another server.
pub trait Engine {
    /// For each prompt, `n` completions (greedy when `sampled` is false, else sampled with the
    /// engine's temperature and seed), each ending before any `stop` string.
    fn complete(
        &mut self,
        prompts: &[String],
        n: usize,
        sampled: bool,
        stop: &[String],
    ) -> Result<Vec<Vec<String>>, String>;

    /// The prompt text for one user turn in the model's own chat format, `None` for an engine
    /// whose model has no chat template (the `cot` prompt then uses DeepSeekMath's plain
    /// "User: ... Assistant:" format).
    fn user_turn(&self, _text: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// One executed program.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    pub outcome: Outcome,
    pub output: String,
    pub seconds: f64,
}

/// One completion with its verdict (a line of `samples.jsonl`).
#[derive(Debug, Clone, Serialize)]
pub struct SampleRecord {
    pub bench: &'static str,
    pub id: String,
    pub sample: usize,
    pub prompt: String,
    pub completion: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub executions: Vec<Execution>,
    pub extracted: String,
    pub gold: String,
    pub correct: bool,
    pub reason: &'static str,
}

/// Per-problem outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemRecord {
    pub id: String,
    pub level: Option<String>,
    pub subject: Option<String>,
    pub n: usize,
    pub n_correct: usize,
    /// The answer that counts: the greedy one, or the majority class's representative.
    pub answer: String,
    /// Greedy: the completion is right. maj@k: the majority answer is right. pass@k: any is right.
    pub correct: bool,
}

/// The result of one benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRun {
    pub bench: &'static str,
    pub prompt: PromptKind,
    pub mode: Mode,
    pub problems: Vec<ProblemRecord>,
    pub samples: Vec<SampleRecord>,
}

impl BenchRun {
    /// Greedy or maj@k accuracy, or pass@k, in percent.
    pub fn accuracy(&self) -> f64 {
        percent(
            self.problems.iter().filter(|p| p.correct).count(),
            self.problems.len(),
        )
    }

    /// Unbiased pass@k averaged over problems, in percent (needs k <= samples).
    pub fn pass_at(&self, k: usize) -> f64 {
        let v: Vec<f64> = self
            .problems
            .iter()
            .map(|p| pass_at_k(p.n, p.n_correct, k))
            .collect();
        if v.is_empty() || v.iter().any(|x| x.is_nan()) {
            f64::NAN
        } else {
            100.0 * v.iter().sum::<f64>() / v.len() as f64
        }
    }
}

pub fn percent(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// The code of an unexecuted closed ```python block at the end of `text` (no ```output after it).
pub fn pending_code(text: &str) -> Option<String> {
    let start = text.rfind("```python")?;
    let body = &text[start + "```python".len()..];
    let end = body.find("```")?;
    if body[end + 3..].contains("```output") {
        return None;
    }
    Some(body[..end].trim_matches('\n').to_string())
}

fn execute(sandbox: &Sandbox, code: &str) -> (String, Execution) {
    let run = sandbox.run(code);
    let fb = run.feedback();
    let block = format!("```output\n{fb}\n```\n");
    (
        block,
        Execution {
            outcome: run.outcome,
            output: fb,
            seconds: run.seconds,
        },
    )
}

/// A finished completion and the programs run while producing it.
pub type Solved = (String, Vec<Execution>);

/// Complete `prompts` (n each) with code execution as `kind` requires: PoT runs the program once
/// and appends its output; tool-integrated runs each finished ```python block, appends its
/// ```output and lets the model continue, at most `rounds` times.
pub fn solve(
    engine: &mut dyn Engine,
    prompts: &[Prompt],
    n: usize,
    sampled: bool,
    kind: PromptKind,
    sandbox: Option<&Sandbox>,
    rounds: usize,
) -> Result<Vec<Vec<Solved>>, String> {
    if prompts.is_empty() {
        return Ok(vec![]);
    }
    let stop = prompts[0].stop.clone();
    let texts: Vec<String> = prompts.iter().map(|p| p.text.clone()).collect();
    let first = engine.complete(&texts, n, sampled, &stop)?;
    let mut states: Vec<Vec<Solved>> = first
        .into_iter()
        .map(|v| v.into_iter().map(|c| (c, vec![])).collect())
        .collect();
    if !kind.runs_code() {
        return Ok(states);
    }
    let sb = sandbox.ok_or("this prompt runs code: a sandbox is needed")?;
    if kind == PromptKind::Pot {
        for (text, runs) in states.iter_mut().flatten() {
            if let Some(code) = crate::sandbox::last_python_block(text) {
                let (block, ex) = execute(sb, &code);
                text.push_str(&format!("\n{block}"));
                runs.push(ex);
            }
        }
        return Ok(states);
    }
    for _ in 0..rounds {
        let mut cont_prompts = vec![];
        let mut owners = vec![];
        for (p, row) in states.iter_mut().enumerate() {
            for (s, (text, runs)) in row.iter_mut().enumerate() {
                if let Some(code) = pending_code(text) {
                    let (block, ex) = execute(sb, &code);
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    text.push_str(&block);
                    runs.push(ex);
                    cont_prompts.push(format!("{}{}", prompts[p].text, text));
                    owners.push((p, s));
                }
            }
        }
        if cont_prompts.is_empty() {
            break;
        }
        let more = engine.complete(&cont_prompts, 1, sampled, &stop)?;
        for ((p, s), mut c) in owners.into_iter().zip(more) {
            states[p][s].0.push_str(&c.pop().unwrap_or_default());
        }
    }
    Ok(states)
}

/// Evaluate `problems` of `bench`: `batch` problems per engine call; `progress(done)` after each.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    engine: &mut dyn Engine,
    bench: Benchmark,
    problems: &[Problem],
    kind: PromptKind,
    mode: Mode,
    sandbox: Option<&Sandbox>,
    batch: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<BenchRun, String> {
    let mut run = BenchRun {
        bench: bench.name(),
        prompt: kind,
        mode,
        problems: vec![],
        samples: vec![],
    };
    for chunk in problems.chunks(batch.max(1)) {
        let mut prompts = Vec::with_capacity(chunk.len());
        for p in chunk {
            let chat = if kind == PromptKind::Cot {
                engine.user_turn(&instruct_turn(&question_text(p)))?
            } else {
                None
            };
            prompts.push(match chat {
                Some(text) => Prompt { text, stop: vec![] },
                None => render(kind, bench, p),
            });
        }
        let solved = solve(
            engine,
            &prompts,
            mode.samples(),
            mode.sampled(),
            kind,
            sandbox,
            2,
        )?;
        for ((problem, prompt), outs) in chunk.iter().zip(&prompts).zip(solved) {
            let mut answers = vec![];
            let mut n_correct = 0;
            let mut verdicts = vec![];
            for (s, (completion, executions)) in outs.into_iter().enumerate() {
                let g = grade(bench, &completion, &problem.gold, problem.choices.len());
                n_correct += g.correct as usize;
                answers.push(g.extracted.clone());
                verdicts.push(g.correct);
                run.samples.push(SampleRecord {
                    bench: bench.name(),
                    id: problem.id.clone(),
                    sample: s,
                    prompt: prompt.text.clone(),
                    completion,
                    executions,
                    extracted: g.extracted,
                    gold: problem.gold.clone(),
                    correct: g.correct,
                    reason: g.reason,
                });
            }
            let (answer, correct) = match mode {
                Mode::Greedy => (
                    answers.first().cloned().unwrap_or_default(),
                    verdicts.first().copied().unwrap_or(false),
                ),
                Mode::Maj(_) => match majority(&answers) {
                    Some(i) => (answers[i].clone(), verdicts[i]),
                    None => (String::new(), false),
                },
                Mode::Pass(_) => (String::new(), n_correct > 0),
            };
            run.problems.push(ProblemRecord {
                id: problem.id.clone(),
                level: problem.level.clone(),
                subject: problem.subject.clone(),
                n: answers.len(),
                n_correct,
                answer,
                correct,
            });
        }
        progress(run.problems.len());
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse("greedy"), Some(Mode::Greedy));
        assert_eq!(Mode::parse("maj@64"), Some(Mode::Maj(64)));
        assert_eq!(Mode::parse("pass@8"), Some(Mode::Pass(8)));
        assert_eq!(Mode::parse("maj@0"), None);
        assert_eq!(Mode::parse("best@3"), None);
    }

    #[test]
    fn pending_code_only_before_its_output() {
        assert_eq!(
            pending_code("x\n```python\nprint(1)\n```\n").as_deref(),
            Some("print(1)")
        );
        assert_eq!(
            pending_code("```python\nprint(1)\n```\n```output\n1\n```\nso"),
            None
        );
        assert_eq!(pending_code("```python\nprint(1)"), None);
    }
}
