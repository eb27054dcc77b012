//! Benchmark loaders for the DeepSeekMath evaluation suite, in the field layouts of
//! `eval/data/*/test.jsonl` (copies of `shared/data`, see eval/data/SOURCES.md for licences).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::extract::{gsm8k_gold, math_gold};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Record {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("unknown benchmark `{0}` (known: {1})")]
    Unknown(String, String),
}

/// The benchmarks of DeepSeekMath's tables (plus SVAMP / ASDiv / MAWPS / MATH500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Benchmark {
    Gsm8k,
    Math,
    Math500,
    Svamp,
    Asdiv,
    Mawps,
    Cmath,
    MgsmZh,
    GaokaoMathCloze,
    GaokaoMathQa,
    Ocw,
    Sat,
    MmluStem,
}

pub const ALL: [Benchmark; 13] = [
    Benchmark::Gsm8k,
    Benchmark::Math,
    Benchmark::Math500,
    Benchmark::Svamp,
    Benchmark::Asdiv,
    Benchmark::Mawps,
    Benchmark::Cmath,
    Benchmark::MgsmZh,
    Benchmark::GaokaoMathCloze,
    Benchmark::GaokaoMathQa,
    Benchmark::Ocw,
    Benchmark::Sat,
    Benchmark::MmluStem,
];

impl Benchmark {
    /// The name used on the command line and as the data directory.
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::Gsm8k => "gsm8k",
            Benchmark::Math => "math",
            Benchmark::Math500 => "math500",
            Benchmark::Svamp => "svamp",
            Benchmark::Asdiv => "asdiv",
            Benchmark::Mawps => "mawps",
            Benchmark::Cmath => "cmath",
            Benchmark::MgsmZh => "mgsm_zh",
            Benchmark::GaokaoMathCloze => "gaokao_math_cloze",
            Benchmark::GaokaoMathQa => "gaokao_math_qa",
            Benchmark::Ocw => "ocw",
            Benchmark::Sat => "sat_math",
            Benchmark::MmluStem => "mmlu_stem",
        }
    }

    pub fn from_name(name: &str) -> Result<Self, DataError> {
        let n = name.trim().to_ascii_lowercase().replace('-', "_");
        let alias = match n.as_str() {
            "sat" => "sat_math",
            "mgsm" => "mgsm_zh",
            "mmlu" => "mmlu_stem",
            other => other,
        };
        ALL.iter()
            .copied()
            .find(|b| b.name() == alias)
            .ok_or_else(|| {
                DataError::Unknown(
                    name.into(),
                    ALL.iter().map(|b| b.name()).collect::<Vec<_>>().join(", "),
                )
            })
    }

    /// Multiple-choice benchmarks are graded on the option letter.
    pub fn is_multiple_choice(self) -> bool {
        matches!(
            self,
            Benchmark::GaokaoMathQa | Benchmark::Sat | Benchmark::MmluStem
        )
    }

    /// The shipped test file (`eval/data/<name>/test.jsonl`).
    pub fn default_path(self) -> PathBuf {
        data_dir().join(self.name()).join("test.jsonl")
    }
}

/// The benchmark files (`eval/data`): found from the working directory upwards (the checkout
/// being run or tested), else where this crate was compiled. A build reused from another checkout
/// of the same tree (a shared target directory) thus still reads its own checkout's files.
pub fn data_dir() -> PathBuf {
    if let Ok(mut d) = std::env::current_dir() {
        loop {
            let c = d.join("eval").join("data");
            if c.join("SOURCES.md").is_file() {
                return c;
            }
            if !d.pop() {
                break;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// One benchmark problem with its gold answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    pub id: String,
    pub question: String,
    pub gold: String,
    /// MATH level (1-5) or CMATH grade, when given.
    pub level: Option<String>,
    /// MATH subject / MMLU topic, when given.
    pub subject: Option<String>,
    /// Options of multiple-choice problems, in letter order.
    pub choices: Vec<String>,
    /// The worked solution, where the file has one (GSM8K `answer`, MATH / MATH500 `solution`):
    /// decontamination matches against it too.
    pub solution: Option<String>,
}

fn s(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(x) => Some(x.clone()),
        Value::Number(n) => Some(number_text(n.as_f64()?)),
        _ => None,
    }
}

/// `43.0` -> `43`, `2.5` -> `2.5`
fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Split SAT's `"A) ... B) ..."` or `"A. ... B. ..."` option string.
fn split_letter_options(text: &str) -> Vec<String> {
    let mut cuts = vec![];
    for letter in ['A', 'B', 'C', 'D', 'E'] {
        let from = cuts.last().map_or(0, |&c| c + 2);
        let found = text[from.min(text.len())..]
            .match_indices(letter)
            .map(|(i, _)| from + i)
            .find(|&i| {
                let before_ok = i == 0 || text[..i].ends_with(char::is_whitespace);
                before_ok && matches!(text[i + 1..].chars().next(), Some(')') | Some('.'))
            });
        match found {
            Some(i) => cuts.push(i),
            None => break,
        }
    }
    cuts.iter()
        .enumerate()
        .map(|(i, &c)| {
            text[c + 2..cuts.get(i + 1).copied().unwrap_or(text.len())]
                .trim()
                .to_string()
        })
        .collect()
}

/// The `options` array, each without a leading `(A)`-style label (Gaokao writes them, MMLU not).
fn options(v: &Value) -> Result<Vec<String>, String> {
    let list = v
        .get("options")
        .and_then(Value::as_array)
        .ok_or("missing `options` array")?;
    Ok(list
        .iter()
        .map(|o| {
            let text = o
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| o.to_string());
            let label = text.len() >= 3
                && text.starts_with('(')
                && text[1..].starts_with(|c: char| c.is_ascii_uppercase())
                && text[2..].starts_with(')');
            if label { text[3..].to_string() } else { text }
        })
        .collect())
}

/// MMLU-STEM's file was written by pandas, which read the option text "None" as NaN and wrote
/// it back as a bare `NaN` (not JSON). Put the option text back; strings are left untouched.
fn bare_nan_to_none(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_str, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_str && rest.starts_with("NaN") {
            out.push_str("\"None\"");
            rest = &rest[3..];
            continue;
        }
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl Benchmark {
    /// Turn one JSON record into a problem (`Err` names the missing field).
    pub fn problem(self, v: &Value, line: usize) -> Result<Problem, String> {
        let need =
            |key: &str| s(v, key).ok_or_else(|| format!("missing or non-text field `{key}`"));
        let id = s(v, "idx")
            .or_else(|| s(v, "id"))
            .or_else(|| s(v, "unique_id"))
            .or_else(|| s(v, "ID"))
            .unwrap_or_else(|| line.to_string());
        let mut p = Problem {
            id,
            question: String::new(),
            gold: String::new(),
            level: None,
            subject: None,
            choices: vec![],
            solution: None,
        };
        match self {
            Benchmark::Gsm8k => {
                p.question = need("question")?;
                p.gold = gsm8k_gold(&need("answer")?).ok_or("`answer` has no `#### N`")?;
                p.solution = s(v, "answer");
            }
            Benchmark::Math => {
                p.question = need("problem")?;
                p.gold = math_gold(&need("solution")?).ok_or("`solution` has no \\boxed{}")?;
                p.level = s(v, "level");
                p.subject = s(v, "type");
                p.solution = s(v, "solution");
            }
            Benchmark::Math500 => {
                p.question = need("problem")?;
                p.gold = need("answer")?;
                p.level = s(v, "level");
                p.subject = s(v, "subject");
                p.solution = s(v, "solution");
            }
            Benchmark::Svamp => {
                p.question = format!("{} {}", need("Body")?.trim_end(), need("Question")?);
                p.gold = need("Answer")?;
            }
            Benchmark::Asdiv => {
                p.question = format!("{} {}", need("body")?.trim_end(), need("question")?);
                // "9 (apples)" -> "9"
                let a = need("answer")?;
                p.gold = a.split(" (").next().unwrap_or(&a).trim().to_string();
            }
            Benchmark::Mawps => {
                p.question = need("input")?;
                p.gold = need("target")?;
            }
            Benchmark::Cmath => {
                p.question = need("question")?;
                p.gold = need("golden")?;
                p.level = s(v, "grade");
            }
            Benchmark::MgsmZh => {
                p.question = v
                    .get("messages")
                    .and_then(|m| m.get(0))
                    .and_then(|m| m.get("content"))
                    .and_then(Value::as_str)
                    .ok_or("missing `messages[0].content`")?
                    .to_string();
                p.gold = need("answer")?;
            }
            Benchmark::GaokaoMathCloze => {
                p.question = need("question")?;
                p.gold = need("answer")?;
            }
            Benchmark::GaokaoMathQa => {
                p.question = need("question")?;
                // Some items have several correct options ("AD", "A B D").
                p.gold = need("label")?
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                p.choices = options(v)?;
            }
            Benchmark::Ocw => {
                p.question = need("problem")?;
                p.gold = need("answer")?;
            }
            Benchmark::Sat => {
                p.question = need("question")?;
                p.gold = need("Answer")?;
                p.choices = split_letter_options(&need("options")?);
            }
            Benchmark::MmluStem => {
                p.question = need("question")?;
                p.gold = need("answer")?;
                p.subject = s(v, "topic");
                p.choices = options(v)?;
            }
        }
        Ok(p)
    }

    /// Load a benchmark file; every bad line is an error naming file and line.
    pub fn load(self, path: &Path) -> Result<Vec<Problem>, DataError> {
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.into(),
            source,
        })?;
        let mut out = vec![];
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            let err = |message: String| DataError::Record {
                path: path.into(),
                line,
                message,
            };
            let text = std::str::from_utf8(raw).map_err(|e| err(format!("invalid UTF-8: {e}")))?;
            if text.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(text)
                .or_else(|e| serde_json::from_str(&bare_nan_to_none(text)).map_err(|_| e))
                .map_err(|e| err(format!("invalid JSON: {e}")))?;
            out.push(self.problem(&v, line).map_err(err)?);
        }
        Ok(out)
    }

    /// Load the shipped test set.
    pub fn load_default(self) -> Result<Vec<Problem>, DataError> {
        self.load(&self.default_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_benchmark_loads_with_gold_answers() {
        let expected = [
            (Benchmark::Gsm8k, 1319),
            (Benchmark::Math, 5000),
            (Benchmark::Math500, 500),
            (Benchmark::Svamp, 1000),
            (Benchmark::Asdiv, 2215),
            (Benchmark::Mawps, 2065),
            (Benchmark::Cmath, 1098),
            (Benchmark::MgsmZh, 250),
            (Benchmark::GaokaoMathCloze, 118),
            (Benchmark::GaokaoMathQa, 351),
            (Benchmark::Ocw, 272),
            (Benchmark::Sat, 32),
            (Benchmark::MmluStem, 3018),
        ];
        for (b, n) in expected {
            let probs = b.load_default().unwrap();
            assert_eq!(probs.len(), n, "{}", b.name());
            assert!(
                probs
                    .iter()
                    .all(|p| !p.question.is_empty() && !p.gold.is_empty()),
                "{}",
                b.name()
            );
            if b.is_multiple_choice() {
                let letters =
                    |g: &str| !g.is_empty() && g.chars().all(|c| ('A'..='E').contains(&c));
                assert!(
                    probs
                        .iter()
                        .all(|p| p.choices.len() >= 2 && letters(&p.gold)),
                    "{}",
                    b.name()
                );
            }
        }
        let gsm = Benchmark::Gsm8k.load_default().unwrap();
        assert_eq!(gsm[0].gold, "18");
        let qa = Benchmark::GaokaoMathQa.load_default().unwrap();
        assert_eq!(qa[0].choices[0], "$\\{x \\mid x>-1\\}$");
        let sat = Benchmark::Sat.load_default().unwrap();
        assert_eq!(
            sat[0].choices,
            vec!["$f(-6)=0$", "$f(6)=-6$", "$f(-6)=6$", "$f(0)=-6$"]
        );
        let asdiv = Benchmark::Asdiv.load_default().unwrap();
        assert_eq!(asdiv[0].gold, "9");
        let mawps = Benchmark::Mawps.load_default().unwrap();
        assert_eq!(mawps[0].gold, "43");
    }

    #[test]
    fn gsm8k_train_and_test_golds_extract_completely() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gsm8k");
        for f in ["train.jsonl", "test.jsonl"] {
            let probs = Benchmark::Gsm8k.load(&dir.join(f)).unwrap();
            assert!(probs.len() >= 1319);
            for p in &probs {
                assert!(
                    p.gold.parse::<f64>().is_ok(),
                    "{f} {}: gold {:?}",
                    p.id,
                    p.gold
                );
            }
        }
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let dir = std::env::temp_dir().join(format!("dsmath-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.jsonl");
        std::fs::write(
            &f,
            b"{\"question\": \"q\", \"answer\": \"#### 3\"}\n{\"question\": \"q\"}\n",
        )
        .unwrap();
        let e = Benchmark::Gsm8k.load(&f).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl:2") && e.contains("answer"), "{e}");
        std::fs::write(
            &f,
            b"{\"question\": \"q\", \"answer\": \"#### 3\"}\n\xff\xfe\n",
        )
        .unwrap();
        let e = Benchmark::Gsm8k.load(&f).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl:2") && e.contains("UTF-8"), "{e}");
        std::fs::write(&f, b"{not json\n").unwrap();
        let e = Benchmark::Gsm8k.load(&f).unwrap_err().to_string();
        assert!(
            e.contains("bad.jsonl:1") && e.contains("invalid JSON"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
