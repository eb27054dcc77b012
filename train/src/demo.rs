//! `cargo xtask demo`: the whole DeepSeekMath recipe (arXiv 2402.03300, §2-§4) in miniature on a
//! CPU, on data shipped in the repository. Stages, each resumable (a `_done` marker per stage,
//! checkpoints inside the training stages):
//!
//! 1. `corpus`: the corpus pipeline on the shipped crawl (extract, dedup, iterated fastText
//!    classifier with recall and domain discovery, decontamination, BPE tokenizer + shard);
//! 2. `data`: generated arithmetic word problems (GSM8K layout) split into train / held-out;
//! 3. `pretrain`: a tiny LLaMA on the selected math text plus the problems' worked solutions;
//! 4. `sft`: chain-of-thought SFT records (`\boxed{}` answers) made by the GSM8K converter;
//! 5. `grpo`: GRPO with the rule-based grader as reward;
//!
//! with an evaluation after pretraining, SFT and GRPO (held-out generated problems and a GSM8K
//! test subset, greedy and maj@k), then `report.md` with a table per stage and the plots.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::Backend;
use dsmath_data::pipeline::{CorpusFile, ExtraText, Run as CorpusRun};
use dsmath_eval::bench::Benchmark;
use dsmath_eval::prompts::PromptKind;
use dsmath_eval::run::{BenchRun, Mode, evaluate};
use dsmath_model::{SamplingParams, Tokenizer, load_model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::arith::{Split, problems};
use crate::batches::SourceSpec;
use crate::engine::ModelEngine;
use crate::error::TrainError;
use crate::plots::{mean_of, quarter_means, read_jsonl};
use crate::rl::run::{GrpoConfig, GrpoRun};
use crate::schedule::{Schedule, ScheduleKind};
use crate::sft_data::{Template, gsm8k_record};
use crate::trainer::{TrainConfig, Trainer, latest};

/// The corpus recipe the demo runs (paths relative to the repository root).
pub const CORPUS_CONFIG: &str = include_str!("../../configs/corpus-mini.toml");

/// Every size and setting of a demo run (`configs/demo.toml`; `configs/demo-quick.toml` is the CI form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoPlan {
    pub name: String,
    pub seed: u64,
    /// Classifier iterations of the corpus stage and the BPE vocabulary it trains.
    pub corpus_iterations: usize,
    pub vocab_size: usize,
    /// Model preset (`tiny`, `small`).
    pub preset: String,
    pub seq_len: usize,
    /// Generated problems: worked solutions in the pretraining text, SFT records, RL prompts.
    pub pretrain_problems: usize,
    pub sft_problems: usize,
    pub rl_problems: usize,
    pub heldout_problems: usize,
    /// The SFT teacher's slip rate: this share of SFT records reason correctly but box the
    /// question's first number instead of the result (imitation learns the slip; the GRPO reward,
    /// graded against the true answer, unlearns it: DeepSeekMath §5.2.2's "RL makes the output
    /// distribution more robust").
    pub sft_noise: f64,
    /// Share of the pretraining mixture drawn from the corpus (the rest: worked solutions).
    pub corpus_weight: f64,
    pub pretrain_steps: u64,
    pub pretrain_lr: f64,
    pub sft_steps: u64,
    pub sft_lr: f64,
    pub batch_size: usize,
    pub grpo_steps: u64,
    pub group_size: usize,
    pub prompts_per_step: usize,
    pub grpo_lr: f64,
    pub grpo_beta: f64,
    /// Sampling temperature of the GRPO rollouts (log-probs for the ratio are always at T = 1).
    pub grpo_temperature: f32,
    pub max_new_tokens: usize,
    /// GSM8K test problems evaluated (first N).
    pub gsm8k_problems: usize,
    /// k of maj@k, and how many held-out problems it runs on (first N).
    pub maj_k: usize,
    pub maj_problems: usize,
}

/// The demo's recipes (`[demo]` tables): `cargo xtask demo` and its `--quick` CI form.
pub const FULL_PLAN: &str = include_str!("../../configs/demo.toml");
pub const QUICK_PLAN: &str = include_str!("../../configs/demo-quick.toml");

impl DemoPlan {
    /// A `[demo]` TOML text; keys it lacks come from `base` (another plan's TOML text).
    pub fn parse(text: &str, base: Option<&str>, origin: &Path) -> Result<Self, TrainError> {
        let table = |t: &str, o: &Path| -> Result<toml::Table, TrainError> {
            let v: toml::Table =
                toml::from_str(t).map_err(|e| TrainError::Config(o.into(), e.to_string()))?;
            match v.get("demo") {
                Some(toml::Value::Table(d)) if v.len() == 1 => Ok(d.clone()),
                _ => Err(TrainError::Config(
                    o.into(),
                    "expected one [demo] table".into(),
                )),
            }
        };
        let mut merged = match base {
            Some(b) => table(b, Path::new("configs/demo.toml"))?,
            None => toml::Table::new(),
        };
        merged.extend(table(text, origin)?);
        toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| TrainError::Config(origin.into(), e.to_string()))
    }

    /// A plan file: the fields it gives over `configs/demo.toml`'s.
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        let mut plan = Self::parse(&text, Some(FULL_PLAN), path)?;
        if plan.name == "full" && !text.contains("name") {
            plan.name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("custom")
                .to_string();
        }
        Ok(plan)
    }

    pub fn full() -> Self {
        Self::parse(FULL_PLAN, None, Path::new("configs/demo.toml"))
            .expect("configs/demo.toml is a valid plan")
    }

    /// The reduced run of the integration test: every stage and artefact, small sizes.
    pub fn quick() -> Self {
        Self::parse(
            QUICK_PLAN,
            Some(FULL_PLAN),
            Path::new("configs/demo-quick.toml"),
        )
        .expect("configs/demo-quick.toml is a valid plan")
    }

    /// The GRPO settings of this plan (model and prompts left to the caller).
    pub fn grpo_config(&self) -> GrpoConfig {
        let mut cfg = GrpoConfig::default();
        cfg.grpo.group_size = self.group_size;
        cfg.grpo.prompts_per_step = self.prompts_per_step;
        cfg.grpo.micro_batch = cfg
            .grpo
            .micro_batch
            .min(cfg.grpo.group_size * cfg.grpo.prompts_per_step);
        cfg.grpo.max_new_tokens = self.max_new_tokens;
        cfg.grpo.loss.beta = self.grpo_beta;
        cfg.grpo.temperature = self.grpo_temperature;
        cfg.schedule.peak_lr = self.grpo_lr;
        cfg.train.steps = self.grpo_steps;
        cfg.train.checkpoint_every = (self.grpo_steps / 4).max(1);
        cfg.train.keep_last = 1;
        cfg.train.seed = self.seed;
        cfg
    }

    pub fn to_toml(&self) -> String {
        let mut t = toml::Table::new();
        t.insert(
            "demo".into(),
            toml::Value::try_from(self).expect("a plan serialises"),
        );
        toml::to_string(&t).expect("a plan serialises")
    }
}

/// Where the demo runs and what it prints.
pub struct DemoOptions {
    /// Run directory (`runs/demo`).
    pub out: PathBuf,
    /// Repository root: the shipped crawl (`data/web/`) is read from here.
    pub root: PathBuf,
    pub plan: DemoPlan,
    /// Progress bars and stage lines on the terminal.
    pub progress: bool,
}

/// Accuracy (%) of one model on the demo's evaluation sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalScores {
    pub model: String,
    pub heldout_greedy: f64,
    pub heldout_maj: f64,
    pub gsm8k_greedy: f64,
    pub gsm8k_maj: f64,
    pub seconds: f64,
}

/// What `summary.json` holds: every number of `report.md`, each read back from its stage's logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSummary {
    pub plan: DemoPlan,
    pub corpus: Value,
    pub data: Value,
    pub pretrain: Value,
    pub sft: Value,
    pub grpo: Value,
    pub evals: Vec<EvalScores>,
    pub seconds: Value,
}

fn io(p: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io(p.to_path_buf(), e.to_string())
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| io(path, e))?;
    dsmath_model::checkpoint::write_atomic(path, text.as_bytes())?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    serde_json::from_str(&text).map_err(|e| io(path, e))
}

/// A stage: skipped when `<dir>/_done` exists, else run and marked done with its stats.
fn stage(
    out: &Path,
    name: &str,
    k: usize,
    total: usize,
    progress: bool,
    body: impl FnOnce(&Path) -> Result<Value, TrainError>,
) -> Result<(Value, f64), TrainError> {
    let dir = out.join(name);
    let done = dir.join("_done");
    if let Ok(v) = read_json::<Value>(&done) {
        if progress {
            eprintln!("[{k}/{total}] {name}: done before, skipped");
        }
        let secs = v["seconds"].as_f64().unwrap_or(0.0);
        return Ok((v["stats"].clone(), secs));
    }
    if progress {
        eprintln!("[{k}/{total}] {name}");
    }
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let t0 = Instant::now();
    let stats = body(&dir)?;
    let secs = t0.elapsed().as_secs_f64();
    write_json(&done, &json!({"stats": stats, "seconds": secs}))?;
    Ok((stats, secs))
}

/// Run (or resume) the demo in `opts.out`; returns the summary also written to `summary.json`.
pub fn run<B: Backend>(opts: &DemoOptions, device: &B::Device) -> Result<DemoSummary, TrainError> {
    let plan = &opts.plan;
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let plan_path = out.join("config.toml");
    let old = std::fs::read_to_string(&plan_path)
        .ok()
        .map(|t| DemoPlan::parse(&t, None, &plan_path));
    match old.transpose() {
        Ok(Some(old)) if &old != plan => {
            return Err(TrainError::Config(
                plan_path,
                format!(
                    "{} holds a `{}` demo run with other settings: use another --out or delete it",
                    out.display(),
                    old.name
                ),
            ));
        }
        Ok(Some(_)) => {}
        Ok(None) | Err(_) => {
            dsmath_model::checkpoint::write_atomic(&plan_path, plan.to_toml().as_bytes())?
        }
    }
    let p = opts.progress;
    let t_all = Instant::now();
    let n = 8;
    let mut seconds = serde_json::Map::new();

    // 1. Generated problems: SFT records, RL prompts, held-out set, worked solutions.
    let (data, s) = stage(out, "data", 1, n, p, |dir| data_stage(plan, dir))?;
    seconds.insert("data".into(), json!(s));

    // 2. Corpus: the shipped crawl through the whole pipeline; its tokenize stage trains the BPE
    //    on the selected pages plus the problems' text and writes both token shards.
    let (corpus, s) = stage(out, "corpus", 2, n, p, |dir| corpus_stage(opts, dir))?;
    seconds.insert("corpus".into(), json!(s));
    let tokenizer_dir = out.join("corpus/run/tokenize");

    // 3. Pretraining, then its evaluation.
    let (pretrain, s) = stage(out, "pretrain", 3, n, p, |dir| {
        let mut cfg = TrainConfig::default();
        cfg.model.preset = Some(plan.preset.clone());
        cfg.model.tokenizer = Some(tokenizer_dir.display().to_string());
        cfg.model.seed = plan.seed;
        cfg.data.sources = vec![
            SourceSpec {
                name: "math-corpus".into(),
                path: out.join("corpus/run/tokenize/math").display().to_string(),
                weight: plan.corpus_weight,
            },
            SourceSpec {
                name: "worked-solutions".into(),
                path: out.join("corpus/run/tokenize/worked").display().to_string(),
                weight: 1.0 - plan.corpus_weight,
            },
        ];
        cfg.schedule = Schedule {
            kind: ScheduleKind::Cosine,
            peak_lr: plan.pretrain_lr,
            warmup_steps: 20.min(plan.pretrain_steps / 4),
            min_ratio: 0.1,
            ..Default::default()
        };
        train_stage::<B>(cfg, "pretrain", plan, plan.pretrain_steps, dir, p, device)
    })?;
    seconds.insert("pretrain".into(), json!(s));
    let base =
        latest(&out.join("pretrain")).ok_or_else(|| io(&out.join("pretrain"), "no checkpoint"))?;
    let mut evals = vec![];
    let (e, s) = stage(out, "eval-base", 4, n, p, |dir| {
        eval_stage::<B>(opts, &base, "base", dir, device)
    })?;
    evals.push(serde_json::from_value::<EvalScores>(e).map_err(|e| io(out, e))?);
    seconds.insert("eval-base".into(), json!(s));

    // 4. SFT on the generated chain-of-thought records, then its evaluation.
    let (sft, s) = stage(out, "sft", 5, n, p, |dir| {
        let mut cfg = TrainConfig::default();
        cfg.model.init = Some(base.display().to_string());
        cfg.data.sft = vec![out.join("data/sft.jsonl").display().to_string()];
        cfg.data.pack = true;
        cfg.schedule = Schedule {
            kind: ScheduleKind::Constant,
            peak_lr: plan.sft_lr,
            warmup_steps: 10.min(plan.sft_steps / 4),
            ..Default::default()
        };
        train_stage::<B>(cfg, "sft", plan, plan.sft_steps, dir, p, device)
    })?;
    seconds.insert("sft".into(), json!(s));
    let sft_model =
        latest(&out.join("sft")).ok_or_else(|| io(&out.join("sft"), "no checkpoint"))?;
    let (e, s) = stage(out, "eval-sft", 6, n, p, |dir| {
        eval_stage::<B>(opts, &sft_model, "SFT", dir, device)
    })?;
    evals.push(serde_json::from_value::<EvalScores>(e).map_err(|e| io(out, e))?);
    seconds.insert("eval-sft".into(), json!(s));

    // 5. GRPO with the rule-based reward, then its evaluation.
    let (grpo, s) = stage(out, "grpo", 7, n, p, |dir| {
        grpo_stage::<B>(plan, &sft_model, &out.join("data/rl.jsonl"), dir, p, device)
    })?;
    seconds.insert("grpo".into(), json!(s));
    let grpo_model =
        latest(&out.join("grpo")).ok_or_else(|| io(&out.join("grpo"), "no checkpoint"))?;
    let (e, s) = stage(out, "eval-grpo", 8, n, p, |dir| {
        eval_stage::<B>(opts, &grpo_model, "GRPO", dir, device)
    })?;
    evals.push(serde_json::from_value::<EvalScores>(e).map_err(|e| io(out, e))?);
    seconds.insert("eval-grpo".into(), json!(s));

    let total: f64 = seconds.values().filter_map(Value::as_f64).sum();
    seconds.insert("total".into(), json!(total));
    seconds.insert(
        "this_invocation".into(),
        json!(t_all.elapsed().as_secs_f64()),
    );
    let summary = DemoSummary {
        plan: plan.clone(),
        corpus,
        data,
        pretrain,
        sft,
        grpo,
        evals,
        seconds: Value::Object(seconds),
    };
    write_json(&out.join("summary.json"), &summary)?;
    write_report(out, &summary)?;
    Ok(summary)
}

fn corpus_stage(opts: &DemoOptions, dir: &Path) -> Result<Value, TrainError> {
    let cfg_path = dir.join("corpus.toml");
    let mut file: CorpusFile =
        toml::from_str(CORPUS_CONFIG).map_err(|e| io(Path::new("configs/corpus-mini.toml"), e))?;
    let c = &mut file.corpus;
    let at = |s: &str| opts.root.join(s).display().to_string();
    c.inputs = c.inputs.iter().map(|s| at(s)).collect();
    c.labels = c.labels.as_deref().map(at);
    c.iterate.domains.annotations = c.iterate.domains.annotations.as_deref().map(at);
    c.iterate.iterations = opts.plan.corpus_iterations;
    c.tokenize.vocab_size = opts.plan.vocab_size;
    let data = opts.out.join("data");
    c.tokenize.extra = vec![
        ExtraText {
            name: "worked".into(),
            path: data.join("worked.jsonl").display().to_string(),
            shard: true,
        },
        ExtraText {
            name: "formats".into(),
            path: data.join("formats.jsonl").display().to_string(),
            shard: false,
        },
    ];
    std::fs::write(
        &cfg_path,
        toml::to_string_pretty(&file).map_err(|e| io(&cfg_path, e))?,
    )
    .map_err(|e| io(&cfg_path, e))?;
    let run = CorpusRun::open(&dir.join("run"), file.corpus)?;
    let progress = opts.progress;
    run.all(&mut |line: &str| {
        if progress {
            eprintln!("  corpus: {line}");
        }
    })?;
    let mut report = run.report()?;
    let iters: Vec<Value> = read_jsonl(&dir.join("run/iterate/iterations.jsonl"));
    report["last_iteration"] = iters.last().cloned().unwrap_or(Value::Null);
    Ok(report)
}

fn data_stage(plan: &DemoPlan, dir: &Path) -> Result<Value, TrainError> {
    // Three disjoint streams of train-split problems and one held-out set.
    let worked = problems(plan.seed + 1, plan.pretrain_problems, Split::Train);
    let sft = problems(plan.seed + 2, plan.sft_problems, Split::Train);
    let rl = problems(plan.seed + 3, plan.rl_problems, Split::Train);
    let heldout = problems(plan.seed + 4, plan.heldout_problems, Split::Heldout);
    let lines = |rows: Vec<Value>| rows.iter().map(|r| format!("{r}\n")).collect::<String>();
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed ^ 0x5EED);
    let mut slips = 0;
    let sft_rows: Vec<Value> = sft
        .iter()
        .filter_map(|p| gsm8k_record(&p.question, &p.answer, Template::Cot))
        .map(|mut r| {
            let first = r
                .prompt
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| !w.is_empty())
                .unwrap_or("")
                .to_string();
            if rng.random_bool(plan.sft_noise.clamp(0.0, 1.0))
                && !first.is_empty()
                && first != r.gold
            {
                r.response = r.response.replace(
                    &format!("\\boxed{{{}}}", r.gold),
                    &format!("\\boxed{{{first}}}"),
                );
                slips += 1;
            }
            json!(r)
        })
        .collect();
    let w = |name: &str, text: String| {
        dsmath_model::checkpoint::write_atomic(&dir.join(name), text.as_bytes())
            .map_err(TrainError::from)
    };
    // Pretraining text: question and worked solution in GSM8K's own layout.
    w(
        "worked.jsonl",
        lines(
            worked
                .iter()
                .map(|p| json!({"text": format!("Question: {}\nAnswer: {}", p.question, p.answer)}))
                .collect(),
        ),
    )?;
    // The chat format the model is fine-tuned and prompted in: tokenizer training text only.
    w("formats.jsonl", lines(sft_rows.iter().map(|r| json!({"text": format!("{}{}", r["prompt"].as_str().unwrap_or(""), r["response"].as_str().unwrap_or(""))})).collect()))?;
    w("sft.jsonl", lines(sft_rows.clone()))?;
    w(
        "rl.jsonl",
        lines(
            rl.iter()
                .map(|p| json!({"question": p.question, "gold": p.gold}))
                .collect(),
        ),
    )?;
    w(
        "heldout.jsonl",
        lines(
            heldout
                .iter()
                .map(|p| json!({"question": p.question, "answer": p.answer}))
                .collect(),
        ),
    )?;
    Ok(json!({
        "pretrain_problems": worked.len(),
        "sft_records": sft_rows.len(), "sft_slips": slips, "rl_prompts": rl.len(), "heldout_problems": heldout.len(),
        "example": {"prompt": sft_rows.first().map(|r| r["prompt"].clone()), "response": sft_rows.first().map(|r| r["response"].clone())},
    }))
}

fn train_stage<B: Backend>(
    mut cfg: TrainConfig,
    stage: &str,
    plan: &DemoPlan,
    steps: u64,
    dir: &Path,
    progress: bool,
    device: &B::Device,
) -> Result<Value, TrainError> {
    cfg.train.stage = stage.into();
    cfg.train.steps = steps;
    cfg.train.batch_size = plan.batch_size;
    cfg.train.micro_batch = plan.batch_size;
    cfg.train.seq_len = plan.seq_len;
    cfg.train.checkpoint_every = (steps / 4).max(1);
    cfg.train.keep_last = 1;
    cfg.train.eval_every = 0;
    cfg.train.seed = plan.seed;
    let mut t = Trainer::<burn_autodiff::Autodiff<B>>::new(cfg, dir, device)?;
    t.run(None, progress)?;
    let m = read_jsonl(&dir.join("metrics.jsonl"));
    let (first, last) = (
        m.first().cloned().unwrap_or_default(),
        m.last().cloned().unwrap_or_default(),
    );
    Ok(json!({
        "steps": last["step"], "loss_first": first["loss"], "loss_last": last["loss"],
        "tokens": last["tokens"], "tokens_per_s": mean_of(&m, "tokens_per_s"),
        "parameters": burn::module::Module::num_params(&t.model),
    }))
}

fn grpo_stage<B: Backend>(
    plan: &DemoPlan,
    init: &Path,
    prompts: &Path,
    dir: &Path,
    progress: bool,
    device: &B::Device,
) -> Result<Value, TrainError> {
    let mut cfg = plan.grpo_config();
    cfg.model.init = Some(init.display().to_string());
    cfg.data.prompts = prompts.display().to_string();
    let mut r = GrpoRun::<burn_autodiff::Autodiff<B>>::new(cfg, dir, device)?;
    r.run(None, progress)?;
    let m = read_jsonl(&dir.join("metrics.jsonl"));
    let (reward_first, reward_last) = quarter_means(&m, "reward_mean");
    Ok(json!({
        "steps": m.last().map(|v| v["step"].clone()),
        "reward_first_quarter": reward_first, "reward_last_quarter": reward_last,
        "kl_last": m.last().map(|v| v["kl"].clone()),
        "entropy_first": m.first().map(|v| v["entropy"].clone()), "entropy_last": m.last().map(|v| v["entropy"].clone()),
        "response_len_last": m.last().map(|v| v["response_len_mean"].clone()),
        "rollout_tokens_per_s": mean_of(&m, "rollout_tokens_per_s"),
        "step_seconds": mean_of(&m, "step_seconds"),
    }))
}

/// Evaluate `model` on the held-out generated problems and the GSM8K subset, greedy and maj@k.
fn eval_stage<B: Backend>(
    opts: &DemoOptions,
    model: &Path,
    name: &str,
    dir: &Path,
    device: &B::Device,
) -> Result<Value, TrainError> {
    let plan = &opts.plan;
    let t0 = Instant::now();
    let ckpt = load_model::<B>(model, device)?;
    let tok = Tokenizer::from_dir(model, &ckpt.config)?;
    let sampling = SamplingParams {
        n: 1,
        temperature: 0.7,
        top_p: 0.95,
        top_k: 0,
        max_new_tokens: plan.max_new_tokens,
        seed: plan.seed,
        stop: vec![],
        ignore_eos: false,
        first_prompt: 0,
    };
    let mut engine = ModelEngine::new(
        &ckpt.model,
        &tok,
        sampling,
        ckpt.config.max_position_embeddings - plan.max_new_tokens,
    );
    let heldout_path = opts.out.join("data/heldout.jsonl");
    let heldout = Benchmark::Gsm8k
        .load(&heldout_path)
        .map_err(|e| io(&heldout_path, e))?;
    let mut gsm8k = Benchmark::Gsm8k
        .load_default()
        .map_err(|e| io(&Benchmark::Gsm8k.default_path(), e))?;
    gsm8k.truncate(plan.gsm8k_problems);
    let maj = Mode::Maj(plan.maj_k);
    let sets: [(&str, &[dsmath_eval::bench::Problem], Mode); 4] = [
        ("held-out", &heldout, Mode::Greedy),
        (
            "held-out",
            &heldout[..plan.maj_problems.min(heldout.len())],
            maj,
        ),
        ("gsm8k", &gsm8k, Mode::Greedy),
        ("gsm8k", &gsm8k, maj),
    ];
    let mut runs: Vec<BenchRun> = vec![];
    for (set, problems, mode) in sets {
        let bar = if opts.progress {
            indicatif::ProgressBar::new(problems.len() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "  {name} {set} {} {{bar:30}} {{pos}}/{{len}} [{{elapsed}} < {{eta}}]",
                mode.name()
            ))
            .unwrap(),
        );
        let batch = (64 / mode.samples()).max(1);
        let mut r = evaluate(
            &mut engine,
            Benchmark::Gsm8k,
            problems,
            PromptKind::Cot,
            mode,
            None,
            batch,
            &mut |d| bar.set_position(d as u64),
        )
        .map_err(|e| io(model, e))?;
        bar.finish_and_clear();
        if set == "held-out" {
            r.bench = "held-out";
            r.samples.iter_mut().for_each(|s| s.bench = "held-out");
        }
        runs.push(r);
    }
    let notes = vec![
        format!("model: {}", model.display()),
        format!(
            "prompt cot (zero-shot, \\boxed{{}}), greedy and {}, max_new_tokens {}",
            maj.name(),
            plan.max_new_tokens
        ),
    ];
    dsmath_eval::report::write(
        dir,
        &format!("demo evaluation: {name}"),
        &runs,
        &notes,
        json!({"model": model, "stage": name}),
    )
    .map_err(|e| io(dir, e))?;
    let scores = EvalScores {
        model: name.into(),
        heldout_greedy: runs[0].accuracy(),
        heldout_maj: runs[1].accuracy(),
        gsm8k_greedy: runs[2].accuracy(),
        gsm8k_maj: runs[3].accuracy(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    if opts.progress {
        eprintln!(
            "  {name}: held-out greedy {:.1}%, maj@{} {:.1}%; GSM8K greedy {:.1}%, maj@{} {:.1}%",
            scores.heldout_greedy,
            plan.maj_k,
            scores.heldout_maj,
            scores.gsm8k_greedy,
            plan.maj_k,
            scores.gsm8k_maj
        );
    }
    Ok(json!(scores))
}

fn f(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.4}"),
        None => v
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string()),
    }
}

/// `report.md` and `accuracy.svg` from the summary (every number comes from a stage's logs).
fn write_report(out: &Path, s: &DemoSummary) -> Result<(), TrainError> {
    let p = &s.plan;
    let mut md = String::from("# dsmath demo: DeepSeekMath in miniature\n\n");
    md.push_str(&format!(
        "Plan `{}` (seed {}): corpus pipeline on the shipped crawl -> BPE tokenizer ({} tokens) -> `{}` LLaMA pretrained on math text + worked solutions -> SFT on generated chain-of-thought problems -> GRPO with the rule-based grader. Wall time of all stages: {:.0} s.\n\n",
        p.name, p.seed, p.vocab_size, p.preset, s.seconds["total"].as_f64().unwrap_or(0.0)
    ));
    md.push_str("## Accuracy before and after each stage\n\n");
    md.push_str(&format!("| model | held-out greedy | held-out maj@{k} | GSM8K greedy | GSM8K maj@{k} |\n|---|---|---|---|---|\n", k = p.maj_k));
    for e in &s.evals {
        md.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            e.model, e.heldout_greedy, e.heldout_maj, e.gsm8k_greedy, e.gsm8k_maj
        ));
    }
    md.push_str(&format!(
        "\nHeld-out: {} generated problems never seen in training (maj@{} on the first {}); GSM8K: the first {} test problems. Zero-shot DeepSeekMath-Instruct prompt, answers graded by dsmath's grader. Per-sample records: `eval-*/samples.jsonl`.\n\n![accuracy](accuracy.svg)\n\n",
        s.data["heldout_problems"], p.maj_k, p.maj_problems, p.gsm8k_problems
    ));
    md.push_str("## 1. Generated problems\n\n| | |\n|---|---|\n");
    for k in [
        "pretrain_problems",
        "sft_records",
        "sft_slips",
        "rl_prompts",
        "heldout_problems",
    ] {
        md.push_str(&format!("| {k} | {} |\n", f(&s.data[k])));
    }
    md.push_str(&format!(
        "| worked-solution tokens (pretraining shard) | {} |\n",
        f(&s.corpus["tokenize"]["extra"]["worked"]["tokens"])
    ));
    md.push_str(&format!(
        "\n`sft_slips`: SFT records whose (deliberately imperfect) teacher reasons correctly but boxes the question's first number (`sft_noise` = {}); the GRPO reward is graded against the true answer.\n",
        p.sft_noise
    ));
    md.push_str(&format!(
        "\nAn SFT record:\n\n```\n{}{}\n```\n\n",
        s.data["example"]["prompt"].as_str().unwrap_or(""),
        s.data["example"]["response"].as_str().unwrap_or("")
    ));
    let c = &s.corpus;
    let g = |st: &str, k: &str| f(&c[st][k]);
    let it = &c["last_iteration"];
    md.push_str(
        "## 2. Corpus (DeepSeekMath §2.1)\n\n| stage | documents | notes |\n|---|---:|---|\n",
    );
    md.push_str(&format!(
        "| extract | {} | {} rejects |\n",
        g("extract", "documents"),
        g("extract", "rejects")
    ));
    md.push_str(&format!(
        "| dedup | {} | {} url, {} exact, {} near duplicates removed |\n",
        g("dedup", "documents"),
        g("dedup", "url_duplicates"),
        g("dedup", "exact_duplicates"),
        g("dedup", "near_duplicates")
    ));
    md.push_str(&format!(
        "| classifier + recall | {} | of {} pages after {} iteration(s); last iteration: {} seed pages, {} math domains, precision {} / recall {} against the labels |\n",
        g("iterate", "documents"), g("iterate", "pool"), g("iterate", "iterations"), f(&it["positives"]), it["math_domains"].as_array().map_or(0, Vec::len), f(&it["precision"]), f(&it["recall"])
    ));
    md.push_str(&format!("| decontamination | {} | {} segments matching benchmark 10-grams removed, {} pages dropped |\n", g("decontam", "documents"), g("decontam", "segments_removed"), g("decontam", "pages_dropped")));
    md.push_str(&format!("| tokenize | {} | {} tokens, BPE vocabulary {} (trained on these pages and the problems' text) |\n", g("tokenize", "documents"), g("tokenize", "tokens"), g("tokenize", "vocab_size")));
    md.push_str("\nDetails: `corpus/run/report.md`, classifier iterations: `corpus/run/iterations.svg`.\n\n");
    for (title, key, v, plot) in [
        (
            "3. Pretraining (§3.1)",
            "pretrain",
            &s.pretrain,
            "pretrain/loss.svg",
        ),
        ("4. SFT (§3.3)", "sft", &s.sft, "sft/loss.svg"),
    ] {
        md.push_str(&format!("## {title}\n\n| | |\n|---|---|\n"));
        for k in [
            "parameters",
            "steps",
            "tokens",
            "loss_first",
            "loss_last",
            "tokens_per_s",
        ] {
            md.push_str(&format!("| {k} | {} |\n", f(&v[k])));
        }
        md.push_str(&format!(
            "| seconds | {:.0} |\n\n![{key} loss]({plot})\n\n",
            s.seconds[key].as_f64().unwrap_or(0.0)
        ));
    }
    md.push_str("## 5. GRPO (§4.1)\n\n| | |\n|---|---|\n");
    for k in [
        "steps",
        "reward_first_quarter",
        "reward_last_quarter",
        "kl_last",
        "entropy_first",
        "entropy_last",
        "response_len_last",
        "rollout_tokens_per_s",
        "step_seconds",
    ] {
        md.push_str(&format!("| {k} | {} |\n", f(&s.grpo[k])));
    }
    md.push_str(&format!(
        "| group size x prompts per step | {} x {} |\n| lr / beta / temperature | {} / {} / {} |\n\n![reward](grpo/reward.svg) ![kl](grpo/kl.svg)\n\n",
        p.group_size, p.prompts_per_step, p.grpo_lr, p.grpo_beta, p.grpo_temperature
    ));
    md.push_str("## Time per stage (s)\n\n| stage | seconds |\n|---|---|\n");
    for (k, v) in s.seconds.as_object().into_iter().flatten() {
        md.push_str(&format!("| {k} | {:.0} |\n", v.as_f64().unwrap_or(0.0)));
    }
    dsmath_model::checkpoint::write_atomic(&out.join("report.md"), md.as_bytes())?;
    let mut bars = vec![];
    for e in &s.evals {
        bars.push((format!("{} held-out", e.model), e.heldout_greedy));
        bars.push((format!("{} maj@{}", e.model, p.maj_k), e.heldout_maj));
    }
    dsmath_eval::report::bar_chart(
        &out.join("accuracy.svg"),
        "held-out accuracy: greedy and maj@k after each stage",
        &bars,
    )
    .map_err(|e| io(out, e))?;
    Ok(())
}
