//! The training loop shared by continued pretraining and SFT (DeepSeekMath §3.1, §3.3), generic
//! over `AutodiffBackend`: micro-batches accumulated to the step's batch (the loss of each is
//! weighted by its share of the step's target tokens, so accumulation equals one big batch),
//! global-norm clipping, AdamW, the learning-rate schedule, non-finite steps skipped (and the run
//! stopped after `max_bad_steps` in a row), held-out loss, metrics JSONL + progress bar, atomic
//! checkpoints (`step-<N>/`: HF model + optimizer + trainer state; `latest`; the last K kept)
//! and exact resume.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};
use dsmath_model::loss::{chunked_causal_lm_loss, chunked_causal_lm_loss_value};
use dsmath_model::{LlamaConfig, LlamaForCausalLM, SaveDtype, init_model, load_model, save_model};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::batches::{
    Batch, BatchSource, PretrainBatches, SftBatches, SourceSpec, packing_inputs, read_sft,
};
use crate::error::TrainError;
use crate::optim::{AdamW, AdamWConfig, accumulate, clip, collect_grads};
use crate::schedule::Schedule;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Start from this HF model directory...
    pub init: Option<String>,
    /// ...or from a preset (`LlamaConfig::PRESETS`: `tiny`, `small`, `bench_25m`, `llama_1b`) with
    /// random weights.
    pub preset: Option<String>,
    /// Directory with tokenizer.json (and tokenizer_config.json); defaults to `init`.
    pub tokenizer: Option<String>,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Pretraining: token-shard sources with mixture weights.
    pub sources: Vec<SourceSpec>,
    /// SFT: JSONL files of `{prompt, response}` or `{messages}`.
    pub sft: Vec<String>,
    /// Held-out data of the same kind (shard stem for pretraining, JSONL for SFT).
    pub heldout: Option<String>,
    /// Held-out rows evaluated.
    pub heldout_rows: usize,
    /// SFT: pack several examples per row.
    pub pack: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// `pretrain` or `sft`.
    pub stage: String,
    pub steps: u64,
    /// Rows (sequences) per optimizer step.
    pub batch_size: usize,
    /// Rows per forward/backward; `batch_size / micro_batch` micro-batches are accumulated.
    pub micro_batch: usize,
    pub seq_len: usize,
    pub checkpoint_every: u64,
    pub keep_last: usize,
    pub eval_every: u64,
    /// Stop after this many non-finite steps in a row.
    pub max_bad_steps: u64,
    pub seed: u64,
    /// Fault injection for tests and drills: these steps get a NaN loss.
    pub poison_steps: Vec<u64>,
    /// Gradient checkpointing: activations of memory-bound ops (elementwise, norms, softmax) are
    /// recomputed in the backward pass instead of kept (burn-autodiff's `BalancedCheckpointing`;
    /// matmul outputs are still kept). `cargo xtask train` picks the autodiff backend from it.
    pub gradient_checkpointing: bool,
    /// Data parallel (`crate::parallel`): replicas on this many devices (GPUs 0..N; threads on
    /// a CPU backend). `batch_size / micro_batch` must be a multiple of it.
    pub devices: usize,
    /// Multi-node data parallel (`crate::parallel::Cluster`): the number of nodes (processes,
    /// each with `devices` devices). Every node runs the same config but for `node_rank` and
    /// `node_address`, and one process runs the orchestrator (`cargo xtask orchestrator`).
    pub nodes: usize,
    /// This node's index, `0..nodes`; its peers are global ranks `node_rank * devices ..`.
    pub node_rank: usize,
    /// burn-collective's global orchestrator, `ws://host:port` (multi-node only).
    pub orchestrator: String,
    /// Where the other nodes reach this node, `ws://host:port`; its tensor data service
    /// listens on that port on every interface (multi-node only).
    pub node_address: String,
    /// Data parallel: seconds a peer waits in one all-reduce, or (multi-node) for the other nodes
    /// to join, before it gives up with an error (another node or the orchestrator has died,
    /// hangs or never started) instead of waiting for ever. It must cover the longest gap between
    /// peers reaching a step's all-reduce (held-out evaluation, checkpoint writes, a slower
    /// device) and between the nodes' starts.
    pub collective_timeout_s: u64,
    /// Compute dtype: `f32`, or mixed precision `bf16` / `f16`: every step runs forward and
    /// backward on a reduced-precision cast of the f32 master weights (norm statistics and the
    /// loss in f32), and the gradients, clipping and AdamW stay f32.
    pub dtype: String,
    /// Target positions per LM-head chunk: the loss never holds more than `logits_chunk x vocab`
    /// logits (`dsmath_model::head`).
    pub logits_chunk: usize,
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            stage: "pretrain".into(),
            steps: 100,
            batch_size: 8,
            micro_batch: 8,
            seq_len: 256,
            checkpoint_every: 50,
            keep_last: 2,
            eval_every: 50,
            max_bad_steps: 5,
            seed: 0,
            poison_steps: vec![],
            gradient_checkpointing: false,
            devices: 1,
            nodes: 1,
            node_rank: 0,
            orchestrator: String::new(),
            node_address: String::new(),
            collective_timeout_s: 1800,
            dtype: "f32".into(),
            logits_chunk: dsmath_model::head::DEFAULT_CHUNK,
        }
    }
}

/// A training config file (`[model] [data] [optim] [schedule] [train]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub model: ModelSection,
    pub data: DataSection,
    pub optim: AdamWConfig,
    pub schedule: Schedule,
    pub train: TrainSection,
}

impl TrainConfig {
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::Io(path.into(), e.to_string()))?;
        let cfg: TrainConfig =
            toml::from_str(&text).map_err(|e| TrainError::Config(path.into(), e.to_string()))?;
        cfg.check()
            .map_err(|m| TrainError::Config(path.into(), m))?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<(), String> {
        let t = &self.train;
        if t.logits_chunk == 0 {
            return Err("train.logits_chunk must be positive".into());
        }
        if t.micro_batch == 0 || t.batch_size == 0 || !t.batch_size.is_multiple_of(t.micro_batch) {
            return Err(format!(
                "train.batch_size ({}) must be a positive multiple of train.micro_batch ({})",
                t.batch_size, t.micro_batch
            ));
        }
        if let Err(e) = compute_dtype(&t.dtype) {
            return Err(format!("train.dtype `{}`: {e}", t.dtype));
        }
        if t.devices == 0 || !(t.batch_size / t.micro_batch).is_multiple_of(t.devices) {
            return Err(format!(
                "train.devices ({}) must divide the micro-batches per step (batch_size / micro_batch = {})",
                t.devices,
                t.batch_size / t.micro_batch
            ));
        }
        crate::parallel::Cluster::from_config(t)?;
        match t.stage.as_str() {
            "pretrain" if self.data.sources.is_empty() => {
                Err("pretrain needs [[data.sources]]".into())
            }
            "sft" if self.data.sft.is_empty() => Err("sft needs data.sft files".into()),
            "pretrain" | "sft" => Ok(()),
            s => Err(format!("train.stage `{s}`: expected pretrain or sft")),
        }
        .and_then(|_| match (&self.model.init, &self.model.preset) {
            (None, None) => Err("[model] needs `init` (HF dir) or `preset`".into()),
            _ => Ok(()),
        })
    }
}

/// What a checkpoint records besides weights and optimizer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainerState {
    pub step: u64,
    pub tokens: u64,
    pub cursor: Value,
    pub bad_in_a_row: u64,
    pub config: TrainConfig,
}

/// One step's numbers (a line of `metrics.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepMetrics {
    pub stage: String,
    pub step: u64,
    pub time: f64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: u64,
    pub tokens_per_s: f64,
    /// 6 x parameters x tokens/s (MFU = this / your hardware's peak).
    pub model_flops_per_s: f64,
    pub rss_mb: f64,
    pub skipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heldout_loss: Option<f64>,
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .map_or(0.0, |pages| pages * 4096.0 / (1 << 20) as f64)
}

/// `train.dtype` as a Burn dtype (`None` for f32: no cast); the error says what is accepted.
pub fn compute_dtype(name: &str) -> Result<Option<DType>, &'static str> {
    match name {
        "f32" | "" => Ok(None),
        "bf16" => Ok(Some(DType::BF16)),
        "f16" => Ok(Some(DType::F16)),
        _ => Err("expected f32, bf16 or f16"),
    }
}

/// Mixed precision: the model with every weight cast to `dtype`, a differentiable view of the f32
/// master weights (the cast's backward hands f32 gradients to them).
struct CastParams(DType);

impl<B: burn::tensor::backend::Backend> burn::module::ModuleMapper<B> for CastParams {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<B, D>>,
    ) -> burn::module::Param<Tensor<B, D>> {
        let dtype = self.0;
        param.map(|t| t.cast(dtype))
    }
}

/// `model` for the forward pass in `dtype` (unchanged for f32).
pub fn in_dtype<B: burn::tensor::backend::Backend>(
    model: &LlamaForCausalLM<B>,
    dtype: Option<DType>,
) -> LlamaForCausalLM<B> {
    match dtype {
        None => model.clone(),
        Some(d) => burn::module::Module::map(model.clone(), &mut CastParams(d)),
    }
}

/// The final hidden states `[n, s, d]` of a packed batch.
fn batch_hidden<B: burn::tensor::backend::Backend>(
    model: &LlamaForCausalLM<B>,
    b: &Batch,
    device: &B::Device,
) -> Tensor<B, 3> {
    let (n, s) = (b.ids.len(), b.ids[0].len());
    let ids: Vec<i64> = b.ids.iter().flatten().map(|&t| t as i64).collect();
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, s]), device);
    let (pos, blocked) = packing_inputs(&b.segment);
    let positions = Tensor::<B, 2, Int>::from_data(TensorData::new(pos, [n, s]), device);
    let mask = Tensor::<B, 4, Bool>::from_data(TensorData::new(blocked, [n, 1, s, s]), device);
    model.hidden_states(input, positions, Some(mask), None)
}

/// Loss of a batch (mean over its target tokens, in f32), with its gradient through the LM head
/// computed `chunk` target positions at a time (`dsmath_model::loss::chunked_causal_lm_loss`).
pub fn batch_loss<B: AutodiffBackend>(
    model: &LlamaForCausalLM<B>,
    b: &Batch,
    device: &B::Device,
    chunk: usize,
) -> Tensor<B, 1> {
    chunked_causal_lm_loss(
        batch_hidden(model, b, device),
        model.head_weight(),
        &b.ids,
        &b.weight,
        chunk,
    )
}

/// The value of [`batch_loss`] without autodiff (held-out evaluation).
pub fn batch_loss_value<B: burn::tensor::backend::Backend>(
    model: &LlamaForCausalLM<B>,
    b: &Batch,
    device: &B::Device,
    chunk: usize,
) -> f64 {
    chunked_causal_lm_loss_value(
        batch_hidden(model, b, device),
        model.head_weight(),
        &b.ids,
        &b.weight,
        chunk,
    )
}

/// Make directory `dir` appear whole or not at all: `fill` writes `<dir>.tmp` (cleared first),
/// which then replaces `dir`.
pub fn write_dir_atomic(
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let tmp = PathBuf::from(format!("{}.tmp", dir.display()));
    let _ = std::fs::remove_dir_all(&tmp);
    fill(&tmp)?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(|e| TrainError::Io(dir.to_path_buf(), e.to_string()))
}

/// Write `out/step-<step>/` (HF model directory + `optimizer.safetensors` +
/// `trainer_state.json` from `state`) as `step-<step>.tmp` then a rename, point `latest` at it,
/// and keep the last `keep_last` checkpoints. `extra` adds files to the directory before the
/// rename (PPO's critic). Shared by training and GRPO.
#[allow(clippy::too_many_arguments)]
pub fn write_checkpoint<B: burn::tensor::backend::Backend, S: Serialize>(
    out: &Path,
    step: u64,
    model_cfg: &LlamaConfig,
    model: &LlamaForCausalLM<B>,
    tokenizer_dir: &Path,
    opt: &AdamW<B>,
    state: &S,
    keep_last: usize,
    extra: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<PathBuf, TrainError> {
    let name = format!("step-{step}");
    let dir = out.join(&name);
    write_dir_atomic(&dir, |tmp| {
        save_model(tmp, model_cfg, model, Some(tokenizer_dir), SaveDtype::F32)?;
        opt.save(&tmp.join("optimizer.safetensors"))?;
        extra(tmp)?;
        let st =
            serde_json::to_string_pretty(state).map_err(|e| TrainError::Backend(e.to_string()))?;
        std::fs::write(tmp.join("trainer_state.json"), st)
            .map_err(|e| TrainError::Io(tmp.to_path_buf(), e.to_string()))
    })?;
    dsmath_model::checkpoint::write_atomic(&out.join("latest"), name.as_bytes())?;
    // Keep the last K complete checkpoints.
    let mut steps: Vec<u64> = std::fs::read_dir(out)
        .map_err(|e| TrainError::Io(out.to_path_buf(), e.to_string()))?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("step-")?
                .parse()
                .ok()
        })
        .collect();
    steps.sort_unstable();
    for s in steps
        .iter()
        .take(steps.len().saturating_sub(keep_last.max(1)))
    {
        let _ = std::fs::remove_dir_all(out.join(format!("step-{s}")));
    }
    Ok(dir)
}

/// A training run in `out`.
pub struct Trainer<B: AutodiffBackend> {
    pub cfg: TrainConfig,
    pub out: PathBuf,
    pub model: LlamaForCausalLM<B>,
    pub model_cfg: LlamaConfig,
    pub tokenizer_dir: PathBuf,
    pub opt: AdamW<B::InnerBackend>,
    pub data: Box<dyn BatchSource>,
    heldout: Option<Vec<Batch>>,
    pub state: TrainerState,
    device: B::Device,
    /// Data parallel: this replica's rank among `world` (`crate::parallel`).
    peer: Option<crate::parallel::Peer>,
}

/// The newest complete checkpoint of a run directory (`latest` names it).
pub fn latest(out: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(out.join("latest")).ok()?;
    let p = out.join(name.trim());
    p.join("trainer_state.json").exists().then_some(p)
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Start a run, or resume from `out/latest` if there is one.
    pub fn new(cfg: TrainConfig, out: &Path, device: &B::Device) -> Result<Self, TrainError> {
        cfg.check()
            .map_err(|m| TrainError::Config(out.join("config.toml"), m))?;
        std::fs::create_dir_all(out).map_err(|e| TrainError::Io(out.into(), e.to_string()))?;
        let tokenizer_dir = PathBuf::from(
            cfg.model
                .tokenizer
                .clone()
                .or(cfg.model.init.clone())
                .unwrap_or_default(),
        );
        let resume = latest(out);
        let (model, model_cfg) = match resume
            .clone()
            .or(cfg.model.init.as_ref().map(PathBuf::from))
        {
            Some(dir) => {
                let c = load_model::<B>(&dir, device)?;
                (c.model, c.config)
            }
            None => {
                let tp = tokenizer_dir.join("tokenizer.json");
                let raw = tokenizers::Tokenizer::from_file(&tp)
                    .map_err(|e| TrainError::Io(tp.clone(), e.to_string()))?;
                let vocab = raw.get_vocab_size(true);
                let preset = cfg.model.preset.as_deref().unwrap_or("");
                let Some(mut mc) = LlamaConfig::preset(preset, vocab) else {
                    return Err(TrainError::Config(
                        out.join("config.toml"),
                        format!(
                            "unknown preset `{preset}` ({})",
                            LlamaConfig::PRESETS.join(", ")
                        ),
                    ));
                };
                mc.max_position_embeddings = mc.max_position_embeddings.max(cfg.train.seq_len);
                if let Some(eos) = raw.token_to_id(dsmath_data::shards::EOS) {
                    mc.eos_token_id = Some(dsmath_model::config::TokenIds::One(eos));
                }
                if let Some(pad) = raw.token_to_id(dsmath_data::shards::PAD) {
                    mc.pad_token_id = Some(pad);
                }
                (init_model::<B>(&mc, cfg.model.seed, device)?, mc)
            }
        };
        let tokenizer = dsmath_model::Tokenizer::from_dir(&tokenizer_dir, &model_cfg)?;
        let chat = dsmath_model::chat::ChatTemplate::from_dir(&tokenizer_dir)?;
        let mut data: Box<dyn BatchSource> = match cfg.train.stage.as_str() {
            "pretrain" => Box::new(PretrainBatches::open(
                &cfg.data.sources,
                cfg.train.seq_len,
                cfg.train.seed,
            )?),
            _ => {
                let mut all = vec![];
                for f in &cfg.data.sft {
                    all.extend(
                        read_sft(Path::new(f), &tokenizer, chat.as_ref(), cfg.train.seq_len)?.0,
                    );
                }
                Box::new(SftBatches::new(
                    all,
                    cfg.train.seq_len,
                    cfg.data.pack,
                    tokenizer.pad_id,
                    cfg.train.seed,
                ))
            }
        };
        let heldout = match &cfg.data.heldout {
            None => None,
            Some(h) => {
                let rows = cfg.data.heldout_rows.max(1);
                let mut src: Box<dyn BatchSource> = if cfg.train.stage == "pretrain" {
                    Box::new(PretrainBatches::open(
                        &[SourceSpec {
                            name: "heldout".into(),
                            path: h.clone(),
                            weight: 1.0,
                        }],
                        cfg.train.seq_len,
                        0,
                    )?)
                } else {
                    let (ex, _) =
                        read_sft(Path::new(h), &tokenizer, chat.as_ref(), cfg.train.seq_len)?;
                    Box::new(SftBatches::new(
                        ex,
                        cfg.train.seq_len,
                        cfg.data.pack,
                        tokenizer.pad_id,
                        0,
                    ))
                };
                let mb = cfg.train.micro_batch;
                Some((0..rows.div_ceil(mb)).map(|_| src.next_batch(mb)).collect())
            }
        };
        let (opt, state) = match &resume {
            Some(dir) => {
                let st: TrainerState = serde_json::from_str(
                    &std::fs::read_to_string(dir.join("trainer_state.json")).map_err(|e| {
                        TrainError::Io(dir.join("trainer_state.json"), e.to_string())
                    })?,
                )
                .map_err(|e| TrainError::Io(dir.join("trainer_state.json"), e.to_string()))?;
                data.restore(&st.cursor)?;
                (
                    AdamW::load(
                        cfg.optim.clone(),
                        &dir.join("optimizer.safetensors"),
                        device,
                    )?,
                    st,
                )
            }
            None => (
                AdamW::new(cfg.optim.clone()),
                TrainerState {
                    step: 0,
                    tokens: 0,
                    cursor: data.cursor(),
                    bad_in_a_row: 0,
                    config: cfg.clone(),
                },
            ),
        };
        let text = toml::to_string_pretty(&cfg).map_err(|e| TrainError::Backend(e.to_string()))?;
        std::fs::write(out.join("config.toml"), text)
            .map_err(|e| TrainError::Io(out.join("config.toml"), e.to_string()))?;
        Ok(Trainer {
            cfg,
            out: out.to_path_buf(),
            model,
            model_cfg,
            tokenizer_dir,
            opt,
            data,
            heldout,
            state,
            device: device.clone(),
            peer: None,
        })
    }

    /// Make this trainer one replica of a data-parallel group (`crate::parallel`): it runs
    /// micro-batches `rank, rank + world, ...` of each step and sums gradients over the group;
    /// only each node's first peer (`local == 0`) writes metrics, checkpoints and plots.
    pub fn with_peer(mut self, peer: crate::parallel::Peer) -> Self {
        self.peer = Some(peer);
        self
    }

    fn writes(&self) -> bool {
        self.peer.is_none_or(|p| p.local == 0)
    }

    /// Mean held-out loss (no gradients).
    pub fn heldout_loss(&self) -> Option<f64> {
        let batches = self.heldout.as_ref()?;
        let inner = self.model.valid();
        let dev = inner.model.embed_tokens.val().device();
        let (mut num, mut den) = (0.0, 0.0);
        for b in batches {
            let w = b.target_weight();
            let l = batch_loss_value(&inner, b, &dev, self.cfg.train.logits_chunk);
            num += l * w;
            den += w;
        }
        Some(num / den.max(1.0))
    }

    /// One optimizer step; returns its metrics.
    pub fn step(&mut self, start: Instant) -> Result<StepMetrics, TrainError> {
        let t = &self.cfg.train;
        let step = self.state.step;
        let batch = self.data.next_batch(t.batch_size);
        let total_w = batch.target_weight().max(1.0);
        let mut grads = vec![];
        let mut loss_sum = 0.0;
        let mine = |k: usize| self.peer.is_none_or(|p| k % p.world == p.rank);
        // Mixed precision: a reduced-precision view of the f32 weights for this step.
        let dtype = compute_dtype(&t.dtype).ok().flatten();
        let fwd = in_dtype(&self.model, dtype);
        for k in (0..t.batch_size / t.micro_batch).filter(|&k| mine(k)) {
            let mb = batch.rows(k * t.micro_batch, t.micro_batch);
            let share = mb.target_weight() / total_w;
            if share == 0.0 {
                continue;
            }
            let mut loss = batch_loss(&fwd, &mb, &self.device, t.logits_chunk).mul_scalar(share);
            if t.poison_steps.contains(&step) {
                loss = loss.mul_scalar(f64::NAN);
            }
            let v: f64 = loss.clone().into_scalar().elem();
            loss_sum += v;
            let g = loss.backward();
            accumulate(&mut grads, collect_grads(&self.model, &g));
        }
        if let Some(p) = self.peer {
            let timeout = std::time::Duration::from_secs(t.collective_timeout_s);
            (grads, loss_sum) = crate::parallel::all_reduce_grads(
                p,
                &self.model,
                grads,
                loss_sum,
                &self.device,
                timeout,
            )
            .map_err(|e| TrainError::Step {
                step,
                message: e.to_string(),
            })?;
        }
        let lr = self.cfg.schedule.lr(step, t.steps);
        let (grads, norm) = clip(grads, self.cfg.optim.grad_clip);
        let skipped = !loss_sum.is_finite() || !norm.is_finite();
        if skipped {
            self.state.bad_in_a_row += 1;
            eprintln!(
                "warning: step {step}: non-finite loss ({loss_sum}) or gradient norm ({norm}); update skipped"
            );
            if self.state.bad_in_a_row >= t.max_bad_steps {
                return Err(TrainError::Step {
                    step,
                    message: format!(
                        "{} non-finite steps in a row: stopping (lower the learning rate, check the data)",
                        self.state.bad_in_a_row
                    ),
                });
            }
        } else {
            self.state.bad_in_a_row = 0;
            self.model = self.opt.step(self.model.clone(), grads, lr);
        }
        let tokens = batch.ids.iter().map(Vec::len).sum::<usize>() as u64;
        self.state.step += 1;
        self.state.tokens += tokens;
        self.state.cursor = self.data.cursor();
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let params = self.model_cfg.num_parameters() as f64;
        let heldout = (t.eval_every > 0
            && (self.state.step.is_multiple_of(t.eval_every) || self.state.step == t.steps))
            .then(|| self.heldout_loss())
            .flatten();
        Ok(StepMetrics {
            stage: t.stage.clone(),
            step: self.state.step,
            time: secs,
            loss: loss_sum,
            lr,
            grad_norm: norm,
            tokens: self.state.tokens,
            tokens_per_s: tokens as f64 / secs,
            model_flops_per_s: 6.0 * params * tokens as f64 / secs,
            rss_mb: rss_mb(),
            skipped,
            heldout_loss: heldout,
        })
    }

    /// Write `step-<N>/` atomically, point `latest` at it, keep the last K.
    pub fn checkpoint(&self) -> Result<PathBuf, TrainError> {
        write_checkpoint(
            &self.out,
            self.state.step,
            &self.model_cfg,
            &self.model.valid(),
            &self.tokenizer_dir,
            &self.opt,
            &self.state,
            self.cfg.train.keep_last,
            |_| Ok(()),
        )
    }

    /// Train until `train.steps` (or `stop_after` more steps, for tests and drills), logging to
    /// `metrics.jsonl`, checkpointing, and plotting at the end.
    pub fn run(
        &mut self,
        stop_after: Option<u64>,
        progress: bool,
    ) -> Result<Vec<StepMetrics>, TrainError> {
        let t = self.cfg.train.clone();
        let until = stop_after.map_or(t.steps, |n| (self.state.step + n).min(t.steps));
        let bar = if progress {
            indicatif::ProgressBar::new(t.steps)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{} {{bar:30}} {{pos}}/{{len}} steps [{{elapsed}} < {{eta}}] {{msg}}",
                t.stage
            ))
            .unwrap(),
        );
        bar.set_position(self.state.step);
        let mpath = self.out.join("metrics.jsonl");
        let mut mf = match self.writes() {
            true => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&mpath)
                    .map_err(|e| TrainError::Io(mpath.clone(), e.to_string()))?,
            ),
            false => None,
        };
        let mut all = vec![];
        while self.state.step < until {
            let m = self.step(Instant::now())?;
            if let Some(mf) = mf.as_mut() {
                writeln!(mf, "{}", serde_json::to_string(&m).unwrap_or_default())
                    .map_err(|e| TrainError::Io(mpath.clone(), e.to_string()))?;
            }
            bar.set_position(self.state.step);
            bar.set_message(format!("loss {:.4} lr {:.2e}", m.loss, m.lr));
            all.push(m);
            if self.writes()
                && ((t.checkpoint_every > 0 && self.state.step.is_multiple_of(t.checkpoint_every))
                    || self.state.step == t.steps)
            {
                self.checkpoint()?;
            }
        }
        bar.finish_and_clear();
        if self.writes() {
            crate::plots::training_curves(&self.out)?;
        }
        Ok(all)
    }
}

use burn::tensor::ElementConversion;
