//! Generated arithmetic word problems in GSM8K's layout (question; worked solution with
//! `<<a+b=c>>` calculator annotations and `#### answer`): the demo's SFT data, RL prompts and
//! held-out set, and the task of the end-to-end GRPO test (a miniature of DeepSeekMath §3.3/§4).
//! Problems are a function of (seed, index); the held-out split is decided by a hash of the
//! question, so no held-out question ever appears in training data whatever the seeds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One problem: `answer` is a GSM8K-style worked solution ending in `#### gold`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArithProblem {
    pub question: String,
    pub answer: String,
    pub gold: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Heldout,
}

/// The split a question belongs to: about one question in eight is held out.
pub fn split_of(question: &str) -> Split {
    if dsmath_data::dedup::fnv1a(question.as_bytes(), dsmath_data::dedup::FNV_OFFSET)
        .is_multiple_of(8)
    {
        Split::Heldout
    } else {
        Split::Train
    }
}

const NAMES: &[&str] = &[
    "Tom", "Ana", "Ben", "Mia", "Sam", "Lea", "Max", "Zoe", "Ali", "Eva", "Leo", "Ivy",
];
const ITEMS: &[&str] = &[
    "apples", "pens", "books", "stickers", "marbles", "cookies", "cards", "shells",
];

fn pick<'a>(rng: &mut ChaCha8Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

/// The `i`-th problem of stream `seed`: one of four one- or two-step templates, small numbers.
pub fn problem(seed: u64, i: u64) -> ArithProblem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i);
    let name = pick(&mut rng, NAMES);
    let item = pick(&mut rng, ITEMS);
    let (question, answer, gold) = match rng.random_range(0..4) {
        0 => {
            let (a, b) = (rng.random_range(2..=9), rng.random_range(2..=9));
            let c = a + b;
            (
                format!(
                    "{name} has {a} {item}. {name} gets {b} more {item}. How many {item} does {name} have now?"
                ),
                format!("{name} has {a} + {b} = <<{a}+{b}={c}>>{c} {item} now."),
                c,
            )
        }
        1 => {
            let a = rng.random_range(4..=15);
            let b = rng.random_range(1..a);
            let c = a - b;
            (
                format!(
                    "{name} had {a} {item} and gave away {b}. How many {item} does {name} have left?"
                ),
                format!("{name} has {a} - {b} = <<{a}-{b}={c}>>{c} {item} left."),
                c,
            )
        }
        2 => {
            let (a, b) = (rng.random_range(2..=5), rng.random_range(2..=5));
            let c = a * b;
            (
                format!(
                    "{name} buys {a} bags with {b} {item} in each bag. How many {item} does {name} buy?"
                ),
                format!("{name} buys {a} * {b} = <<{a}*{b}={c}>>{c} {item}."),
                c,
            )
        }
        _ => {
            let (a, b) = (rng.random_range(2..=9), rng.random_range(2..=9));
            let c = rng.random_range(1..a + b);
            let (s, r) = (a + b, a + b - c);
            (
                format!(
                    "{name} has {a} {item} and finds {b} more. Then {name} gives {c} {item} to a friend. How many {item} does {name} have now?"
                ),
                format!(
                    "After finding more, {name} has {a} + {b} = <<{a}+{b}={s}>>{s} {item}.\nAfter giving some away, {name} has {s} - {c} = <<{s}-{c}={r}>>{r} {item}."
                ),
                r,
            )
        }
    };
    ArithProblem {
        answer: format!("{answer}\n#### {gold}"),
        gold: gold.to_string(),
        question,
    }
}

/// `n` distinct problems of `split` from stream `seed` (duplicates of a question are skipped).
pub fn problems(seed: u64, n: usize, split: Split) -> Vec<ArithProblem> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut i = 0u64;
    while out.len() < n && i < 100 * n as u64 + 1000 {
        let p = problem(seed, i);
        i += 1;
        if split_of(&p.question) == split && seen.insert(p.question.clone()) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_seeded_distinct_and_split() {
        let a = problems(1, 300, Split::Train);
        assert_eq!(a, problems(1, 300, Split::Train));
        assert_eq!(a.len(), 300);
        let h = problems(1, 100, Split::Heldout);
        assert!(h.iter().all(|p| split_of(&p.question) == Split::Heldout));
        assert!(
            a.iter()
                .all(|p| !h.iter().any(|q| q.question == p.question))
        );
        for p in a.iter().chain(&h) {
            // The worked solution's last annotation equals the gold answer.
            let last = p.answer.rsplit("<<").next().unwrap();
            let result = last.split(">>").next().unwrap().split('=').nth(1).unwrap();
            assert_eq!(result, p.gold, "{p:?}");
            assert!(p.answer.ends_with(&format!("#### {}", p.gold)));
        }
    }
}
