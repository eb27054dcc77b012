//! `cargo xtask rl-bench`: GRPO vs PPO (with its value model) from one SFT model on one batch
//! shape, measured in one run: step time (exploration / update) and peak heap (GRPO issue, item
//! 9); and the rollout throughput that `scripts/bench_rollout_vs_hf.py` compares with HF
//! transformers `generate` on the same prompts.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::Backend;
use clap::Args;
use dsmath_model::{SamplingParams, load_model_and_tokenizer};
use dsmath_train::arith::{Split, problems};
use dsmath_train::rl::loss::Algorithm;
use dsmath_train::rl::run::{GrpoConfig, GrpoRun};
use serde_json::json;

use crate::peak_alloc;

#[derive(Args)]
pub struct RlBenchArgs {
    /// SFT model directory (default: the demo's SFT model, shipped as the GRPO test's fixture)
    #[arg(long, default_value = "train/tests/fixtures/arith_sft")]
    model: PathBuf,
    /// Instead of `--model`'s weights, a random model of this preset (bench_25m, small, ...) with its
    /// tokenizer: the same shapes of work at a size where the critic's memory shows
    #[arg(long)]
    preset: Option<String>,
    /// Questions per step
    #[arg(long, default_value_t = 8)]
    prompts: usize,
    /// Samples per question (G)
    #[arg(long, default_value_t = 8)]
    group: usize,
    #[arg(long, default_value_t = 48)]
    max_new_tokens: usize,
    /// Steps timed per algorithm, after one warm-up step
    #[arg(long, default_value_t = 4)]
    steps: u64,
    /// Comma-separated algorithms to compare
    #[arg(long, default_value = "grpo,ppo")]
    algorithms: String,
    /// Only time exploration (G samples per question, temperature 1) `--reps` times
    #[arg(long)]
    rollout_only: bool,
    #[arg(long, default_value_t = 3)]
    reps: usize,
    #[arg(long, default_value = "runs/bench/rl")]
    out: PathBuf,
}

/// A model preset by name, or an error listing the known ones.
fn preset(name: &str, vocab: usize) -> anyhow::Result<dsmath_model::LlamaConfig> {
    dsmath_model::LlamaConfig::preset(name, vocab).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown preset `{name}` ({})",
            dsmath_model::LlamaConfig::PRESETS.join(", ")
        )
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

pub fn rl_bench<B: Backend>(args: &RlBenchArgs, device: &B::Device) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}", args.out.display()))?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // RL prompts: the demo's generated arithmetic problems (train split).
    let probs = problems(7, 512, Split::Train);
    let prompts_path = args.out.join("prompts.jsonl");
    let lines: String = probs
        .iter()
        .map(|p| format!("{}\n", json!({"question": p.question, "gold": p.gold})))
        .collect();
    std::fs::write(&prompts_path, lines).with_context(|| format!("{}", prompts_path.display()))?;

    let model_dir = match &args.preset {
        None => args.model.clone(),
        Some(p) => {
            let (base, tok) = load_model_and_tokenizer::<B>(&args.model, device)?;
            let base = base.config;
            let vocab = tok.inner.get_vocab_size(true);
            let mut cfg = preset(p, vocab)?;
            (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) = (
                base.bos_token_id,
                base.eos_token_id.clone(),
                base.pad_token_id,
            );
            let dir = args.out.join(format!("model-{p}"));
            let m = dsmath_model::init_model::<B>(&cfg, 0, device)?;
            dsmath_model::save_model(
                &dir,
                &cfg,
                &m,
                Some(&args.model),
                dsmath_model::SaveDtype::F32,
            )?;
            dir
        }
    };
    if args.rollout_only {
        let (ck, tok) = load_model_and_tokenizer::<B>(&model_dir, device)?;
        let ids: Vec<Vec<u32>> = probs[..args.prompts]
            .iter()
            .map(|p| tok.encode(&dsmath_eval::prompts::instruct(&p.question)))
            .collect::<Result<_, _>>()?;
        let params = SamplingParams {
            n: args.group,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens: args.max_new_tokens,
            seed: 1,
            stop: vec![],
            ignore_eos: false,
            first_prompt: 0,
        };
        let mut runs = vec![];
        for rep in 0..=args.reps {
            let t0 = Instant::now();
            let out = dsmath_model::generate(
                &ck.model,
                &tok,
                &ids,
                &SamplingParams {
                    seed: rep as u64,
                    ..params.clone()
                },
                None,
            )?;
            let secs = t0.elapsed().as_secs_f64();
            let tokens: usize = out.iter().map(|s| s.tokens.len()).sum();
            if rep > 0 {
                runs.push((tokens, secs)); // rep 0 warms up
            }
        }
        let (tokens, secs) = runs.iter().fold((0, 0.0), |a, r| (a.0 + r.0, a.1 + r.1));
        let r = json!({"engine": "dsmath", "threads": threads, "prompt_ids": ids, "group": args.group, "max_new_tokens": args.max_new_tokens,
            "eos": tok.eos_ids, "pad": tok.pad_id, "tokens": tokens, "seconds": secs, "tok_s": tokens as f64 / secs});
        println!("{r}");
        return Ok(());
    }

    let mut rows = vec![];
    for alg in args.algorithms.split(',') {
        let algorithm: Algorithm = serde_json::from_value(json!(alg.trim()))
            .with_context(|| format!("algorithm `{alg}`"))?;
        let dir = args.out.join(alg.trim());
        let _ = std::fs::remove_dir_all(&dir);
        let mut cfg = GrpoConfig::default();
        cfg.model.init = Some(model_dir.display().to_string());
        cfg.data.prompts = prompts_path.display().to_string();
        cfg.grpo.group_size = args.group;
        cfg.grpo.prompts_per_step = args.prompts;
        cfg.grpo.micro_batch = cfg
            .grpo
            .micro_batch
            .min(cfg.grpo.group_size * cfg.grpo.prompts_per_step);
        cfg.grpo.max_new_tokens = args.max_new_tokens;
        cfg.grpo.loss.algorithm = algorithm;
        cfg.schedule.peak_lr = 2e-4;
        cfg.train.steps = args.steps + 1;
        cfg.train.checkpoint_every = 0;
        let before = peak_alloc::live();
        peak_alloc::reset_peak();
        let mut run = GrpoRun::<burn_autodiff::Autodiff<B>>::new(cfg, &dir, device)?;
        let loaded = peak_alloc::live();
        let mut m = vec![];
        for _ in 0..=args.steps {
            m.push(run.step_once()?);
        }
        let peak = peak_alloc::peak();
        // What stays between steps: policy, reference, critic, optimizer states.
        let state = peak_alloc::live();
        drop(run);
        let timed = &m[1..];
        let row = json!({
            "algorithm": alg.trim(),
            "step_s": median(timed.iter().map(|x| x.step_seconds).collect()),
            "rollout_s": median(timed.iter().map(|x| x.rollout_seconds).collect()),
            "update_s": median(timed.iter().map(|x| x.step_seconds - x.rollout_seconds).collect()),
            "rollout_tok_s": median(timed.iter().map(|x| x.rollout_tokens_per_s).collect()),
            "response_len": timed.iter().map(|x| x.stats.response_len_mean).sum::<f64>() / timed.len().max(1) as f64,
            "models_mib": (loaded.saturating_sub(before)) as f64 / (1 << 20) as f64,
            "state_mib": (state.saturating_sub(before)) as f64 / (1 << 20) as f64,
            "peak_mib": (peak.saturating_sub(before)) as f64 / (1 << 20) as f64,
        });
        eprintln!("{row}");
        rows.push(row);
    }
    println!(
        "\nmodel {}: {} questions x {} samples, {} new tokens max, {} timed steps (median), {threads} threads; heap above the pre-run baseline",
        model_dir.display(),
        args.prompts,
        args.group,
        args.max_new_tokens,
        args.steps
    );
    println!(
        "{:<6} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12} {:>12}",
        "alg",
        "step s",
        "rollout s",
        "update s",
        "rollout t/s",
        "models MiB",
        "state MiB",
        "peak MiB"
    );
    for r in &rows {
        println!(
            "{:<6} {:>10.3} {:>10.3} {:>10.3} {:>12.1} {:>12.1} {:>12.1} {:>12.1}",
            r["algorithm"].as_str().unwrap_or(""),
            r["step_s"].as_f64().unwrap_or(0.0),
            r["rollout_s"].as_f64().unwrap_or(0.0),
            r["update_s"].as_f64().unwrap_or(0.0),
            r["rollout_tok_s"].as_f64().unwrap_or(0.0),
            r["models_mib"].as_f64().unwrap_or(0.0),
            r["state_mib"].as_f64().unwrap_or(0.0),
            r["peak_mib"].as_f64().unwrap_or(0.0)
        );
    }
    if rows.len() == 2 {
        let f = |k: &str| {
            rows[1][k].as_f64().unwrap_or(0.0) / rows[0][k].as_f64().unwrap_or(1.0).max(1e-12)
        };
        println!(
            "{} / {}: step time {:.2}x, update time {:.2}x, state between steps {:.2}x, peak heap {:.2}x",
            rows[1]["algorithm"],
            rows[0]["algorithm"],
            f("step_s"),
            f("update_s"),
            f("state_mib"),
            f("peak_mib")
        );
    }
    println!("{}", json!({"rows": rows}));
    Ok(())
}

#[derive(Args)]
pub struct TrainBenchArgs {
    /// Model preset (random weights): bench_25m, llama_1b, small, tiny
    #[arg(long, default_value = "bench_25m")]
    preset: String,
    #[arg(long, default_value_t = 8192)]
    vocab: usize,
    /// Rows per step
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 256)]
    seq_len: usize,
    /// Timed steps, after one warm-up step
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Peak FLOP/s of the device (e.g. 989e12 for an H100/H200 in bf16): adds MFU to the output
    #[arg(long)]
    peak_flops: Option<f64>,
    /// Recompute memory-bound activations in the backward pass (`train.gradient_checkpointing`)
    #[arg(long)]
    checkpointing: bool,
    /// Compute dtype (`train.dtype`): f32, or mixed precision bf16 / f16
    #[arg(long, default_value = "f32")]
    dtype: String,
}

/// One JSON line: training tokens/s, step time, peak heap and process peak RSS, achieved FLOP/s
/// (6 N + 12 L d s per token, the PaLM count) and the backend's measured matmul peak.
pub fn train_bench<B: Backend>(
    args: &TrainBenchArgs,
    device: &B::Device,
    kind: crate::backend::BackendKind,
) -> anyhow::Result<()> {
    if args.checkpointing {
        train_bench_with::<
            burn_autodiff::Autodiff<B, burn_autodiff::checkpoint::strategy::BalancedCheckpointing>,
        >(args, device, kind)
    } else {
        train_bench_with::<burn_autodiff::Autodiff<B>>(args, device, kind)
    }
}

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn train_bench_with<AB: burn::tensor::backend::AutodiffBackend>(
    args: &TrainBenchArgs,
    device: &AB::Device,
    kind: crate::backend::BackendKind,
) -> anyhow::Result<()> {
    use burn::tensor::{Distribution, Tensor};
    use dsmath_train::batches::Batch;
    use dsmath_train::optim::{AdamW, clip, collect_grads};
    use dsmath_train::trainer::batch_loss;
    let cfg = preset(&args.preset, args.vocab)?;
    // Matmul peak of this backend: best of 5 square f32 matmuls of 1024.
    let n = 1024;
    let a = Tensor::<AB::InnerBackend, 2>::random([n, n], Distribution::Default, device);
    let b = Tensor::<AB::InnerBackend, 2>::random([n, n], Distribution::Default, device);
    let _ = a.clone().matmul(b.clone()).into_data();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let _ = a.clone().matmul(b.clone()).into_data();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let matmul_gflops = 2.0 * (n * n * n) as f64 / best / 1e9;
    drop((a, b));

    let before = peak_alloc::live();
    peak_alloc::reset_peak();
    let mut model = dsmath_model::init_model::<AB>(&cfg, 0, device)?;
    let mut opt = AdamW::<AB::InnerBackend>::new(Default::default());
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % (args.vocab as u64 - 3)) as u32 + 3
    };
    let batch = Batch {
        ids: (0..args.batch)
            .map(|_| (0..args.seq_len).map(|_| next()).collect())
            .collect(),
        weight: vec![vec![1.0; args.seq_len]; args.batch],
        segment: vec![vec![0; args.seq_len]; args.batch],
    };
    let mut times = vec![];
    let mut phases: Vec<[f64; 3]> = vec![];
    let mut loss0 = 0.0;
    let dtype = dsmath_train::trainer::compute_dtype(&args.dtype)
        .map_err(|e| anyhow::anyhow!("--dtype {}: {e}", args.dtype))?;
    for step in 0..=args.steps {
        let t = Instant::now();
        let fwd = dsmath_train::trainer::in_dtype(&model, dtype);
        let loss = batch_loss(&fwd, &batch, device, dsmath_model::head::DEFAULT_CHUNK);
        let l: f64 = burn::tensor::ElementConversion::elem(loss.clone().into_scalar());
        let t_fwd = t.elapsed().as_secs_f64();
        let grads = loss.backward();
        let t_bwd = t.elapsed().as_secs_f64();
        let (grads, _) = clip(collect_grads(&model, &grads), 1.0);
        model = opt.step(model, grads, 1e-4);
        let _ = burn::module::AutodiffModule::valid(&model)
            .model
            .norm
            .weight
            .val()
            .into_data();
        let t_step = t.elapsed().as_secs_f64();
        if step == 0 {
            loss0 = l;
        } else {
            times.push(t_step);
            phases.push([t_fwd, t_bwd - t_fwd, t_step - t_bwd]);
        }
    }
    let step_s = median(times);
    // Median of each phase on its own (CPU backends run eagerly, so the clock sees each phase's work).
    let phase = |i: usize| median(phases.iter().map(|p| p[i]).collect());
    let tokens = (args.batch * args.seq_len) as f64;
    let params = cfg.num_parameters() as f64;
    let embed = (cfg.vocab_size * cfg.hidden_size) as f64; // a lookup, not a matmul
    let flops_per_token = 6.0 * (params - embed)
        + 12.0 * (cfg.num_hidden_layers * cfg.hidden_size * args.seq_len) as f64;
    let r = json!({
        "engine": "dsmath",
        "backend": format!("{kind:?}").to_lowercase(),
        "checkpointing": args.checkpointing,
        "dtype": args.dtype,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "params": params,
        "batch": args.batch,
        "seq_len": args.seq_len,
        "first_loss": loss0,
        "step_s": step_s,
        "forward_s": phase(0),
        "backward_s": phase(1),
        "optimizer_s": phase(2),
        "tok_s": tokens / step_s,
        "gflops": flops_per_token * tokens / step_s / 1e9,
        "matmul_gflops": matmul_gflops,
        "peak_heap_mib": peak_alloc::peak().saturating_sub(before) as f64 / (1 << 20) as f64,
        "peak_rss_mib": vm_hwm_mib(),
        "mfu": args.peak_flops.map(|p| flops_per_token * tokens / step_s / p),
    });
    println!("{r}");
    Ok(())
}
