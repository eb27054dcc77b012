//! The GRPO run (DeepSeekMath §4.1, Algorithm 1 with one iteration): each step samples
//! `prompts_per_step` questions, explores `group_size` outputs each with the current policy,
//! rewards them with the eval grader, and makes one update (mu = 1) against the frozen initial
//! policy as reference. Checkpoints are the trainer's (`step-<N>/`, `latest`, last K kept) and a
//! rerun resumes exactly: prompts and sampling seeds are functions of (seed, step).

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use dsmath_eval::RewardConfig;
use dsmath_model::{LlamaConfig, LlamaForCausalLM, SamplingParams, Tokenizer, load_model};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::optim::{AdamW, AdamWConfig};
use crate::reward_model::{RewardModel, RmSample, RmTrainConfig, rm_optimizer, train_reward_model};
use crate::rl::correction::{self, CorrectionConfig, CorrectionMode};
use crate::rl::critic::Critic;
use crate::rl::explore::{Rollout, explore, informative_groups, max_len, step_ends};
use crate::rl::logprobs::token_logp;
use crate::rl::loss::{Algorithm, GrpoLossConfig};
use crate::rl::parallel::DpGroup;
use crate::rl::update::{GrpoStepStats, UpdateArgs, grpo_update, ppo_update, stats_without_update};
use crate::schedule::{Schedule, ScheduleKind};
use crate::trainer::{compute_dtype, in_dtype, latest, write_checkpoint, write_dir_atomic};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoSection {
    /// G: outputs per question (the paper: 64).
    pub group_size: usize,
    pub prompts_per_step: usize,
    /// The paper: 1024.
    pub max_new_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub loss: GrpoLossConfig,
    pub reward: RewardConfig,
    /// mu: policy updates per exploration (the paper: 1). Later updates see ratios != 1 and clip.
    pub mu: usize,
    /// Dynamic sampling (DAPO): drop groups whose rewards are all equal and explore more
    /// questions, up to `max_refills` extra rounds, until `prompts_per_step` groups remain.
    pub dynamic_sampling: bool,
    pub max_refills: usize,
    /// A reward model directory (`RewardModel::save`): its probability replaces the grader's
    /// reward (outcome supervision), or scores every step with `process = true`.
    pub reward_model: Option<String>,
    /// Process supervision (§4.1.3): per-step rewards from the reward model, token advantages
    /// = sum of the group-normalised rewards of the steps from the token's own onward.
    pub process: bool,
    /// Steps end after this text (a PRM's step boundary).
    pub step_delimiter: String,
    /// Iterative RL (Algorithm 1): every `iteration_steps` steps the reference becomes the
    /// current policy and the reward model continues training on the iteration's policy samples
    /// (labelled by the grader) plus `rm_replay` of the older ones. 0: one iteration.
    pub iteration_steps: u64,
    pub rm_replay: f64,
    pub rm_lr: f64,
    /// Rollouts per forward / backward of the update (gradients accumulated over the step's
    /// micro-batches; any size gives the same step). 0: the whole batch at once.
    pub micro_batch: usize,
    /// Completion positions per LM-head chunk: the update and the log-probs never hold more than
    /// `logits_chunk x vocab` logits.
    pub logits_chunk: usize,
    /// The frozen reference's weights: `f32`, or `bf16` / `f16` (half the memory).
    pub reference_dtype: Precision,
    /// Prompts longer than this many tokens are left out (reported); the memory plan's prompt
    /// length.
    pub max_prompt_tokens: usize,
    /// Sampler / trainer mismatch correction (truncated importance sampling); off by default.
    pub correction: CorrectionConfig,
}

/// A weight dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Bf16,
    F16,
}

impl Precision {
    /// The cast to apply to f32 weights (`None` for f32).
    pub fn dtype(self) -> Option<burn::tensor::DType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(burn::tensor::DType::BF16),
            Precision::F16 => Some(burn::tensor::DType::F16),
        }
    }

    pub fn bytes(self) -> usize {
        if self == Precision::F32 { 4 } else { 2 }
    }
}

impl Default for GrpoSection {
    fn default() -> Self {
        GrpoSection {
            group_size: 64,
            prompts_per_step: 16,
            max_new_tokens: 1024,
            temperature: 1.0,
            top_p: 1.0,
            loss: GrpoLossConfig::default(),
            reward: RewardConfig::default(),
            mu: 1,
            dynamic_sampling: false,
            max_refills: 3,
            reward_model: None,
            process: false,
            step_delimiter: "\n".into(),
            iteration_steps: 0,
            rm_replay: 0.1,
            rm_lr: 1e-5,
            micro_batch: 8,
            logits_chunk: dsmath_model::head::DEFAULT_CHUNK,
            reference_dtype: Precision::F32,
            max_prompt_tokens: 1024,
            correction: CorrectionConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoData {
    /// RL prompts: JSONL `{"question", "gold"}`.
    pub prompts: String,
    /// With a chat template in the model's tokenizer directory, each prompt is one user turn in
    /// it (the question plus DeepSeekMath's \boxed{} instruction); `true` keeps DeepSeekMath's
    /// plain "User: ... Assistant:" text.
    pub plain_prompt: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoTrain {
    pub steps: u64,
    pub checkpoint_every: u64,
    pub keep_last: usize,
    pub seed: u64,
    /// Compute dtype, as `[train] dtype` of pretraining / SFT: `f32`, or mixed precision `bf16` /
    /// `f16`: sampling, the reference's and the policy's log-probs (and the policy's backward) run
    /// on a cast view of the f32 weights; log-probs, the loss and AdamW stay f32.
    pub dtype: String,
    /// Data parallel ([`crate::rl::parallel`]), as `[train]` of pretraining / SFT: ranks on this
    /// many devices (GPUs 0..N; threads on a CPU backend); `grpo.prompts_per_step` must be a
    /// multiple of devices x nodes.
    pub devices: usize,
    /// Multi-node: the number of nodes (processes with `devices` devices each), this node's
    /// index, the orchestrator (`ws://host:port`, `cargo xtask orchestrator`) and where the
    /// other nodes reach this one (`ws://host:port`).
    pub nodes: usize,
    pub node_rank: usize,
    pub orchestrator: String,
    pub node_address: String,
    /// Seconds a rank waits in one all-reduce (or for the other nodes to join) before it stops
    /// with an error; it must cover the longest gap between ranks reaching a step's all-reduce
    /// (uneven exploration, checkpoint writes).
    pub collective_timeout_s: u64,
}

impl Default for GrpoTrain {
    fn default() -> Self {
        GrpoTrain {
            steps: 100,
            checkpoint_every: 50,
            keep_last: 2,
            seed: 0,
            dtype: "f32".into(),
            devices: 1,
            nodes: 1,
            node_rank: 0,
            orchestrator: String::new(),
            node_address: String::new(),
            collective_timeout_s: 1800,
        }
    }
}

/// A GRPO config file (`[model] init`, `[data] prompts`, `[grpo]`, `[optim]`, `[schedule]`, `[train]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoConfig {
    pub model: crate::trainer::ModelSection,
    pub data: GrpoData,
    pub grpo: GrpoSection,
    pub optim: AdamWConfig,
    pub schedule: Schedule,
    pub train: GrpoTrain,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            model: Default::default(),
            data: Default::default(),
            grpo: Default::default(),
            // The paper: lr 1e-6, constant.
            optim: AdamWConfig {
                weight_decay: 0.0,
                ..Default::default()
            },
            schedule: Schedule {
                kind: ScheduleKind::Constant,
                peak_lr: 1e-6,
                warmup_steps: 0,
                ..Default::default()
            },
            train: Default::default(),
        }
    }
}

impl GrpoConfig {
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::Io(path.into(), e.to_string()))?;
        let cfg: GrpoConfig =
            toml::from_str(&text).map_err(|e| TrainError::Config(path.into(), e.to_string()))?;
        cfg.check()
            .map_err(|e| TrainError::Config(path.into(), e))?;
        Ok(cfg)
    }

    /// Values that cannot run, named by key.
    pub fn check(&self) -> Result<(), String> {
        let g = &self.grpo;
        if g.group_size == 0 || g.prompts_per_step == 0 {
            return Err(format!(
                "grpo.group_size ({}) and grpo.prompts_per_step ({}) must be positive",
                g.group_size, g.prompts_per_step
            ));
        }
        let batch = g.group_size * g.prompts_per_step;
        if g.micro_batch > batch {
            return Err(format!(
                "grpo.micro_batch ({}) is larger than the step's batch (prompts_per_step x group_size = {batch})",
                g.micro_batch
            ));
        }
        if g.logits_chunk == 0 {
            return Err("grpo.logits_chunk must be positive".into());
        }
        if g.max_new_tokens == 0 {
            return Err("grpo.max_new_tokens must be positive".into());
        }
        g.correction.check()?;
        crate::rl::parallel::check(self)?;
        compute_dtype(&self.train.dtype)
            .map_err(|e| format!("train.dtype `{}`: {e}", self.train.dtype))?;
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GrpoState {
    step: u64,
    config: GrpoConfig,
}

/// One line of the GRPO `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct GrpoMetrics {
    pub stage: &'static str,
    pub step: u64,
    pub lr: f64,
    pub rollout_tokens_per_s: f64,
    /// Exploration (sampling and rewards) of the step; the rest of `step_seconds` is the update.
    pub rollout_seconds: f64,
    /// Completion tokens trained on per second of update (all `mu` updates; PPO's critic included).
    pub train_tokens_per_s: f64,
    pub step_seconds: f64,
    #[serde(flatten)]
    pub stats: GrpoStepStats,
}

pub struct GrpoRun<B: AutodiffBackend> {
    pub cfg: GrpoConfig,
    pub out: PathBuf,
    pub policy: LlamaForCausalLM<B>,
    reference: LlamaForCausalLM<B::InnerBackend>,
    pub tok: Tokenizer,
    model_cfg: LlamaConfig,
    tokenizer_dir: PathBuf,
    opt: AdamW<B::InnerBackend>,
    prompts: Vec<(Vec<u32>, String)>,
    pub step: u64,
    /// The reward of (completion, gold); the grader with `[grpo.reward]` unless replaced.
    reward: RewardFn,
    /// `[grpo] reward_model`, when given.
    pub reward_model: Option<RewardModel<B::InnerBackend>>,
    /// Iterative RL: labelled policy samples `(step, sample)` for the reward model.
    rm_samples: Vec<(u64, RmSample)>,
    /// Where the current reward model is stored.
    rm_dir: PathBuf,
    /// PPO's value model (`algorithm = "ppo"`).
    pub critic: Option<Critic<B>>,
    device: B::Device,
    /// Data parallel: this rank's group (`None`: one device).
    dp: Option<DpGroup>,
}

impl<B: AutodiffBackend> GrpoRun<B> {
    /// The run's prompts as token ids, with their gold answers.
    pub fn prompts(&self) -> &[(Vec<u32>, String)] {
        &self.prompts
    }
}

/// RL prompts: JSONL `{"question", "gold"}` (a numeric gold is taken as its text); a line
/// without them is an error naming the file and line.
pub fn read_rl_prompts(path: &Path) -> Result<Vec<(String, String)>, TrainError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| TrainError::Io(path.into(), e.to_string()))?;
    let mut out = vec![];
    for (i, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(l)
            .map_err(|e| TrainError::Io(path.into(), format!("line {}: {e}", i + 1)))?;
        let (Some(q), Some(g)) = (
            v["question"].as_str(),
            v.get("gold").map(|g| {
                g.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| g.to_string())
            }),
        ) else {
            return Err(TrainError::Io(
                path.into(),
                format!("line {}: needs `question` and `gold`", i + 1),
            ));
        };
        out.push((q.to_string(), g));
    }
    Ok(out)
}

/// The newest `<prefix>-<s>` directory of `out` with `s <= step`.
fn newest_at(out: &Path, prefix: &str, step: u64) -> Option<PathBuf> {
    std::fs::read_dir(out)
        .ok()?
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_str()?.to_string();
            let s: u64 = name.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok()?;
            (s <= step).then_some((s, out.join(name)))
        })
        .max_by_key(|x| x.0)
        .map(|x| x.1)
}

/// A reward function: `(completion, gold) -> reward`.
pub type RewardFn = std::sync::Arc<
    dyn Fn(&str, &str) -> f64 + Send + Sync + std::panic::RefUnwindSafe + std::panic::UnwindSafe,
>;

impl<B: AutodiffBackend> GrpoRun<B> {
    pub fn new(cfg: GrpoConfig, out: &Path, device: &B::Device) -> Result<Self, TrainError> {
        let init = PathBuf::from(cfg.model.init.clone().ok_or_else(|| {
            TrainError::Config(
                out.join("config.toml"),
                "[model] init (the SFT model) is required".into(),
            )
        })?);
        cfg.check()
            .map_err(|e| TrainError::Config(out.join("config.toml"), e))?;
        std::fs::create_dir_all(out).map_err(|e| TrainError::Io(out.into(), e.to_string()))?;
        let resume = latest(out);
        // Iterative RL: the reference of the iteration the run is in.
        let resumed = resume.as_ref().and_then(|d| {
            let st: GrpoState =
                serde_json::from_str(&std::fs::read_to_string(d.join("trainer_state.json")).ok()?)
                    .ok()?;
            Some(st.step)
        });
        let ref_dir = resumed
            .and_then(|s| newest_at(out, "reference", s))
            .unwrap_or(init.clone());
        let reference = in_dtype(
            &load_model::<B::InnerBackend>(&ref_dir, device)?.model,
            cfg.grpo.reference_dtype.dtype(),
        );
        let start = load_model::<B>(resume.as_deref().unwrap_or(&init), device)?;
        let tokenizer_dir = cfg
            .model
            .tokenizer
            .clone()
            .map(PathBuf::from)
            .unwrap_or(init.clone());
        let tok = Tokenizer::from_dir(&tokenizer_dir, &start.config)?;
        let mut prompts = vec![];
        let max_prompt = start
            .config
            .max_position_embeddings
            .saturating_sub(cfg.grpo.max_new_tokens)
            .clamp(1, cfg.grpo.max_prompt_tokens.max(1));
        let mut too_long = 0;
        let chat = if cfg.data.plain_prompt {
            None
        } else {
            dsmath_model::chat::ChatTemplate::from_dir(&tokenizer_dir)?
        };
        for (q, g) in read_rl_prompts(Path::new(&cfg.data.prompts))? {
            let text = match &chat {
                Some(t) => t.user_prompt(&dsmath_eval::prompts::instruct_turn(&q))?,
                None => dsmath_eval::prompts::instruct(&q),
            };
            let ids = tok.encode_prompt(&text)?;
            if ids.len() > max_prompt {
                too_long += 1; // reported, not trained on: it would not fit the context
                continue;
            }
            prompts.push((ids, g));
        }
        if too_long > 0 {
            eprintln!(
                "warning: {too_long} prompt(s) longer than {max_prompt} tokens (grpo.max_prompt_tokens, or the context minus max_new_tokens) were left out"
            );
        }
        if prompts.is_empty() {
            return Err(TrainError::Io(
                cfg.data.prompts.clone().into(),
                "no usable prompts".into(),
            ));
        }
        let (opt, step) = match &resume {
            Some(dir) => {
                let st: GrpoState = serde_json::from_str(
                    &std::fs::read_to_string(dir.join("trainer_state.json"))
                        .map_err(|e| TrainError::Io(dir.clone(), e.to_string()))?,
                )
                .map_err(|e| TrainError::Io(dir.join("trainer_state.json"), e.to_string()))?;
                (
                    AdamW::load(
                        cfg.optim.clone(),
                        &dir.join("optimizer.safetensors"),
                        device,
                    )?,
                    st.step,
                )
            }
            None => (AdamW::new(cfg.optim.clone()), 0),
        };
        let rcfg = cfg.grpo.reward;
        let reward: RewardFn = std::sync::Arc::new(move |text: &str, gold: &str| {
            dsmath_eval::reward_with(&rcfg, "", text, gold) as f64
        });
        let mut rm_dir = PathBuf::new();
        let reward_model = match &cfg.grpo.reward_model {
            Some(dir) => {
                let dir = resumed
                    .and_then(|s| newest_at(out, "reward_model", s))
                    .unwrap_or(PathBuf::from(dir));
                let (rm, rc) = RewardModel::load(&dir, device)?;
                rm_dir = dir.clone();
                if rc.vocab_size != start.config.vocab_size {
                    return Err(TrainError::Config(
                        dir,
                        format!(
                            "reward model vocabulary {} != policy's {}",
                            rc.vocab_size, start.config.vocab_size
                        ),
                    ));
                }
                Some(rm)
            }
            None if cfg.grpo.process => {
                return Err(TrainError::Config(
                    out.join("config.toml"),
                    "[grpo] process = true needs a reward_model".into(),
                ));
            }
            None => None,
        };
        // Samples logged after the checkpoint we resume from are collected again.
        let sp = out.join("rm_samples.jsonl");
        let rm_samples: Vec<(u64, RmSample)> = std::fs::read_to_string(&sp)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<(u64, RmSample)>(l).ok())
            .filter(|(s, _)| *s <= step)
            .collect();
        if sp.exists() {
            let text: String = rm_samples
                .iter()
                .map(|x| format!("{}\n", serde_json::to_string(x).unwrap_or_default()))
                .collect();
            dsmath_model::checkpoint::write_atomic(&sp, text.as_bytes())?;
        }
        // PPO's critic: from the checkpoint we resume, else the SFT model with a zero head.
        let critic = match (cfg.grpo.loss.algorithm, &resume) {
            (Algorithm::Ppo, Some(dir)) => Some(Critic {
                model: RewardModel::load(&dir.join("critic"), device)?.0,
                opt: AdamW::load(
                    cfg.optim.clone(),
                    &dir.join("critic_optimizer.safetensors"),
                    device,
                )?,
            }),
            (Algorithm::Ppo, None) => Some(Critic {
                model: RewardModel::from_policy(load_model::<B>(&init, device)?.model),
                opt: AdamW::new(cfg.optim.clone()),
            }),
            _ => None,
        };
        Ok(GrpoRun {
            out: out.to_path_buf(),
            policy: start.model,
            reference,
            tok,
            model_cfg: start.config,
            tokenizer_dir,
            opt,
            prompts,
            step,
            cfg,
            reward,
            reward_model,
            rm_samples,
            rm_dir,
            critic,
            device: device.clone(),
            dp: None,
        })
    }

    /// Run as one rank of data-parallel GRPO ([`crate::rl::parallel::grpo_data_parallel`]).
    pub fn with_group(mut self, dp: DpGroup) -> Self {
        self.dp = Some(dp);
        self
    }

    /// Whether this rank writes the run directory (one device, or each node's first rank).
    fn writes(&self) -> bool {
        self.dp.is_none_or(|d| d.peer.local == 0)
    }

    /// Replace the reward (a reward model, a custom verifier).
    pub fn with_reward(mut self, reward: RewardFn) -> Self {
        self.reward = reward;
        self
    }

    /// The prompts of step `s`: a seeded permutation per pass over the data. Dynamic sampling's
    /// refill round `r` (>= 1) draws `k` questions from its own seeded stream.
    fn batch(&self, s: u64, round: usize, k: usize) -> Vec<(Vec<u32>, String)> {
        let n = self.prompts.len();
        if round > 0 {
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.cfg.train.seed
                    ^ s.wrapping_mul(0xA076_1D64_78BD_642F)
                    ^ (round as u64).wrapping_mul(0xE703_7ED1_A0B4_28DB),
            );
            return (0..k)
                .map(|_| self.prompts[rand::Rng::random_range(&mut rng, 0..n)].clone())
                .collect();
        }
        (0..k)
            .map(|j| {
                let flat = s as usize * k + j;
                let (epoch, at) = (flat / n, flat % n);
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(
                    self.cfg.train.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ));
                self.prompts[order[at]].clone()
            })
            .collect()
    }

    pub fn step_once(&mut self) -> Result<GrpoMetrics, TrainError> {
        let t0 = std::time::Instant::now();
        let g = &self.cfg.grpo;
        let k = g.prompts_per_step.max(1);
        let params = SamplingParams {
            n: g.group_size,
            temperature: g.temperature,
            top_p: g.top_p,
            top_k: 0,
            max_new_tokens: g.max_new_tokens,
            seed: self
                .cfg
                .train
                .seed
                .wrapping_add(self.step.wrapping_mul(1_000_003)),
            stop: vec![],
            ignore_eos: false,
            first_prompt: 0,
        };
        let rf = self.reward.clone();
        let reward = move |text: &str, gold: &str| rf(text, gold);
        // Offline algorithms (RFT, DPO) learn from samples of the SFT model (the reference).
        let dtype = compute_dtype(&self.cfg.train.dtype).ok().flatten();
        let inner = if g.loss.algorithm.offline() && g.iteration_steps == 0 {
            self.reference.clone()
        } else {
            self.policy.valid()
        };
        let inner = in_dtype(&inner, dtype);
        // Explore; with dynamic sampling keep only informative groups and refill.
        let (mut rollouts, mut failed, mut groups) = (vec![], 0, 0);
        let (mut dropped, mut refills) = (0, 0);
        // Data parallel: this rank's share of the step's prompts (whole groups).
        let (world, rank) = self.dp.map_or((1, 0), |d| (d.peer.world, d.peer.rank));
        let k = k / world;
        for round in 0..=if g.dynamic_sampling { g.max_refills } else { 0 } {
            let want = k - groups;
            let mut batch = self.batch(self.step, round, want * world);
            batch.drain(..rank * want);
            batch.truncate(want);
            let mut p = params.clone();
            p.seed = params.seed.wrapping_add(round as u64 * 0x51_7CC1);
            p.first_prompt = rank * want;
            let (mut rs, f) = explore(&inner, &self.tok, &batch, g.group_size, &p, &reward)?;
            failed += f;
            if let Some(rm) = &self.reward_model {
                if g.iteration_steps > 0 {
                    // The grader's verdicts on fresh policy samples: the RM's next training data.
                    let sp = self.out.join("rm_samples.jsonl");
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&sp)
                        .map_err(|e| TrainError::Io(sp.clone(), e.to_string()))?;
                    for r in &rs {
                        let x = (
                            self.step + 1,
                            RmSample {
                                prompt: self.tok.decode(&r.prompt_ids)?,
                                response: r.text.clone(),
                                label: Some(if r.reward > 0.5 { 1.0 } else { 0.0 }),
                                step_labels: None,
                            },
                        );
                        writeln!(f, "{}", serde_json::to_string(&x).unwrap_or_default())
                            .map_err(|e| TrainError::Io(sp.clone(), e.to_string()))?;
                        self.rm_samples.push(x);
                    }
                }
                score_with_rm(rm, &self.tok, &mut rs, g.process, &g.step_delimiter);
            }
            refills = round;
            let keep: Vec<usize> = if g.dynamic_sampling {
                informative_groups(&rs, batch.len())
            } else {
                (0..batch.len()).collect()
            };
            dropped += batch.len() - keep.len();
            for (new, &old) in keep.iter().enumerate() {
                rollouts.extend(rs.iter().filter(|r| r.group == old).cloned().map(|mut r| {
                    r.group = groups + new;
                    r
                }));
            }
            groups += keep.len();
            if groups >= k {
                break;
            }
        }
        let rollout_s = t0.elapsed().as_secs_f64();
        let tokens: usize = rollouts.iter().map(|r| r.tokens.len()).sum();
        let lr = self.cfg.schedule.lr(self.step, self.cfg.train.steps);
        let mut policy = self.policy.clone();
        let mut stats = None;
        let args = UpdateArgs {
            groups,
            loss: g.loss.clone(),
            lr,
            grad_clip: self.cfg.optim.grad_clip,
            pad: self.tok.pad_id,
            dtype,
            micro_batch: g.micro_batch,
            logits_chunk: g.logits_chunk,
            dp: self.dp,
        };
        let mut corrected = correction::CorrectionStats::default();
        if groups > 0 && g.correction.mode != CorrectionMode::Off {
            // pi_old as the trainer computes it, under the policy that sampled.
            let t = max_len(&rollouts);
            let (trainer, _) = token_logp(
                &inner,
                &rollouts,
                self.tok.pad_id,
                args.micro_batch(rollouts.len()),
                g.logits_chunk,
                false,
            );
            corrected = correction::apply(&g.correction, &mut rollouts, &trainer, t);
        }
        if groups > 0 {
            for _ in 0..g.mu.max(1) {
                let (p, st) = match self.critic.take() {
                    Some(critic) => {
                        let (p, c, st) = ppo_update(
                            policy,
                            critic,
                            &self.reference,
                            &mut self.opt,
                            &rollouts,
                            &args,
                        )?;
                        self.critic = Some(c);
                        (p, st)
                    }
                    None => grpo_update(policy, &self.reference, &mut self.opt, &rollouts, &args)?,
                };
                policy = p;
                // Rewards, lengths and the sampler mismatch are the first update's; loss, KL,
                // clip fractions and grad norm the last one's.
                stats = Some(match stats {
                    None => st,
                    Some(first) => GrpoStepStats {
                        loss: st.loss,
                        kl: st.kl,
                        clip_low: st.clip_low,
                        clip_high: st.clip_high,
                        grad_norm: st.grad_norm,
                        skipped: st.skipped,
                        value_loss: st.value_loss,
                        ..first
                    },
                });
            }
        }
        let mut stats = stats.unwrap_or_else(|| {
            let mut s = stats_without_update(&rollouts, 1, 1, 0.0);
            s.skipped = true;
            s
        });
        stats.is_capped_share = corrected.is_capped_share;
        stats.is_masked_share = corrected.is_masked_share;
        let (mut tokens, mut failed) = (tokens, failed);
        if let Some(dp) = &self.dp {
            // The whole step's counts (the correction's shares stay this rank's).
            let s = dp.sum::<B::InnerBackend>(&[tokens as f64, failed as f64], &self.device)?;
            (tokens, failed) = (s[0].round() as usize, s[1].round() as usize);
        }
        stats.failed_rewards = failed;
        stats.dropped_groups = dropped;
        stats.refills = refills;
        self.policy = policy;
        self.step += 1;
        Ok(GrpoMetrics {
            stage: "grpo",
            step: self.step,
            lr,
            rollout_tokens_per_s: tokens as f64 / rollout_s.max(1e-9),
            rollout_seconds: rollout_s,
            train_tokens_per_s: (tokens * g.mu.max(1)) as f64
                / (t0.elapsed().as_secs_f64() - rollout_s).max(1e-9),
            step_seconds: t0.elapsed().as_secs_f64(),
            stats,
        })
    }

    /// Algorithm 1's outer loop: pi_ref <- pi_theta (saved as `reference-<step>/`), and the reward
    /// model (if any) trained one epoch on this iteration's samples plus `rm_replay` of the older
    /// ones (saved as `reward_model-<step>/`). A resumed run loads the newest of each.
    pub fn next_iteration(&mut self) -> Result<(), TrainError> {
        let s = self.step;
        let reference = self.policy.valid();
        let dir = self.out.join(format!("reference-{s}"));
        if !self.writes() {
            // Another rank of this node writes it; every rank takes the new reference.
            self.reference = in_dtype(&reference, self.cfg.grpo.reference_dtype.dtype());
            return Ok(());
        }
        write_dir_atomic(&dir, |tmp| {
            dsmath_model::save_model(
                tmp,
                &self.model_cfg,
                &reference,
                Some(&self.tokenizer_dir),
                dsmath_model::SaveDtype::F32,
            )?;
            Ok(())
        })?;
        self.reference = in_dtype(&reference, self.cfg.grpo.reference_dtype.dtype());
        if let Some(rm) = self.reward_model.take() {
            let it = self.cfg.grpo.iteration_steps;
            let fresh: Vec<RmSample> = self
                .rm_samples
                .iter()
                .filter(|(t, _)| *t + it > s)
                .map(|x| x.1.clone())
                .collect();
            let mut old: Vec<RmSample> = self
                .rm_samples
                .iter()
                .filter(|(t, _)| *t + it <= s)
                .map(|x| x.1.clone())
                .collect();
            old.shuffle(&mut ChaCha8Rng::seed_from_u64(self.cfg.train.seed ^ s));
            // The replay buffer: historical samples making up `rm_replay` of the training set.
            let r = self.cfg.grpo.rm_replay.clamp(0.0, 0.99);
            old.truncate(((fresh.len() as f64) * r / (1.0 - r)).round() as usize);
            let data: Vec<RmSample> = fresh.into_iter().chain(old).collect();
            let cfg = RmTrainConfig {
                process: false,
                lr: self.cfg.grpo.rm_lr,
                epochs: 1,
                seed: self.cfg.train.seed ^ s,
                ..Default::default()
            };
            drop(rm);
            let (ad, _) = RewardModel::<B>::load(&self.rm_dir, &self.device)?;
            let (trained, _) = train_reward_model(ad, &self.tok, &data, &cfg, &mut rm_optimizer())?;
            let trained = trained.valid();
            let dir = self.out.join(format!("reward_model-{s}"));
            write_dir_atomic(&dir, |tmp| {
                trained.save(tmp, &self.model_cfg, Some(&self.tokenizer_dir))
            })?;
            self.reward_model = Some(trained);
            self.rm_dir = dir;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<PathBuf, TrainError> {
        let state = GrpoState {
            step: self.step,
            config: self.cfg.clone(),
        };
        write_checkpoint(
            &self.out,
            self.step,
            &self.model_cfg,
            &self.policy.valid(),
            &self.tokenizer_dir,
            &self.opt,
            &state,
            self.cfg.train.keep_last,
            |tmp| {
                if let Some(c) = &self.critic {
                    // PPO's value model and its optimizer travel with the policy.
                    c.model
                        .valid()
                        .save(&tmp.join("critic"), &self.model_cfg, None)?;
                    c.opt.save(&tmp.join("critic_optimizer.safetensors"))?;
                }
                Ok(())
            },
        )
    }

    /// Run to `train.steps` (or `stop_after` more), logging `metrics.jsonl` and plotting rewards.
    pub fn run(
        &mut self,
        stop_after: Option<u64>,
        progress: bool,
    ) -> Result<Vec<GrpoMetrics>, TrainError> {
        let total = self.cfg.train.steps;
        let until = stop_after.map_or(total, |n| (self.step + n).min(total));
        let bar = if progress {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "grpo {bar:30} {pos}/{len} steps [{elapsed} < {eta}] {msg}",
            )
            .unwrap(),
        );
        bar.set_position(self.step);
        let mp = self.out.join("metrics.jsonl");
        let mut f = match self.writes() {
            true => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&mp)
                    .map_err(|e| TrainError::Io(mp.clone(), e.to_string()))?,
            ),
            false => None,
        };
        let mut all = vec![];
        while self.step < until {
            let m = self.step_once()?;
            if let Some(f) = &mut f {
                writeln!(f, "{}", serde_json::to_string(&m).unwrap_or_default())
                    .map_err(|e| TrainError::Io(mp.clone(), e.to_string()))?;
            }
            bar.set_position(self.step);
            bar.set_message(format!(
                "reward {:.3} kl {:.4}",
                m.stats.reward_mean, m.stats.kl
            ));
            let it = self.cfg.grpo.iteration_steps;
            if it > 0 && self.step.is_multiple_of(it) && self.step < total {
                self.next_iteration()?;
            }
            let every = self.cfg.train.checkpoint_every;
            if self.writes()
                && ((every > 0 && self.step.is_multiple_of(every)) || self.step == total)
            {
                self.checkpoint()?;
            }
            all.push(m);
        }
        bar.finish_and_clear();
        if !self.writes() {
            return Ok(all);
        }
        let rows = crate::plots::read_jsonl(&mp);
        let pts = |k: &str| {
            rows.iter()
                .filter_map(|v| Some((v["step"].as_f64()?, v[k].as_f64()?)))
                .collect::<Vec<_>>()
        };
        crate::plots::line_chart(
            &self.out.join("reward.svg"),
            "GRPO reward",
            "mean reward",
            &[(
                "reward",
                pts("reward_mean"),
                plotters::style::RGBColor(40, 90, 200),
            )],
        )?;
        crate::plots::line_chart(
            &self.out.join("kl.svg"),
            "KL to reference",
            "k3 KL",
            &[("kl", pts("kl"), plotters::style::RGBColor(220, 60, 40))],
        )?;
        Ok(all)
    }
}

/// Rewards from a reward model: the probability at the last token (outcome), or at the end of
/// every step (process; the outcome reward is then the last step's, for metrics and dynamic
/// sampling).
pub fn score_with_rm<B: burn::tensor::backend::Backend>(
    rm: &RewardModel<B>,
    tok: &Tokenizer,
    rollouts: &mut [Rollout],
    process: bool,
    delimiter: &str,
) {
    for chunk in rollouts.chunks_mut(64) {
        let rows: Vec<Vec<u32>> = chunk
            .iter()
            .map(|r| r.prompt_ids.iter().chain(&r.tokens).copied().collect())
            .collect();
        let mut at = vec![];
        for r in chunk.iter_mut() {
            let p = r.prompt_ids.len();
            let (step_of, ends) = if process {
                step_ends(tok, &r.tokens, delimiter)
            } else {
                (vec![], vec![r.tokens.len().saturating_sub(1)])
            };
            r.step_of = step_of;
            at.push(ends.iter().map(|e| p + e).collect::<Vec<usize>>());
        }
        let scores = rm.score_at(&rows, &at, tok.pad_id);
        for (r, s) in chunk.iter_mut().zip(scores) {
            r.reward = s.last().copied().unwrap_or(0.0);
            if process {
                r.step_rewards = Some(s);
            }
        }
    }
}
