//! Grading one completion (DeepSeekMath's evaluation rules) and the rule-based reward GRPO
//! trains on (DeepSeekMath §4.1: the reward is the grader's verdict; optional format reward).

use crate::bench::Benchmark;
use crate::extract::{Source, choice_answer, extract_answer};
use crate::is_equiv;

/// The verdict on one completion.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Graded {
    pub extracted: String,
    pub source: Source,
    pub correct: bool,
    pub reason: &'static str,
}

/// Grade `completion` against `gold` with `bench`'s rules: option letters for multiple choice
/// (`n_options` choices; gold may be several letters, e.g. `AC`), else answer equivalence.
pub fn grade(bench: Benchmark, completion: &str, gold: &str, n_options: usize) -> Graded {
    if bench.is_multiple_choice() {
        let letters = choice_answer(completion, n_options.max(1));
        let want: String = gold
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let ok = !letters.is_empty() && letters == want;
        let (_, source) = extract_answer(completion);
        return Graded {
            extracted: letters,
            source,
            correct: ok,
            reason: if ok { "choice" } else { "different choice" },
        };
    }
    let (extracted, source) = extract_answer(completion);
    let v = is_equiv(&extracted, gold);
    Graded {
        extracted,
        source,
        correct: v.correct,
        reason: v.reason,
    }
}

/// Reward settings: `correct` / `wrong` values, and a bonus for a well-formed answer
/// (`\boxed{}` or `The answer is`), 0 by default as in DeepSeekMath.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    pub correct: f32,
    pub wrong: f32,
    pub format_bonus: f32,
}

impl Default for RewardConfig {
    fn default() -> Self {
        RewardConfig {
            correct: 1.0,
            wrong: 0.0,
            format_bonus: 0.0,
        }
    }
}

/// The rule-based reward of one completion: 1 if its answer equals `gold`, else 0.
/// `question` is unused by the rules but kept so reward functions share one signature.
pub fn reward(question: &str, completion: &str, gold: &str) -> f32 {
    reward_with(&RewardConfig::default(), question, completion, gold)
}

/// [`reward`] with explicit values and format bonus.
pub fn reward_with(cfg: &RewardConfig, _question: &str, completion: &str, gold: &str) -> f32 {
    let (extracted, source) = extract_answer(completion);
    let correct = is_equiv(&extracted, gold).correct;
    let formatted = matches!(
        source,
        Source::Boxed | Source::TheAnswerIs | Source::FinalAnswerIs
    );
    (if correct { cfg.correct } else { cfg.wrong }) + if formatted { cfg.format_bonus } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_follows_the_grader() {
        assert_eq!(reward("q", "so \\boxed{\\frac{1}{2}}", "0.5"), 1.0);
        assert_eq!(reward("q", "so the answer is 3", "0.5"), 0.0);
        let cfg = RewardConfig {
            format_bonus: 0.1,
            ..Default::default()
        };
        assert_eq!(reward_with(&cfg, "q", "The answer is 3.", "4"), 0.1);
        assert_eq!(reward_with(&cfg, "q", "I think 4", "4"), 1.0); // last number, no format bonus
    }

    #[test]
    fn multiple_choice_grades_letters() {
        let g = grade(Benchmark::Sat, "The answer is (B).", "B", 4);
        assert!(g.correct && g.extracted == "B");
        assert!(!grade(Benchmark::Sat, "The answer is (C).", "B", 4).correct);
        assert!(grade(Benchmark::GaokaoMathQa, "答案是 C, A", "AC", 4).correct);
    }
}
