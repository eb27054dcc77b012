//! Evaluation prompts as in DeepSeekMath §2.3 / §3.2: few-shot chain-of-thought for base models
//! (8-shot GSM8K, 4-shot Minerva-style MATH, 3-shot multiple choice; exemplars in
//! `eval/prompts/`), the zero-shot instruct prompt with `\boxed{}`, program-of-thought and
//! tool-integrated (```python / ```output) prompts.

use serde::Deserialize;

use crate::bench::{Benchmark, Problem};

/// Which prompt to evaluate with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    /// Zero-shot chain of thought, DeepSeekMath-Instruct format, answer in `\boxed{}`.
    Cot,
    /// Few-shot chain of thought for base models.
    FewShot,
    /// Program of thought: one Python program whose printed output is the answer.
    Pot,
    /// Tool-integrated: reasoning interleaved with executed ```python blocks.
    Tool,
}

impl PromptKind {
    pub fn from_name(name: &str) -> Option<PromptKind> {
        Some(match name {
            "cot" => PromptKind::Cot,
            "fewshot" | "few-shot" => PromptKind::FewShot,
            "pot" => PromptKind::Pot,
            "tool" => PromptKind::Tool,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            PromptKind::Cot => "cot",
            PromptKind::FewShot => "fewshot",
            PromptKind::Pot => "pot",
            PromptKind::Tool => "tool",
        }
    }

    /// Whether completions contain code the harness executes.
    pub fn runs_code(self) -> bool {
        matches!(self, PromptKind::Pot | PromptKind::Tool)
    }
}

/// A rendered prompt and the strings that end its completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    pub stop: Vec<String>,
}

/// One worked example of a few-shot prompt.
#[derive(Debug, Clone, Deserialize)]
pub struct Exemplar {
    /// Where it came from (a train-set line, or written for dsmath).
    pub source: String,
    pub question: String,
    pub solution: String,
    pub answer: String,
    #[serde(default)]
    pub choices: Vec<String>,
}

fn parse(text: &str) -> Vec<Exemplar> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("embedded exemplar is valid JSON"))
        .collect()
}

/// 8 GSM8K train problems with their worked solutions, ending `The answer is N.`
pub fn gsm8k_exemplars() -> Vec<Exemplar> {
    parse(include_str!("../prompts/gsm8k_8shot.jsonl"))
}

/// 4 Minerva-style problems (written for dsmath, not from MATH test), ending
/// `Final Answer: The final answer is $X$. I hope it is correct.`
pub fn math_exemplars() -> Vec<Exemplar> {
    parse(include_str!("../prompts/math_4shot.jsonl"))
}

/// 3 multiple-choice problems (written for dsmath), ending `The answer is (X).`
pub fn choice_exemplars() -> Vec<Exemplar> {
    parse(include_str!("../prompts/choice_3shot.jsonl"))
}

/// `Answer Choices: (A) 3 (B) 7 ...`
pub fn choices_line(choices: &[String]) -> String {
    let opts: Vec<String> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| format!("({}) {}", (b'A' + i as u8) as char, c))
        .collect();
    format!("Answer Choices: {}", opts.join(" "))
}

/// DeepSeekMath-Instruct's chain-of-thought prompt (also the GRPO training prompt).
/// DeepSeekMath's chain-of-thought instruction after the question: the user turn of the `cot`
/// prompt when the model's own chat template wraps it.
pub fn instruct_turn(question: &str) -> String {
    format!("{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}.")
}

pub fn instruct(question: &str) -> String {
    format!(
        "User: {question}\nPlease reason step by step, and put your final answer within \\boxed{{}}.\n\nAssistant:"
    )
}

/// DeepSeekMath-Instruct's tool-integrated prompt.
pub fn tool_instruct(question: &str) -> String {
    format!(
        "User: {question}\nPlease integrate natural language reasoning with programs to solve the problem above, and put your final answer within \\boxed{{}}.\n\nAssistant:"
    )
}

/// Program-of-thought prompt: a program that prints the answer.
pub fn pot_instruct(question: &str) -> String {
    format!(
        "User: {question}\nWrite a Python program that solves the problem above and prints the final answer. Put the program in a ```python block.\n\nAssistant:"
    )
}

/// Which few-shot set a benchmark uses: word problems get GSM8K's, competition problems
/// Minerva's, multiple choice the choice set.
fn exemplars_for(bench: Benchmark) -> (Vec<Exemplar>, Style) {
    use Benchmark::*;
    match bench {
        Gsm8k | Svamp | Asdiv | Mawps | Cmath | MgsmZh => (gsm8k_exemplars(), Style::Question),
        GaokaoMathQa | Sat | MmluStem => (choice_exemplars(), Style::Question),
        Math | Math500 | Ocw | GaokaoMathCloze => (math_exemplars(), Style::Minerva),
    }
}

#[derive(Clone, Copy)]
enum Style {
    /// `Question: ...\nAnswer: ...`
    Question,
    /// `Problem:\n...\n\nSolution:\n...`
    Minerva,
}

/// The question text with its answer choices, if any.
pub fn question_text(problem: &Problem) -> String {
    if problem.choices.is_empty() {
        problem.question.clone()
    } else {
        format!("{}\n{}", problem.question, choices_line(&problem.choices))
    }
}

/// Render `problem` of `bench` as a `kind` prompt.
pub fn render(kind: PromptKind, bench: Benchmark, problem: &Problem) -> Prompt {
    let q = question_text(problem);
    match kind {
        PromptKind::Cot => Prompt {
            text: instruct(&q),
            stop: vec![],
        },
        PromptKind::Pot => Prompt {
            text: pot_instruct(&q),
            stop: vec![],
        },
        PromptKind::Tool => Prompt {
            text: tool_instruct(&q),
            stop: vec!["```output".into()],
        },
        PromptKind::FewShot => {
            let (shots, style) = exemplars_for(bench);
            let mut text = String::new();
            for e in &shots {
                let eq = if e.choices.is_empty() {
                    e.question.clone()
                } else {
                    format!("{}\n{}", e.question, choices_line(&e.choices))
                };
                match style {
                    Style::Question => {
                        text.push_str(&format!("Question: {eq}\nAnswer: {}\n\n", e.solution))
                    }
                    Style::Minerva => {
                        text.push_str(&format!("Problem:\n{eq}\n\nSolution:\n{}\n\n", e.solution))
                    }
                }
            }
            let stop = match style {
                Style::Question => {
                    text.push_str(&format!("Question: {q}\nAnswer:"));
                    "\n\nQuestion:"
                }
                Style::Minerva => {
                    text.push_str(&format!("Problem:\n{q}\n\nSolution:\n"));
                    "\n\nProblem:"
                }
            };
            Prompt {
                text,
                stop: vec![stop.into()],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(q: &str) -> Problem {
        Problem {
            id: "1".into(),
            question: q.into(),
            gold: "2".into(),
            level: None,
            subject: None,
            choices: vec![],
            solution: None,
        }
    }

    #[test]
    fn instruct_prompt_is_deepseekmath_verbatim() {
        assert_eq!(
            render(PromptKind::Cot, Benchmark::Math, &problem("What is 1+1?")).text,
            "User: What is 1+1?\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:"
        );
    }

    #[test]
    fn few_shot_gsm8k_is_eight_questions_then_ours() {
        let p = render(PromptKind::FewShot, Benchmark::Gsm8k, &problem("2+2?"));
        assert_eq!(p.text.matches("Question: ").count(), 9);
        assert!(p.text.ends_with("Question: 2+2?\nAnswer:"));
        assert_eq!(p.stop, vec!["\n\nQuestion:".to_string()]);
    }

    #[test]
    fn few_shot_math_is_minerva_style() {
        let p = render(
            PromptKind::FewShot,
            Benchmark::Math500,
            &problem("Find $x$."),
        );
        assert_eq!(p.text.matches("Problem:\n").count(), 5);
        assert_eq!(p.text.matches("I hope it is correct.").count(), 4);
        assert!(p.text.ends_with("Problem:\nFind $x$.\n\nSolution:\n"));
    }

    #[test]
    fn multiple_choice_lists_the_options() {
        let mut pr = problem("Pick one.");
        pr.choices = vec!["1".into(), "2".into()];
        let p = render(PromptKind::Cot, Benchmark::Sat, &pr);
        assert!(
            p.text.contains("Pick one.\nAnswer Choices: (A) 1 (B) 2\n"),
            "{}",
            p.text
        );
    }
}
