//! SFT records from GSM8K train (DeepSeekMath §3.3 trains on chain-of-thought, program-of-thought
//! and tool-integrated solutions): the worked solution's calculator annotations `<<48/2=24>>`
//! become, per template, plain reasoning (CoT), one Python program (PoT), or reasoning with
//! executed ```python / ```output blocks (tool-integrated). Every record ends with the answer in
//! `\boxed{}`; a record whose program would not reproduce the `####` answer is skipped.

use serde::Serialize;

use dsmath_eval::prompts::{instruct, pot_instruct, tool_instruct};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    Cot,
    Pot,
    Tool,
}

impl Template {
    pub fn from_name(s: &str) -> Option<Template> {
        match s {
            "cot" => Some(Template::Cot),
            "pot" => Some(Template::Pot),
            "tool" => Some(Template::Tool),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SftRecord {
    pub prompt: String,
    pub response: String,
    pub gold: String,
}

/// One calculator annotation: the expression and its stated result.
#[derive(Debug, Clone, PartialEq)]
pub struct Calc {
    pub expr: String,
    pub result: String,
}

/// A line of the solution: text without annotations, and its annotations.
fn parse_line(line: &str) -> (String, Vec<Calc>) {
    let mut text = String::new();
    let mut calcs = vec![];
    let mut rest = line;
    while let Some(i) = rest.find("<<") {
        text.push_str(&rest[..i]);
        match rest[i + 2..].find(">>") {
            Some(j) => {
                let inner = &rest[i + 2..i + 2 + j];
                if let Some((e, r)) = inner.split_once('=') {
                    calcs.push(Calc {
                        expr: e.trim().to_string(),
                        result: r.trim().to_string(),
                    });
                }
                rest = &rest[i + 2 + j + 2..];
            }
            None => {
                rest = &rest[i + 2..];
            }
        }
    }
    text.push_str(rest);
    (text.trim().to_string(), calcs)
}

/// Only plain arithmetic is turned into Python.
fn pythonable(expr: &str) -> bool {
    !expr.is_empty()
        && expr
            .chars()
            .all(|c| c.is_ascii_digit() || " .+-*/()".contains(c))
}

/// A Python number: ints stay exact, `/` makes floats.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Py {
    Int(i128),
    Float(f64),
}

impl Py {
    fn f(self) -> f64 {
        match self {
            Py::Int(i) => i as f64,
            Py::Float(x) => x,
        }
    }
    /// `print(x)` as CPython writes it (`24`, `24.0`, `0.2`, `1e+16`).
    fn repr(self) -> String {
        match self {
            Py::Int(i) => i.to_string(),
            Py::Float(x) if !x.is_finite() => {
                if x.is_nan() {
                    "nan".into()
                } else if x > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                }
            }
            Py::Float(x) => {
                let a = x.abs();
                if a != 0.0 && !(1e-4..1e16).contains(&a) {
                    // Python's exponent form: shortest digits, `e+XX` / `e-XX` with 2+ digits.
                    let s = format!("{x:e}");
                    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                    let e: i32 = e.parse().unwrap_or(0);
                    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
                } else if x.fract() == 0.0 {
                    format!("{x:.1}")
                } else {
                    format!("{x}")
                }
            }
        }
    }
}

/// Evaluate plain arithmetic (`+ - * /`, parentheses, unary minus) with Python's semantics.
fn py_eval(expr: &str) -> Option<Py> {
    fn atom(t: &[char], i: &mut usize) -> Option<Py> {
        while *i < t.len() && t[*i] == ' ' {
            *i += 1;
        }
        match t.get(*i)? {
            '(' => {
                *i += 1;
                let v = sum(t, i)?;
                while *i < t.len() && t[*i] == ' ' {
                    *i += 1;
                }
                (t.get(*i) == Some(&')')).then(|| *i += 1)?;
                Some(v)
            }
            '-' => {
                *i += 1;
                Some(match atom(t, i)? {
                    Py::Int(x) => Py::Int(-x),
                    Py::Float(x) => Py::Float(-x),
                })
            }
            '+' => {
                *i += 1;
                atom(t, i)
            }
            _ => {
                let start = *i;
                while *i < t.len() && (t[*i].is_ascii_digit() || t[*i] == '.') {
                    *i += 1;
                }
                let s: String = t[start..*i].iter().collect();
                if s.is_empty() {
                    return None;
                }
                if s.contains('.') {
                    s.parse().ok().map(Py::Float)
                } else {
                    s.parse().ok().map(Py::Int)
                }
            }
        }
    }
    fn product(t: &[char], i: &mut usize) -> Option<Py> {
        let mut v = atom(t, i)?;
        loop {
            while *i < t.len() && t[*i] == ' ' {
                *i += 1;
            }
            match t.get(*i) {
                Some('*') => {
                    *i += 1;
                    let r = atom(t, i)?;
                    v = match (v, r) {
                        (Py::Int(a), Py::Int(b)) => Py::Int(a.checked_mul(b)?),
                        (a, b) => Py::Float(a.f() * b.f()),
                    };
                }
                Some('/') => {
                    *i += 1;
                    let r = atom(t, i)?;
                    if r.f() == 0.0 {
                        return None; // ZeroDivisionError
                    }
                    v = Py::Float(v.f() / r.f());
                }
                _ => return Some(v),
            }
        }
    }
    fn sum(t: &[char], i: &mut usize) -> Option<Py> {
        let mut v = product(t, i)?;
        loop {
            while *i < t.len() && t[*i] == ' ' {
                *i += 1;
            }
            let op = match t.get(*i) {
                Some('+') => 1,
                Some('-') => -1,
                _ => return Some(v),
            };
            *i += 1;
            let r = product(t, i)?;
            v = match (v, r) {
                (Py::Int(a), Py::Int(b)) => Py::Int(if op > 0 {
                    a.checked_add(b)?
                } else {
                    a.checked_sub(b)?
                }),
                (a, b) => Py::Float(if op > 0 { a.f() + b.f() } else { a.f() - b.f() }),
            };
        }
    }
    let t: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let v = sum(&t, &mut i)?;
    while i < t.len() && t[i] == ' ' {
        i += 1;
    }
    (i == t.len()).then_some(v)
}

/// What `print(expr)` shows, for plain arithmetic.
pub fn python_print(expr: &str) -> Option<String> {
    py_eval(expr).map(Py::repr)
}

/// Python's printed value of an arithmetic result the way GSM8K states it (`24`, `0.2`).
fn same_number(a: &str, b: &str) -> bool {
    match (
        a.replace(',', "").parse::<f64>(),
        b.replace(',', "").parse::<f64>(),
    ) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-6 * y.abs().max(1.0),
        _ => false,
    }
}

/// Build the record for one GSM8K `(question, answer)`; `None` when the template cannot be
/// made faithfully (no `####`, or non-arithmetic annotations for PoT / tool).
pub fn gsm8k_record(question: &str, answer: &str, template: Template) -> Option<SftRecord> {
    let (work, gold) = answer.rsplit_once("####")?;
    let gold = gold.trim().replace(',', "");
    let lines: Vec<(String, Vec<Calc>)> = work
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_line)
        .collect();
    let boxed = format!("The answer is $\\boxed{{{gold}}}$.");
    match template {
        Template::Cot => {
            let steps: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
            Some(SftRecord {
                prompt: instruct(question),
                response: format!(" {}\n{boxed}", steps.join("\n")),
                gold,
            })
        }
        Template::Pot => {
            let calcs: Vec<&Calc> = lines.iter().flat_map(|l| &l.1).collect();
            let last = calcs.last()?;
            if !calcs
                .iter()
                .all(|c| pythonable(&c.expr) && py_eval(&c.expr).is_some())
                || !same_number(&last.result, &gold)
            {
                return None;
            }
            let printed = python_print(&last.expr)?;
            if !same_number(&printed, &gold) {
                return None;
            }
            let mut code = String::new();
            for (k, (text, cs)) in lines.iter().enumerate() {
                if !text.is_empty() {
                    code.push_str(&format!("# {text}\n"));
                }
                for (j, c) in cs.iter().enumerate() {
                    code.push_str(&format!("step_{k}_{j} = {}\n", c.expr));
                }
            }
            let (k, j) = lines
                .iter()
                .enumerate()
                .flat_map(|(k, l)| (0..l.1.len()).map(move |j| (k, j)))
                .last()?;
            code.push_str(&format!("answer = step_{k}_{j}\nprint(answer)\n"));
            Some(SftRecord {
                prompt: pot_instruct(question),
                response: format!(" ```python\n{code}```\n```output\n{printed}\n```\n{boxed}"),
                gold,
            })
        }
        Template::Tool => {
            let calcs: Vec<&Calc> = lines.iter().flat_map(|l| &l.1).collect();
            if calcs.is_empty()
                || !calcs
                    .iter()
                    .all(|c| pythonable(&c.expr) && py_eval(&c.expr).is_some())
            {
                return None;
            }
            let mut out = String::new();
            for (text, cs) in &lines {
                out.push_str(text);
                out.push('\n');
                for c in cs {
                    let printed = python_print(&c.expr)?;
                    out.push_str(&format!(
                        "```python\nprint({})\n```\n```output\n{printed}\n```\n",
                        c.expr
                    ));
                }
            }
            Some(SftRecord {
                prompt: tool_instruct(question),
                response: format!(" {out}{boxed}"),
                gold,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";
    const A: &str = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72";

    #[test]
    fn python_printing() {
        assert_eq!(python_print("48/2").as_deref(), Some("24.0"));
        assert_eq!(python_print("12/60").as_deref(), Some("0.2"));
        assert_eq!(python_print("(3+4)*-2").as_deref(), Some("-14"));
        assert_eq!(python_print("1/3").as_deref(), Some("0.3333333333333333"));
        assert_eq!(python_print("1/0"), None);
        assert_eq!(python_print("2 x 3"), None);
    }

    #[test]
    fn three_templates() {
        let cot = gsm8k_record(Q, A, Template::Cot).unwrap();
        assert_eq!(
            cot.response,
            " Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\nThe answer is $\\boxed{72}$."
        );
        assert!(cot.prompt.ends_with("\\boxed{}.\n\nAssistant:"));
        let pot = gsm8k_record(Q, A, Template::Pot).unwrap();
        assert!(
            pot.response.contains("step_0_0 = 48/2\n")
                && pot
                    .response
                    .contains("answer = step_1_0\nprint(answer)\n```\n```output\n72\n```")
        );
        let tool = gsm8k_record(Q, A, Template::Tool).unwrap();
        assert!(
            tool.response
                .contains("```python\nprint(48/2)\n```\n```output\n24.0\n```"),
            "{}",
            tool.response
        );
        assert!(
            tool.response
                .contains("```python\nprint(48+24)\n```\n```output\n72\n```")
        );
        assert_eq!(dsmath_eval::extract_answer(&tool.response).0, "72");
    }
}
