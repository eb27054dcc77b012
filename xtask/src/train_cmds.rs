//! `cargo xtask train | pretrain | sft | sft-data`: the training stages from a config file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::tensor::backend::Backend;
use clap::Args;
use dsmath_train::sft_data::{Template, gsm8k_record};
use dsmath_train::trainer::{TrainConfig, Trainer};

#[derive(Args)]
pub struct TrainArgs {
    /// Training config (TOML: [model] [data] [optim] [schedule] [train])
    #[arg(long)]
    config: PathBuf,
    /// Run directory: checkpoints step-<N>/, metrics.jsonl, loss.svg, lr.svg (resumes if it has `latest`)
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Override train.steps
    #[arg(long)]
    steps: Option<u64>,
}

pub fn train<B: crate::backend::DeviceList>(
    args: &TrainArgs,
    device: &B::Device,
    want: Option<&str>,
) -> anyhow::Result<()> {
    let mut cfg = TrainConfig::from_file(&args.config)?;
    if let Some(w) = want
        && cfg.train.stage != w
    {
        bail!(
            "{}: train.stage is `{}`, but this command runs `{w}` (use `cargo xtask train`)",
            args.config.display(),
            cfg.train.stage
        );
    }
    if let Some(s) = args.steps {
        cfg.train.steps = s;
    }
    let devices = if cfg.train.devices > 1 {
        B::devices(cfg.train.devices)
    } else {
        vec![device.clone()]
    };
    if cfg.train.gradient_checkpointing {
        train_with::<
            burn_autodiff::Autodiff<B, burn_autodiff::checkpoint::strategy::BalancedCheckpointing>,
        >(cfg, args, devices)
    } else {
        train_with::<burn_autodiff::Autodiff<B>>(cfg, args, devices)
    }
}

fn train_with<AB: burn::tensor::backend::AutodiffBackend>(
    cfg: TrainConfig,
    args: &TrainArgs,
    devices: Vec<AB::Device>,
) -> anyhow::Result<()> {
    let stage = cfg.train.stage.clone();
    let m = if devices.len() > 1 || cfg.train.nodes > 1 {
        match cfg.train.nodes {
            1 => eprintln!("data parallel over {} devices", devices.len()),
            n => eprintln!(
                "data parallel over {} devices on node {} of {n} (orchestrator {})",
                devices.len(),
                cfg.train.node_rank,
                cfg.train.orchestrator
            ),
        }
        dsmath_train::parallel::train_data_parallel::<AB>(cfg, &args.out, devices, None, true)?
    } else {
        let mut t = Trainer::<AB>::new(cfg, &args.out, &devices[0])
            .with_context(|| format!("run directory {}", args.out.display()))?;
        if t.state.step > 0 {
            eprintln!("resuming {} at step {}", args.out.display(), t.state.step);
        }
        t.run(None, true)?
    };
    if let (Some(first), Some(last)) = (m.first(), m.last()) {
        println!(
            "{}: steps {}..{}, loss {:.4} -> {:.4}{}, {:.0} tok/s",
            stage,
            first.step,
            last.step,
            first.loss,
            last.loss,
            last.heldout_loss
                .map_or(String::new(), |h| format!(" (held-out {h:.4})")),
            last.tokens_per_s
        );
    }
    println!(
        "checkpoint: {}",
        args.out
            .join(
                std::fs::read_to_string(args.out.join("latest"))
                    .unwrap_or_default()
                    .trim()
            )
            .display()
    );
    Ok(())
}

#[derive(Args)]
pub struct SftDataArgs {
    /// GSM8K-layout JSONL (`question`, `answer` with `<<a=b>>` annotations and `#### N`)
    #[arg(long, default_value = "eval/data/gsm8k/train.jsonl")]
    gsm8k: PathBuf,
    /// cot, pot or tool
    #[arg(long, default_value = "cot")]
    template: String,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    limit: Option<usize>,
}

pub fn sft_data(args: &SftDataArgs) -> anyhow::Result<()> {
    let template = Template::from_name(&args.template)
        .with_context(|| format!("--template {}: expected cot, pot or tool", args.template))?;
    let text =
        std::fs::read_to_string(&args.gsm8k).with_context(|| args.gsm8k.display().to_string())?;
    let tmp = args.out.with_extension("jsonl.tmp");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?,
    );
    let (mut n, mut skipped) = (0, 0);
    for (i, line) in text
        .lines()
        .enumerate()
        .take(args.limit.unwrap_or(usize::MAX))
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}", args.gsm8k.display(), i + 1))?;
        let (Some(q), Some(a)) = (v["question"].as_str(), v["answer"].as_str()) else {
            bail!(
                "{}:{}: needs `question` and `answer`",
                args.gsm8k.display(),
                i + 1
            );
        };
        match gsm8k_record(q, a, template) {
            Some(r) => {
                serde_json::to_writer(&mut f, &r)?;
                f.write_all(b"\n")?;
                n += 1;
            }
            None => skipped += 1,
        }
    }
    f.flush()?;
    drop(f);
    std::fs::rename(&tmp, &args.out)?;
    println!(
        "{n} SFT records ({} template, {skipped} skipped) -> {}",
        args.template,
        args.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct GrpoArgs {
    /// GRPO config (TOML: [model] init, [data] prompts, [grpo], [optim], [schedule], [train])
    #[arg(long)]
    config: PathBuf,
    /// Run directory (resumes if it has `latest`)
    #[arg(long, default_value = "runs/grpo")]
    out: PathBuf,
    #[arg(long)]
    steps: Option<u64>,
    /// Print the per-device memory plan (weights, gradients, AdamW, reference, KV cache,
    /// activations, LM-head chunk) and stop
    #[arg(long)]
    plan: bool,
    /// Refuse to start when the plan needs more than this per device (e.g. 24GB, 80GiB)
    #[arg(long)]
    memory_limit: Option<String>,
    /// The model's config.json for --plan when [model] init is not on this machine
    #[arg(long)]
    model_config: Option<PathBuf>,
}

pub fn grpo<B: crate::backend::DeviceList>(
    args: &GrpoArgs,
    device: &B::Device,
) -> anyhow::Result<()> {
    use dsmath_train::rl::plan::{grpo_plan, parse_bytes};
    let mut cfg = dsmath_train::rl::run::GrpoConfig::from_file(&args.config)?;
    if let Some(s) = args.steps {
        cfg.train.steps = s;
    }
    if args.plan || args.memory_limit.is_some() {
        let path = match (&args.model_config, &cfg.model.init) {
            (Some(p), _) => p.clone(),
            (None, Some(init)) => PathBuf::from(init).join("config.json"),
            (None, None) => bail!("{}: [model] init is not set", args.config.display()),
        };
        let model = dsmath_model::LlamaConfig::from_file(&path).with_context(|| {
            format!(
                "the model's config.json for the memory plan ({}; give another with --model-config)",
                path.display()
            )
        })?;
        let plan = grpo_plan(&cfg, &model, cfg.train.devices);
        let gib = plan.total() / (1u64 << 30) as f64;
        if args.plan {
            print!("{}", plan.render());
        }
        if let Some(limit) = &args.memory_limit {
            let bytes = parse_bytes(limit).map_err(|e| anyhow::anyhow!("--memory-limit {e}"))?;
            if plan.total() > bytes {
                bail!(
                    "{}: the plan needs {gib:.2} GiB per device, over --memory-limit {limit} ({:.2} GiB); the largest items: {} (see --plan: grpo.micro_batch, grpo.logits_chunk, grpo.max_new_tokens, prompts_per_step x group_size per device, train.dtype / grpo.reference_dtype and train.devices change them)",
                    args.config.display(),
                    bytes / (1u64 << 30) as f64,
                    plan.largest(3)
                );
            }
            eprintln!("memory plan: {gib:.2} GiB per device, within --memory-limit {limit}");
        }
        if args.plan {
            return Ok(());
        }
    }
    let text = toml::to_string_pretty(&cfg)?;
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("config.toml"), text)?;
    let m = if cfg.train.devices > 1 || cfg.train.nodes > 1 {
        eprintln!(
            "data-parallel GRPO over {} device(s) x {} node(s)",
            cfg.train.devices, cfg.train.nodes
        );
        let devices = B::devices(cfg.train.devices);
        dsmath_train::rl::parallel::grpo_data_parallel::<burn_autodiff::Autodiff<B>>(
            cfg, &args.out, devices, None, true, None,
        )?
    } else {
        let mut run = dsmath_train::rl::run::GrpoRun::<burn_autodiff::Autodiff<B>>::new(
            cfg, &args.out, device,
        )?;
        run.run(None, true)?
    };
    if let (Some(a), Some(b)) = (m.first(), m.last()) {
        println!(
            "grpo: steps {}..{}, reward {:.3} -> {:.3}, kl {:.4}",
            a.step, b.step, a.stats.reward_mean, b.stats.reward_mean, b.stats.kl
        );
    }
    println!(
        "checkpoint: {}",
        args.out
            .join(
                std::fs::read_to_string(args.out.join("latest"))
                    .unwrap_or_default()
                    .trim()
            )
            .display()
    );
    Ok(())
}

#[derive(Args)]
pub struct RlPromptsArgs {
    /// A benchmark-layout file (GSM8K by default) to turn into `{"question", "gold"}` lines
    #[arg(long, default_value = "eval/data/gsm8k/train.jsonl")]
    data: PathBuf,
    #[arg(long, default_value = "gsm8k")]
    bench: String,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    limit: Option<usize>,
    /// Write this many generated arithmetic problems instead (`dsmath_train::arith`: the demo's
    /// task), as `{"question", "answer", "gold"}` lines that serve both as RL prompts and as a
    /// GSM8K-layout eval set
    #[arg(long)]
    arith: Option<usize>,
    /// With --arith: `train` or `heldout` (disjoint by a hash of the question)
    #[arg(long, default_value = "train")]
    split: String,
    /// With --arith: the problem stream's seed
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With --arith: only the one-step problems (one equation: the sum, difference and product
    /// templates), the first N of the stream
    #[arg(long)]
    one_step: bool,
}

pub fn rl_prompts(args: &RlPromptsArgs) -> anyhow::Result<()> {
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if let Some(n) = args.arith {
        use dsmath_train::arith::{Split, problems};
        let split = match args.split.as_str() {
            "train" => Split::Train,
            "heldout" => Split::Heldout,
            other => bail!("--split {other}: expected train or heldout"),
        };
        let one_step = |p: &dsmath_train::arith::ArithProblem| p.answer.matches("<<").count() == 1;
        let ps: Vec<_> = if args.one_step {
            // The stream's first n one-step problems (a prefix of a longer draw).
            let mut m = 2 * n;
            loop {
                let all: Vec<_> = problems(args.seed, m, split)
                    .into_iter()
                    .filter(one_step)
                    .collect();
                if all.len() >= n || m > 64 * n + 64 {
                    break all.into_iter().take(n).collect();
                }
                m *= 2;
            }
        } else {
            problems(args.seed, n, split)
        };
        let text: String = ps
            .iter()
            .map(|p| format!("{}\n", serde_json::to_string(p).unwrap_or_default()))
            .collect();
        dsmath_model::checkpoint::write_atomic(&args.out, text.as_bytes())?;
        println!(
            "{} arithmetic problems ({}) -> {}",
            ps.len(),
            args.split,
            args.out.display()
        );
        return Ok(());
    }
    let bench = dsmath_eval::bench::Benchmark::from_name(&args.bench)?;
    let mut problems = bench.load(&args.data)?;
    if let Some(n) = args.limit {
        problems.truncate(n);
    }
    let text: String = problems
        .iter()
        .map(|p| {
            format!(
                "{}\n",
                serde_json::json!({"question": p.question, "gold": p.gold})
            )
        })
        .collect();
    dsmath_model::checkpoint::write_atomic(&args.out, text.as_bytes())?;
    println!("{} RL prompts -> {}", problems.len(), args.out.display());
    Ok(())
}

#[derive(Args)]
pub struct DemoArgs {
    /// Run directory (resumes a run left there)
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// The reduced plan of the integration test: every stage and artefact, tiny sizes (under a minute after the build)
    #[arg(long)]
    quick: bool,
    /// A plan file (TOML `[demo]` table): the fields it gives replace configs/demo.toml's
    #[arg(long, conflicts_with = "quick")]
    plan: Option<PathBuf>,
}

pub fn demo<B: Backend>(args: &DemoArgs, device: &B::Device) -> anyhow::Result<()> {
    use dsmath_train::demo::{DemoOptions, DemoPlan, run};
    // The shipped crawl lives in the repository; `cargo xtask` runs from its root.
    let root = std::env::current_dir()?;
    let root = if root.join("data/web").is_dir() {
        root
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    };
    let plan = match (&args.plan, args.quick) {
        (Some(p), _) => DemoPlan::from_file(p)?,
        (None, true) => DemoPlan::quick(),
        (None, false) => DemoPlan::full(),
    };
    eprintln!(
        "dsmath demo ({} plan) in {}: corpus -> tokenizer -> pretrain -> SFT -> GRPO, evaluated after each",
        plan.name,
        args.out.display()
    );
    let s = run::<B>(
        &DemoOptions {
            out: args.out.clone(),
            root,
            plan,
            progress: true,
        },
        device,
    )?;
    println!(
        "\nAccuracy on {} held-out generated problems (greedy / maj@{}) and the first {} GSM8K test problems (greedy):",
        s.data["heldout_problems"], s.plan.maj_k, s.plan.gsm8k_problems
    );
    for e in &s.evals {
        println!(
            "  {:<5} held-out {:>5.1}% / {:>5.1}%   GSM8K {:>5.1}%",
            e.model, e.heldout_greedy, e.heldout_maj, e.gsm8k_greedy
        );
    }
    println!(
        "GRPO mean reward {:.3} -> {:.3}; stages took {:.0} s.",
        s.grpo["reward_first_quarter"].as_f64().unwrap_or(0.0),
        s.grpo["reward_last_quarter"].as_f64().unwrap_or(0.0),
        s.seconds["total"].as_f64().unwrap_or(0.0)
    );
    println!("report: {}", args.out.join("report.md").display());
    Ok(())
}

#[derive(Args)]
pub struct RmDataArgs {
    /// Policy model directory whose samples are labelled (usually the SFT model)
    #[arg(long)]
    model: PathBuf,
    /// RL prompts JSONL `{"question", "gold"}` (cargo xtask rl-prompts)
    #[arg(long)]
    prompts: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Samples per question
    #[arg(long, default_value_t = 4)]
    samples: usize,
    /// Also label each step (PRM) with this many completions per step (Math-Shepherd); 0 = outcome only
    #[arg(long, default_value_t = 0)]
    prm_rollouts: usize,
    #[arg(long, default_value = "\n")]
    step_delimiter: String,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn rm_data<B: Backend>(args: &RmDataArgs, device: &B::Device) -> anyhow::Result<()> {
    let (ck, tok) = dsmath_model::load_model_and_tokenizer::<B>(&args.model, device)?;
    let prompts: Vec<(String, String)> = dsmath_train::rl::run::read_rl_prompts(&args.prompts)?
        .into_iter()
        .take(args.limit.unwrap_or(usize::MAX))
        .map(|(q, g)| (dsmath_eval::prompts::instruct(&q), g))
        .collect();
    let params = dsmath_model::SamplingParams {
        n: 1,
        temperature: args.temperature,
        top_p: 1.0,
        top_k: 0,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        stop: vec![],
        ignore_eos: false,
        first_prompt: 0,
    };
    let bar = indicatif::ProgressBar::new(prompts.len() as u64);
    let mut out = String::new();
    let (mut n, mut good) = (0, 0);
    for chunk in prompts.chunks(16) {
        let s = dsmath_train::reward_model::label_samples(
            &ck.model,
            &tok,
            chunk,
            args.samples,
            args.prm_rollouts,
            &args.step_delimiter,
            &params,
        )?;
        for x in s {
            n += 1;
            good += (x.label == Some(1.0)) as usize;
            out.push_str(&format!("{}\n", serde_json::to_string(&x)?));
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    dsmath_model::checkpoint::write_atomic(&args.out, out.as_bytes())?;
    println!(
        "{n} labelled samples ({good} correct) -> {}",
        args.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct RmTrainArgs {
    /// Model the reward model starts from (the paper: the SFT model)
    #[arg(long)]
    init: PathBuf,
    /// Labelled samples JSONL `{prompt, response, label, step_labels?}` (cargo xtask rm-data)
    #[arg(long)]
    data: PathBuf,
    /// Output directory (HF model + score.safetensors); give it to [grpo] reward_model
    #[arg(long)]
    out: PathBuf,
    /// pointwise (BCE) or pairwise
    #[arg(long, default_value = "pointwise")]
    objective: String,
    /// Train a process reward model on step_labels
    #[arg(long)]
    process: bool,
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
}

pub fn rm_train<B: Backend>(args: &RmTrainArgs, device: &B::Device) -> anyhow::Result<()> {
    use dsmath_train::reward_model::{
        RewardModel, RmSample, RmTrainConfig, rm_optimizer, train_reward_model,
    };
    type AB<B> = burn_autodiff::Autodiff<B>;
    let (ck, tok) = dsmath_model::load_model_and_tokenizer::<AB<B>>(&args.init, device)?;
    let text =
        std::fs::read_to_string(&args.data).with_context(|| args.data.display().to_string())?;
    let samples: Vec<RmSample> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", args.data.display(), i + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    let cfg = RmTrainConfig {
        objective: args.objective.clone(),
        process: args.process,
        epochs: args.epochs,
        lr: args.lr,
        batch_size: args.batch_size,
        ..Default::default()
    };
    let (rm, stats) = train_reward_model(
        RewardModel::from_policy(ck.model),
        &tok,
        &samples,
        &cfg,
        &mut rm_optimizer(),
    )?;
    for s in &stats {
        println!(
            "epoch {}: loss {:.4} ({} samples)",
            s.epoch, s.loss, s.samples
        );
    }
    use burn::module::AutodiffModule;
    rm.valid().save(&args.out, &ck.config, Some(&args.init))?;
    println!(
        "reward model -> {} (use it as [grpo] reward_model)",
        args.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct RlCompareArgs {
    /// A finished demo run: its SFT model, RL prompts and held-out problems are used
    #[arg(long, default_value = "runs/demo")]
    demo: PathBuf,
    #[arg(long, default_value = "runs/rl-compare")]
    out: PathBuf,
    /// Steps per algorithm
    #[arg(long, default_value_t = 60)]
    steps: u64,
    /// Comma-separated: rft, online_rft, dpo, ppo, grpo
    #[arg(long, default_value = "rft,online_rft,dpo,ppo,grpo")]
    algorithms: String,
}

pub fn rl_compare<B: Backend>(args: &RlCompareArgs, device: &B::Device) -> anyhow::Result<()> {
    use dsmath_train::compare::{CompareOptions, compare};
    let plan = dsmath_train::demo::DemoPlan::parse(
        &std::fs::read_to_string(args.demo.join("config.toml"))
            .with_context(|| format!("{}: run `cargo xtask demo` first", args.demo.display()))?,
        None,
        &args.demo.join("config.toml"),
    )?;
    let sft = dsmath_train::trainer::latest(&args.demo.join("sft"))
        .with_context(|| format!("{}/sft has no checkpoint", args.demo.display()))?;
    let algorithms = args
        .algorithms
        .split(',')
        .map(|a| {
            serde_json::from_value(serde_json::Value::String(a.trim().to_string())).with_context(
                || format!("algorithm `{a}`: expected rft, online_rft, dpo, ppo or grpo"),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut base = plan.grpo_config();
    base.train.steps = args.steps;
    base.train.checkpoint_every = args.steps;
    let o = CompareOptions {
        sft,
        prompts: args.demo.join("data/rl.jsonl"),
        heldout: args.demo.join("data/heldout.jsonl"),
        out: args.out.clone(),
        algorithms,
        base,
        progress: true,
    };
    let rows = compare::<B>(&o, device)?;
    for r in rows {
        println!(
            "{:<11} held-out {:>5.1}%  reward {:.3} -> {:.3}",
            r.algorithm, r.heldout_greedy, r.reward_first, r.reward_last
        );
    }
    println!("report: {}", args.out.join("compare.md").display());
    Ok(())
}

#[derive(Args)]
pub struct OrchestratorArgs {
    /// Port to listen on (every interface); the nodes' `train.orchestrator` is ws://this-host:PORT
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

/// burn-collective's global orchestrator for multi-node training; runs until Ctrl-C.
pub fn orchestrator(args: &OrchestratorArgs) -> anyhow::Result<()> {
    eprintln!("orchestrator on port {} (Ctrl-C stops it)", args.port);
    dsmath_train::parallel::run_orchestrator(args.port)?;
    Ok(())
}
