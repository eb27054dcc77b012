//! Answer equivalence (DeepSeekMath's `math_equal`, in pure Rust): normalised strings, numbers
//! (thousands separators, a decimal comma against a single number, decimals, percent, 1e-4
//! relative tolerance), then the LaTeX parser for fractions, radicals, tuples, intervals, sets,
//! matrices (also inside a sentence), equations, relations and symbolic expressions.

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

/// `2,74` or `1000,99`: one comma between digits that is not a thousands separator (those were
/// removed before), read as a decimal comma.
fn decimal_comma(s: &str) -> Option<String> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once(',')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    (digits(int) && digits(frac)).then(|| s.replacen(',', ".", 1))
}

/// The one `\begin{...} ... \end{...}` environment of a sentence (`the matrix is
/// \begin{pmatrix} 1 \\ 2 \end{pmatrix}.`, `So $\mathbf{v} = \begin{pmatrix}...$ works`): the
/// text around it, normalised, has words but no numbers and no operators (a scalar times a matrix, `2\begin{pmatrix}...`, is not a sentence).
fn lone_environment(s: &str) -> Option<&str> {
    let start = s.find("\\begin{")?;
    let last_end = s.rfind("\\end{")?;
    let close = last_end + s[last_end..].find('}')?;
    // Around it: words, punctuation, `$` and a named vector (`\mathbf{v} =`).
    let outside = normalize(&format!("{} {}", &s[..start], &s[close + 1..]).replace('$', " "));
    let prose = outside.chars().any(char::is_alphabetic)
        && !outside
            .chars()
            .any(|c| c.is_ascii_digit() || "+-*/^\\{}".contains(c));
    prose.then_some(&s[start..=close])
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
    // A decimal comma only against a single number: `2,74` vs `2.74`, while `1,-2` vs `1,-3`
    // stay lists.
    let (p, g) = match (decimal_comma(&p), decimal_comma(&g)) {
        (Some(d), None) if !g.contains(',') => (d, g),
        (None, Some(d)) if !p.contains(',') => (p, d),
        _ => (p, g),
    };
    let parsed = |s: &str, raw: &str| match lone_environment(raw) {
        Some(env) => math::parse(&normalize(env)),
        None => math::parse(s),
    };
    let (Some(pe), Some(ge)) = (parsed(&p, pred), parsed(&g, gold)) else {
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
    fn decimal_comma_only_against_one_number() {
        assert!(is_equiv("2,74", "2.74").correct);
        assert!(is_equiv("1000,99", "1000.99").correct);
        assert!(is_equiv("1,000", "1000").correct);
        assert!(!is_equiv("1,5", "1").correct);
        assert!(!is_equiv("2,74", "2,75").correct);
        assert!(is_equiv("2, 74", "74,2").correct);
    }

    #[test]
    fn a_matrix_inside_a_sentence() {
        let gold = "\\begin{pmatrix}1\\\\2\\end{pmatrix}";
        assert!(
            is_equiv(
                "the matrix is \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
                gold
            )
            .correct
        );
        assert!(!is_equiv("2\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", gold).correct);
        assert!(
            !is_equiv(
                "the matrix is \\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}",
                gold
            )
            .correct
        );
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
