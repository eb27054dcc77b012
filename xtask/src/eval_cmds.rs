//! `cargo xtask eval`: run a dsmath model on benchmarks (`--model`), or grade completions from
//! any engine with dsmath's grader (`--grade FILE.jsonl`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::backend::Backend;
use clap::Args;
use dsmath_eval::bench::Benchmark;
use dsmath_eval::prompts::PromptKind;
use dsmath_eval::run::{BenchRun, Mode, evaluate};
use dsmath_eval::sandbox::{Sandbox, SandboxConfig};
use dsmath_model::{SamplingParams, load_model_and_tokenizer};
use dsmath_train::ModelEngine;
use serde_json::{Value, json};

#[derive(Args)]
pub struct EvalArgs {
    /// HF model directory to evaluate (config.json, *.safetensors, tokenizer.json)
    #[arg(long, conflicts_with = "grade")]
    model: Option<PathBuf>,
    /// Grade existing completions instead: JSONL lines `{"question", "completion", "gold"}` (other fields kept)
    #[arg(long, required_unless_present = "model")]
    grade: Option<PathBuf>,
    /// Benchmarks, comma-separated (gsm8k, math, math500, svamp, asdiv, mawps, cmath, mgsm_zh,
    /// gaokao_math_cloze, gaokao_math_qa, ocw, sat_math, mmlu_stem); with --grade, whose rules apply
    #[arg(long, default_value = "gsm8k")]
    bench: String,
    /// Benchmark file to use instead of the shipped one (one benchmark only)
    #[arg(long)]
    data: Option<PathBuf>,
    /// greedy, maj@K (vote over equivalence classes) or pass@K (unbiased)
    #[arg(long, default_value = "greedy")]
    mode: String,
    /// cot (zero-shot, \boxed{}), fewshot (8-shot GSM8K / 4-shot MATH / 3-shot choice), pot, tool
    #[arg(long, default_value = "cot")]
    prompt: String,
    /// Evaluate only the first N problems of each benchmark
    #[arg(long)]
    limit: Option<usize>,
    /// Output: a directory for --model runs (samples.jsonl, report.md/json, accuracy.svg),
    /// the verdicts JSONL for --grade
    #[arg(long)]
    out: Option<PathBuf>,
    /// Problems per generation batch
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    /// Prompts are cut to their last N tokens
    #[arg(long, default_value_t = 4096)]
    max_prompt_tokens: usize,
    /// Sampling temperature for maj@K / pass@K
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `cot` on a checkpoint with a chat template: DeepSeekMath's plain "User: ... Assistant:"
    /// text instead of one user turn in the checkpoint's own template
    #[arg(long)]
    plain_prompt: bool,
    /// Wall-clock seconds per executed program (pot / tool)
    #[arg(long, default_value_t = 10.0)]
    code_timeout: f64,
}

pub fn eval<B: Backend>(args: &EvalArgs, device: &B::Device) -> anyhow::Result<()> {
    match (&args.model, &args.grade) {
        (Some(model), _) => eval_model::<B>(args, model, device),
        (None, Some(file)) => grade_file(args, file),
        (None, None) => bail!("give --model DIR or --grade FILE.jsonl"),
    }
}

fn eval_model<B: Backend>(
    args: &EvalArgs,
    dir: &std::path::Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let mode = Mode::parse(&args.mode)
        .with_context(|| format!("--mode {}: expected greedy, maj@K or pass@K", args.mode))?;
    let kind = PromptKind::from_name(&args.prompt).with_context(|| {
        format!(
            "--prompt {}: expected cot, fewshot, pot or tool",
            args.prompt
        )
    })?;
    let benches: Vec<Benchmark> = args
        .bench
        .split(',')
        .map(|b| Benchmark::from_name(b.trim()))
        .collect::<Result<_, _>>()?;
    if args.data.is_some() && benches.len() != 1 {
        bail!("--data names one file: give exactly one --bench with it");
    }
    let sandbox = if kind.runs_code() {
        let cfg = SandboxConfig {
            timeout: std::time::Duration::from_secs_f64(args.code_timeout),
            cpu_seconds: args.code_timeout.ceil() as u64,
            ..Default::default()
        };
        let sb = Sandbox::new(cfg)
            .context("prompt `pot`/`tool` runs Python: the sandbox needs python3")?;
        Some(sb)
    } else {
        None
    };
    let (ckpt, tok) = load_model_and_tokenizer::<B>(dir, device)?;
    let sampling = SamplingParams {
        n: 1,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: 0,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        stop: vec![],
        ignore_eos: false,
        first_prompt: 0,
    };
    let mut engine = ModelEngine::new(&ckpt.model, &tok, sampling, args.max_prompt_tokens);
    if !args.plain_prompt {
        engine.chat = dsmath_model::chat::ChatTemplate::from_dir(dir)?;
    }
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/eval"));
    let start = Instant::now();
    let mut runs: Vec<BenchRun> = vec![];
    for bench in benches {
        let path = args.data.clone().unwrap_or_else(|| bench.default_path());
        let mut problems = bench.load(&path)?;
        if let Some(n) = args.limit {
            problems.truncate(n);
        }
        let bar = indicatif::ProgressBar::new(problems.len() as u64);
        bar.set_style(indicatif::ProgressStyle::with_template(&format!(
            "{:<10} {{bar:40}} {{pos}}/{{len}} problems [{{elapsed}} < {{eta}}] {{msg}}",
            bench.name()
        ))?);
        let t0 = Instant::now();
        let tokens0 = engine.generated_tokens;
        let run = evaluate(
            &mut engine,
            bench,
            &problems,
            kind,
            mode,
            sandbox.as_ref(),
            args.batch,
            &mut |done| bar.set_position(done as u64),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", bench.name()))?;
        bar.finish_and_clear();
        let tok_s = (engine.generated_tokens - tokens0) as f64 / t0.elapsed().as_secs_f64();
        println!(
            "{:<10} {} {}: {:.1}% of {} problems ({tok_s:.1} tok/s)",
            bench.name(),
            kind.name(),
            mode.name(),
            run.accuracy(),
            run.problems.len()
        );
        runs.push(run);
    }
    let mut notes = vec![
        format!("model: {}", dir.display()),
        format!(
            "prompt {}, {}, max_new_tokens {}, batch {}",
            kind.name(),
            mode.name(),
            args.max_new_tokens,
            args.batch
        ),
        match (&engine.chat, kind) {
            (Some(t), PromptKind::Cot) => format!(
                "cot prompt: one user turn in the chat template of {}",
                t.path.display()
            ),
            _ => "prompt text: dsmath's own format".to_string(),
        },
    ];
    if mode.sampled() {
        notes.push(format!(
            "sampling: temperature {}, top_p {}, seed {}",
            args.temperature, args.top_p, args.seed
        ));
    }
    if let Some(sb) = &sandbox {
        notes.push(format!("sandbox: {}", sb.enforced().join("; ")));
    }
    notes.push(format!(
        "{} tokens generated in {:.1}s",
        engine.generated_tokens,
        start.elapsed().as_secs_f64()
    ));
    let meta = json!({"model": dir, "prompt": kind.name(), "mode": mode.name(), "limit": args.limit, "seed": args.seed});
    dsmath_eval::report::write(&out_dir, "dsmath evaluation", &runs, &notes, meta)
        .map_err(anyhow::Error::msg)?;
    println!("report: {}", out_dir.join("report.md").display());
    Ok(())
}

fn grade_file(args: &EvalArgs, file: &std::path::Path) -> anyhow::Result<()> {
    let bench = Benchmark::from_name(&args.bench)?;
    let out_path = args
        .out
        .clone()
        .context("--grade needs --out VERDICTS.jsonl")?;
    let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
    let tmp = out_path.with_extension("jsonl.tmp");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?,
    );
    let (mut n, mut correct) = (0usize, 0usize);
    let mut rejects = vec![];
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let parsed = std::str::from_utf8(raw)
            .map_err(|e| format!("invalid UTF-8: {e}"))
            .and_then(|t| {
                if t.trim().is_empty() {
                    Err(String::new())
                } else {
                    Ok(t)
                }
            })
            .and_then(|t| {
                serde_json::from_str::<Value>(t).map_err(|e| format!("invalid JSON: {e}"))
            })
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
                eprintln!("{}:{line}: {reason}", file.display());
                rejects.push(json!({"file": file, "line": line, "reason": reason}));
                continue;
            }
        };
        let n_options = row
            .get("choices")
            .and_then(Value::as_array)
            .map_or(5, Vec::len);
        let g = dsmath_eval::grade(bench, &completion, &gold, n_options);
        n += 1;
        correct += g.correct as usize;
        row["extracted"] = json!(g.extracted);
        row["source"] = json!(g.source);
        row["correct"] = json!(g.correct);
        row["reason"] = json!(g.reason);
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, &out_path)?;
    if !rejects.is_empty() {
        let path = out_path.with_extension("rejects.jsonl");
        std::fs::write(
            &path,
            rejects.iter().map(|r| format!("{r}\n")).collect::<String>(),
        )?;
        eprintln!(
            "{} line(s) rejected, reasons in {}",
            rejects.len(),
            path.display()
        );
    }
    let acc = if n > 0 {
        100.0 * correct as f64 / n as f64
    } else {
        0.0
    };
    println!(
        "{}: {correct}/{n} correct, accuracy {acc:.2}% -> {}",
        bench.name(),
        out_path.display()
    );
    Ok(())
}
