//! The memory plan of a GRPO run (`cargo xtask grpo --plan`): what each device holds at the peak
//! of the two phases of a step, exploration (sampling with a KV cache) and the micro-batched
//! update (autodiff activations of one micro-batch, one LM-head chunk, the accumulated
//! gradients), for the config, the model's config.json and the data-parallel device count.
//! The activation count per token and layer follows what burn-autodiff keeps for
//! `dsmath_model::LlamaForCausalLM` (the inputs of every matmul, norm, RoPE, SiLU and the
//! eager attention's scores and probabilities); it was checked against the measured peak RSS of
//! a real-model step (BENCHMARKS.md).

use burn::tensor::DType;
use dsmath_model::LlamaConfig;

use crate::rl::loss::Algorithm;
use crate::rl::run::GrpoConfig;
use crate::trainer::compute_dtype;

/// One line of the plan: what, bytes per device, and how it was counted.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanItem {
    pub what: &'static str,
    pub bytes: f64,
    pub how: String,
}

/// The per-device memory of a GRPO step: the items of each phase and the peak.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    /// Held through the whole step (weights, optimizer state, reference).
    pub resident: Vec<PlanItem>,
    /// Exploration only.
    pub explore: Vec<PlanItem>,
    /// The update only.
    pub update: Vec<PlanItem>,
    pub devices: usize,
}

fn sum(items: &[PlanItem]) -> f64 {
    items.iter().map(|i| i.bytes).sum()
}

impl MemoryPlan {
    /// The peak per device: resident plus the larger phase.
    pub fn total(&self) -> f64 {
        sum(&self.resident) + sum(&self.explore).max(sum(&self.update))
    }

    /// The `k` largest items of the peak (resident and the larger phase), largest first, as
    /// `what GiB` text.
    pub fn largest(&self, k: usize) -> String {
        let phase = if sum(&self.explore) > sum(&self.update) {
            &self.explore
        } else {
            &self.update
        };
        let mut items: Vec<&PlanItem> = self.resident.iter().chain(phase).collect();
        items.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
        items
            .iter()
            .take(k)
            .map(|i| format!("{} {:.2} GiB", i.what, i.bytes / (1u64 << 30) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The plan as a table (GiB per device).
    pub fn render(&self) -> String {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        let mut s = format!("memory plan per device ({} device(s)):\n", self.devices);
        for (phase, items) in [
            ("resident", &self.resident),
            ("exploration", &self.explore),
            ("update", &self.update),
        ] {
            s += &format!("  {phase} ({:.2} GiB)\n", gib(sum(items)));
            for i in items {
                s += &format!("    {:<26} {:>9.2} GiB  {}\n", i.what, gib(i.bytes), i.how);
            }
        }
        s += &format!(
            "  peak: resident + max(exploration, update) = {:.2} GiB\n",
            gib(self.total())
        );
        s
    }
}

fn dtype_bytes(d: Option<DType>) -> f64 {
    match d {
        Some(DType::BF16) | Some(DType::F16) => 2.0,
        _ => 4.0,
    }
}

/// Activation values autodiff keeps per token and layer of a forward through the decoder
/// (one sequence of `t` tokens): norm inputs and outputs (4 h), q / k / v and their RoPE'd
/// copies (2 q + 4 kv), attention scores and probabilities (2 heads x t), the attention output
/// and o_proj's output (2 h), gate, up, SiLU(gate) and their product (4 i), down's output and the
/// residual sums (2 h).
fn activations_per_token_layer(m: &LlamaConfig, t: usize) -> f64 {
    let q = (m.num_attention_heads * m.head_dim()) as f64;
    let kv = (m.num_kv_heads() * m.head_dim()) as f64;
    let (h, i) = (m.hidden_size as f64, m.intermediate_size as f64);
    8.0 * h + 2.0 * q + 4.0 * kv + 2.0 * (m.num_attention_heads * t) as f64 + 4.0 * i
}

/// The plan of `cfg` on `devices` data-parallel devices for the model `m` (its config.json).
pub fn grpo_plan(cfg: &GrpoConfig, m: &LlamaConfig, devices: usize) -> MemoryPlan {
    let g = &cfg.grpo;
    let devices = devices.max(1);
    let p = m.num_parameters() as f64;
    let compute = compute_dtype(&cfg.train.dtype).ok().flatten();
    let cb = dtype_bytes(compute);
    let rb = g.reference_dtype.bytes() as f64;
    let seqs = (g.prompts_per_step * g.group_size).div_ceil(devices);
    let micro = if g.micro_batch == 0 {
        seqs
    } else {
        g.micro_batch.min(seqs)
    };
    let t = g.max_prompt_tokens.min(m.max_position_embeddings) + g.max_new_tokens;
    let layers = m.num_hidden_layers as f64;
    let v = m.vocab_size as f64;
    let h = m.hidden_size as f64;
    let mut resident = vec![
        PlanItem {
            what: "policy weights",
            bytes: 4.0 * p,
            how: format!("{:.3} B parameters x 4 bytes (f32 master)", p / 1e9),
        },
        PlanItem {
            what: "AdamW moments",
            bytes: 8.0 * p,
            how: "2 x 4 bytes per parameter".into(),
        },
        PlanItem {
            what: "reference",
            bytes: rb * p,
            how: format!(
                "frozen copy, {:?} (grpo.reference_dtype)",
                g.reference_dtype
            ),
        },
    ];
    if g.loss.algorithm == Algorithm::Ppo {
        resident.push(PlanItem {
            what: "PPO critic + its AdamW",
            bytes: 16.0 * p,
            how: "a second model: weights, gradients and 2 moments in f32".into(),
        });
    }
    if compute.is_some() {
        resident.push(PlanItem {
            what: "compute-dtype view",
            bytes: cb * p,
            how: format!("the weights cast to {} (train.dtype)", cfg.train.dtype),
        });
    }
    let kv_token = 2.0 * layers * (m.num_kv_heads() * m.head_dim()) as f64 * cb;
    let explore = vec![
        PlanItem {
            what: "KV cache",
            bytes: 2.0 * kv_token * (seqs * t) as f64,
            how: format!(
                "{seqs} sequences x {t} tokens x {:.1} KiB/token, x 2 while a step's cache is extended",
                kv_token / 1024.0
            ),
        },
        PlanItem {
            what: "sampling logits",
            bytes: 3.0 * 4.0 * seqs as f64 * v,
            how: format!(
                "{seqs} rows x {} vocabulary, logits + softmax + sort",
                m.vocab_size
            ),
        },
    ];
    let micro_batches = seqs.div_ceil(micro.max(1));
    let grads = if micro_batches > 1 { 2.0 } else { 1.0 };
    let update = vec![
        PlanItem {
            what: "gradients",
            bytes: grads * 4.0 * p,
            how: if micro_batches > 1 {
                format!("f32, the running sum + one micro-batch's ({micro_batches} micro-batches)")
            } else {
                "f32".into()
            },
        },
        PlanItem {
            what: "activations",
            bytes: activations_per_token_layer(m, t) * layers * (micro * t) as f64 * cb
                + 4.0 * (micro * t) as f64 * h,
            how: format!(
                "one micro-batch (grpo.micro_batch = {micro}) x {t} tokens x {} layers",
                m.num_hidden_layers
            ),
        },
        PlanItem {
            what: "LM-head chunk",
            bytes: 3.0 * 4.0 * g.logits_chunk as f64 * v,
            how: format!(
                "{} positions (grpo.logits_chunk) x {} vocabulary: logits, log-softmax, gradient",
                g.logits_chunk, m.vocab_size
            ),
        },
    ];
    MemoryPlan {
        resident,
        explore,
        update,
        devices,
    }
}

/// Parse a memory size: `24GB`, `80 GiB`, `512MB`, or bytes.
pub fn parse_bytes(s: &str) -> Result<f64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a size such as 24GB or 80GiB"))?;
    let k = match unit.trim() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" | "k" => 1024.0,
        "mb" => 1e6,
        "mib" | "m" => 1024.0 * 1024.0,
        "gb" => 1e9,
        "gib" | "g" => (1u64 << 30) as f64,
        "tb" => 1e12,
        "tib" | "t" => (1u64 << 40) as f64,
        u => {
            return Err(format!(
                "`{s}`: unknown unit `{u}` (B, KB, MB, GB, TB or KiB ... TiB)"
            ));
        }
    };
    Ok(x * k)
}
