//! `cargo xtask eval --grade FILE.jsonl`: grade completions from any engine with dsmath's grader.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use dsmath_eval::bench::Benchmark;
use dsmath_eval::extract::{choice_answer, extract_answer};
use dsmath_eval::is_equiv;
use serde_json::{Value, json};

#[derive(Args)]
pub struct EvalArgs {
    /// Grade existing completions: JSONL lines `{"question", "completion", "gold"}` (other fields kept)
    #[arg(long)]
    grade: PathBuf,
    /// Benchmark whose answer rules apply (e.g. math, gsm8k, mmlu_stem for option letters)
    #[arg(long, default_value = "math")]
    bench: String,
    /// Verdicts JSONL: each input line plus `extracted`, `correct`, `reason`
    #[arg(long)]
    out: PathBuf,
}

pub fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    let bench = Benchmark::from_name(&args.bench)?;
    let bytes = std::fs::read(&args.grade).with_context(|| format!("{}", args.grade.display()))?;
    let tmp = args.out.with_extension("jsonl.tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?);
    let (mut n, mut correct) = (0usize, 0usize);
    let mut rejects = vec![];
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let parsed = std::str::from_utf8(raw)
            .map_err(|e| format!("invalid UTF-8: {e}"))
            .and_then(|t| if t.trim().is_empty() { Err(String::new()) } else { Ok(t) })
            .and_then(|t| serde_json::from_str::<Value>(t).map_err(|e| format!("invalid JSON: {e}")))
            .and_then(|v| {
                let field = |k: &str| match v.get(k) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(Value::Number(x)) => Ok(x.to_string()),
                    _ => Err(format!("missing or non-text field `{k}`")),
                };
                Ok((field("completion")?, field("gold")?, v))
            });
        let (completion, gold, mut row) = match parsed {
            Ok(x) => x,
            Err(reason) if reason.is_empty() => continue,
            Err(reason) => {
                eprintln!("{}:{line}: {reason}", args.grade.display());
                rejects.push(json!({"file": args.grade, "line": line, "reason": reason}));
                continue;
            }
        };
        let (extracted, verdict) = if bench.is_multiple_choice() {
            let letter = choice_answer(&completion, 5);
            let want: String = gold.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
            let ok = !letter.is_empty() && letter == want;
            (letter, dsmath_eval::Verdict { correct: ok, reason: if ok { "choice" } else { "different choice" } })
        } else {
            let (a, _) = extract_answer(&completion);
            let v = is_equiv(&a, &gold);
            (a, v)
        };
        n += 1;
        correct += verdict.correct as usize;
        row["extracted"] = json!(extracted);
        row["correct"] = json!(verdict.correct);
        row["reason"] = json!(verdict.reason);
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, &args.out)?;
    if !rejects.is_empty() {
        let path = args.out.with_extension("rejects.jsonl");
        std::fs::write(&path, rejects.iter().map(|r| format!("{r}\n")).collect::<String>())?;
        eprintln!("{} line(s) rejected, reasons in {}", rejects.len(), path.display());
    }
    let acc = if n > 0 { 100.0 * correct as f64 / n as f64 } else { 0.0 };
    println!("{}: {correct}/{n} correct, accuracy {acc:.2}% -> {}", bench.name(), args.out.display());
    Ok(())
}
