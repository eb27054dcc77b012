//! `cargo xtask generate | info | score | bench`: the model crate from the command line.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::Backend;
use clap::{Args, ValueEnum};
use dsmath_model::weights::SafetensorsDir;
use dsmath_model::{
    LlamaConfig, SamplingParams, SaveDtype, generate as run_generate, load_model_and_tokenizer,
};
use serde_json::{Value, json};

use crate::backend::BackendKind;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// the prompt as given
    Raw,
    /// DeepSeekMath instruct: "User: {q}\nPlease reason step by step, ... \boxed{}.\n\nAssistant:"
    Instruct,
    /// One user turn (the prompt) in the checkpoint's chat template, with the assistant header
    Chat,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// HF model directory (config.json, *.safetensors, tokenizer.json)
    #[arg(long)]
    model: PathBuf,
    /// Prompt text
    #[arg(long)]
    prompt: String,
    /// How the prompt is wrapped
    #[arg(long, value_enum, default_value = "raw")]
    format: Format,
    /// Same as `--format chat`: the prompt as one user turn in the checkpoint's chat template
    #[arg(long)]
    chat: bool,
    /// Samples to draw (they share one prefill)
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// Sampling temperature; 0 = greedy
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling threshold (1 = off)
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Keep only the k most likely tokens (0 = off)
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop when the text contains this string (repeatable)
    #[arg(long)]
    stop: Vec<String>,
}

pub fn generate<B: Backend>(args: &GenerateArgs, device: &B::Device) -> anyhow::Result<()> {
    let (ckpt, tok) = load_model_and_tokenizer::<B>(&args.model, device)?;
    let format = if args.chat { Format::Chat } else { args.format };
    let prompt = match format {
        Format::Raw => args.prompt.clone(),
        Format::Instruct => dsmath_eval::prompts::instruct(&args.prompt),
        Format::Chat => dsmath_model::chat::ChatTemplate::from_dir(&args.model)?
            .with_context(|| format!("{}: --format chat needs a chat template (tokenizer_config.json or chat_template.jinja)", args.model.display()))?
            .user_prompt(&args.prompt)?,
    };
    let ids = tok.encode_prompt(&prompt)?;
    let params = SamplingParams {
        n: args.n,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        stop: args.stop.clone(),
        ignore_eos: false,
        first_prompt: 0,
    };
    let start = Instant::now();
    let mut out = std::io::stdout();
    print!("{prompt}");
    out.flush()?;
    // Stream sample 0 live; the others are printed when done.
    let mut show = |_: usize, i: usize, text: &str| {
        if i == 0 {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
    };
    let samples = run_generate(
        &ckpt.model,
        &tok,
        std::slice::from_ref(&ids),
        &params,
        Some(&mut show),
    )?;
    println!();
    for s in samples.iter().skip(1) {
        println!("\n--- sample {} ---\n{}{}", s.index, prompt, s.text);
    }
    let tokens: usize = samples.iter().map(|s| s.tokens.len()).sum();
    let secs = start.elapsed().as_secs_f64();
    for s in &samples {
        let lp: f32 = s.logprobs.iter().sum();
        eprintln!(
            "[sample {}] {} tokens, finish {:?}, sum logprob {lp:.3}",
            s.index,
            s.tokens.len(),
            s.finish
        );
    }
    eprintln!(
        "[{} prompt tokens, {tokens} generated in {secs:.2}s: {:.1} tok/s]",
        ids.len(),
        tokens as f64 / secs
    );
    Ok(())
}

#[derive(Args)]
pub struct InfoArgs {
    /// HF model directory (or a directory holding only config.json)
    #[arg(long)]
    model: PathBuf,
}

pub fn info(args: &InfoArgs) -> anyhow::Result<()> {
    let cfg = LlamaConfig::from_file(args.model.join("config.json"))?;
    let params = cfg.num_parameters();
    let gib = |bytes: f64| bytes / (1u64 << 30) as f64;
    println!("{}", args.model.display());
    println!(
        "  architecture      {:?} ({})",
        cfg.architecture()?,
        cfg.model_type
    );
    println!(
        "  layers {}  hidden {}  heads {} (kv {})  head_dim {}  intermediate {}  vocab {}",
        cfg.num_hidden_layers,
        cfg.hidden_size,
        cfg.num_attention_heads,
        cfg.num_kv_heads(),
        cfg.head_dim(),
        cfg.intermediate_size,
        cfg.vocab_size
    );
    let rope = cfg.rope()?;
    println!(
        "  rope theta {}  scaling {:?}  tied embeddings {}",
        rope.theta, rope.scaling, cfg.tie_word_embeddings
    );
    println!(
        "  parameters        {params} ({:.3} B)",
        params as f64 / 1e9
    );
    for (name, bytes) in [("f32", 4.0), ("bf16/f16", 2.0)] {
        let weights = params as f64 * bytes;
        // KV cache per token: 2 (k, v) x layers x kv_heads x head_dim values.
        let kv_token =
            2.0 * (cfg.num_hidden_layers * cfg.num_kv_heads() * cfg.head_dim()) as f64 * bytes;
        println!(
            "  {name:<9} weights {:.2} GiB; KV cache {:.1} KiB/token, {:.2} GiB for 64 x 1024 tokens (GRPO group)",
            gib(weights),
            kv_token / 1024.0,
            gib(kv_token * 64.0 * 1024.0)
        );
    }
    println!(
        "  training (AdamW, f32 master + 2 moments + grads): {:.2} GiB before activations",
        gib(params as f64 * 16.0)
    );
    if let Ok(st) = SafetensorsDir::open(&args.model) {
        println!(
            "  on disk           {} tensors in safetensors",
            st.names().count()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct ScoreArgs {
    /// HF model directory
    #[arg(long)]
    model: PathBuf,
    /// JSONL, one `{"ids": [...]}` or `{"text": "..."}` a line
    #[arg(long)]
    input: PathBuf,
    /// Output JSONL: `{"ids", "logprobs"[, "logits"]}` a line; bad lines go to OUT.rejects.jsonl
    #[arg(long)]
    out: PathBuf,
    /// Also write every position's logits (f32)
    #[arg(long)]
    full_logits: bool,
    /// Sequences scored per forward pass
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
}

pub fn score<B: Backend>(args: &ScoreArgs, device: &B::Device) -> anyhow::Result<()> {
    let (ckpt, tok) = load_model_and_tokenizer::<B>(&args.model, device)?;
    let file =
        std::fs::File::open(&args.input).with_context(|| format!("{}", args.input.display()))?;
    let vocab = ckpt.config.vocab_size;
    let mut seqs: Vec<(usize, Vec<u32>)> = vec![];
    let mut rejects: Vec<Value> = vec![];
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let lineno = n + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                rejects.push(json!({"file": args.input, "line": lineno, "reason": format!("unreadable line: {e}")}));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Result<Vec<u32>, String> = serde_json::from_str::<Value>(&line)
            .map_err(|e| format!("invalid JSON: {e}"))
            .and_then(|v| {
                if let Some(ids) = v.get("ids") {
                    serde_json::from_value::<Vec<u32>>(ids.clone())
                        .map_err(|e| format!("`ids`: {e}"))
                } else if let Some(text) = v.get("text").and_then(Value::as_str) {
                    tok.encode(text).map_err(|e| e.to_string())
                } else {
                    Err("needs `ids` (array of token ids) or `text` (string)".into())
                }
            })
            .and_then(|ids| match ids.iter().find(|&&t| t as usize >= vocab) {
                Some(bad) => Err(format!("token id {bad} outside the vocabulary ({vocab})")),
                None if ids.is_empty() => Err("empty sequence".into()),
                None => Ok(ids),
            });
        match parsed {
            Ok(ids) => seqs.push((lineno, ids)),
            Err(reason) => {
                rejects.push(json!({"file": args.input, "line": lineno, "reason": reason}))
            }
        }
    }
    let bar = indicatif::ProgressBar::new(seqs.len() as u64);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "score {bar:40} {pos}/{len} seqs [{elapsed} < {eta}]",
    )?);
    let tmp = args.out.with_extension("jsonl.tmp");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?,
    );
    for chunk in seqs.chunks(args.batch_size.max(1)) {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|(_, s)| s.clone()).collect();
        let scored = dsmath_model::score(&ckpt.model, &ids, tok.pad_id, args.full_logits)?;
        for ((_, seq), (logprobs, logits)) in chunk.iter().zip(scored) {
            let mut row = json!({"ids": seq, "logprobs": logprobs});
            if let Some(l) = logits {
                row["logits"] = json!(l);
            }
            serde_json::to_writer(&mut out, &row)?;
            out.write_all(b"\n")?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, &args.out)?;
    if !rejects.is_empty() {
        let path = args.out.with_extension("rejects.jsonl");
        let text: String = rejects.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(&path, text)?;
        eprintln!(
            "{} line(s) rejected, reasons in {}",
            rejects.len(),
            path.display()
        );
    }
    eprintln!("scored {} sequences -> {}", seqs.len(), args.out.display());
    Ok(())
}

#[derive(Args)]
pub struct ConvertArgs {
    /// HF model directory to read
    #[arg(long, required_unless_present = "gguf", conflicts_with = "gguf")]
    model: Option<PathBuf>,
    /// GGUF file to read (llama.cpp's format; dequantized to f32 / bf16)
    #[arg(long)]
    gguf: Option<PathBuf>,
    /// Directory to write (config.json, model.safetensors, tokenizer files)
    #[arg(long)]
    out: PathBuf,
    /// Store weights as bf16 instead of f32
    #[arg(long)]
    bf16: bool,
}

pub fn convert<B: Backend>(args: &ConvertArgs, device: &B::Device) -> anyhow::Result<()> {
    let dtype = if args.bf16 {
        SaveDtype::BF16
    } else {
        SaveDtype::F32
    };
    if let Some(gguf) = &args.gguf {
        let start = Instant::now();
        let done = dsmath_model::gguf::convert::convert(gguf, &args.out, dtype)?;
        eprintln!(
            "wrote {} from {} ({} tensors, {:.1}M parameters, {dtype:?}, {:.1}s)",
            args.out.display(),
            gguf.display(),
            done.tensors,
            done.config.num_parameters() as f64 / 1e6,
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let model = args
        .model
        .as_ref()
        .context("--model or --gguf is required")?;
    let ckpt = dsmath_model::load_model::<B>(model, device)?;
    dsmath_model::save_model(&args.out, &ckpt.config, &ckpt.model, Some(model), dtype)?;
    eprintln!("wrote {} ({dtype:?})", args.out.display());
    Ok(())
}

#[derive(Args)]
pub struct BenchArgs {
    /// HF model directory
    #[arg(long)]
    model: PathBuf,
    /// Prompt length in tokens
    #[arg(long, default_value_t = 64)]
    prompt_len: usize,
    /// Tokens decoded per sequence
    #[arg(long, default_value_t = 64)]
    new_tokens: usize,
    /// Batch sizes to measure decode at
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 16])]
    batch: Vec<usize>,
    /// Timed repetitions (the best is reported)
    #[arg(long, default_value_t = 3)]
    reps: usize,
}

/// Prints one JSON object: prefill tokens/s and decode tokens/s per batch size.
pub fn bench<B: Backend>(
    args: &BenchArgs,
    device: &B::Device,
    kind: BackendKind,
) -> anyhow::Result<()> {
    let (ckpt, tok) = load_model_and_tokenizer::<B>(&args.model, device)?;
    let vocab = tok.inner.get_vocab_size(true).min(ckpt.config.vocab_size) as u32;
    // Deterministic pseudo-random prompt ids avoiding special tokens 0..3.
    let prompt: Vec<u32> = (0..args.prompt_len)
        .map(|i| 3 + ((i as u32 * 7919 + 13) % (vocab - 3)))
        .collect();
    let best = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        f()?; // warm-up
        let mut best = f64::INFINITY;
        for _ in 0..args.reps {
            let t = Instant::now();
            f()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    // Prefill: one forward pass over a batch-1 prompt, logits included.
    let prefill = SamplingParams {
        max_new_tokens: 1,
        ignore_eos: true,
        first_prompt: 0,
        ..SamplingParams::default()
    };
    let t_prefill = best(&mut || {
        run_generate(
            &ckpt.model,
            &tok,
            std::slice::from_ref(&prompt),
            &prefill,
            None,
        )
        .map(|_| ())
        .map_err(Into::into)
    })?;
    let mut result = json!({
        "engine": "dsmath",
        "backend": format!("{kind:?}").to_lowercase(),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "params": ckpt.config.num_parameters(),
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "prefill_tok_s": args.prompt_len as f64 / t_prefill,
    });
    for &b in &args.batch {
        let prompts = vec![prompt.clone(); b];
        let full = SamplingParams {
            max_new_tokens: args.new_tokens,
            ignore_eos: true,
            first_prompt: 0,
            ..SamplingParams::default()
        };
        let t_full = best(&mut || {
            run_generate(&ckpt.model, &tok, &prompts, &full, None)
                .map(|_| ())
                .map_err(Into::into)
        })?;
        let one = SamplingParams {
            max_new_tokens: 1,
            ignore_eos: true,
            first_prompt: 0,
            ..SamplingParams::default()
        };
        let t_one = best(&mut || {
            run_generate(&ckpt.model, &tok, &prompts, &one, None)
                .map(|_| ())
                .map_err(Into::into)
        })?;
        // Decode rate: the tokens after the first, over the time after prefill.
        let decode = (b * (args.new_tokens - 1)) as f64 / (t_full - t_one).max(1e-9);
        result[format!("decode_b{b}_tok_s")] = json!(decode);
    }
    println!("{result}");
    Ok(())
}
