//! HF `config.json` for LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM, read unchanged
//! (transformers' `LlamaConfig` / `Qwen2Config` / `Qwen3Config` field names), with presets, RoPE
//! frequencies (`modeling_rope_utils.py`: default, linear, llama3) and checks for keys that change
//! the math.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ModelError;

/// The architectures dsmath implements (`architectures[0]` in config.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// LLaMA and DeepSeek(-Math) LLaMA-style checkpoints.
    Llama,
    /// Qwen2 / Qwen2.5: LLaMA with q/k/v biases.
    Qwen2,
    /// Qwen3: LLaMA with a per-head RMSNorm on q and k before RoPE (`q_norm`, `k_norm`) and an
    /// explicit `head_dim`.
    Qwen3,
}

impl Architecture {
    /// The HF class name (`architectures[0]`).
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Qwen3 => "Qwen3ForCausalLM",
        }
    }
}

/// `eos_token_id` is an int or a list of ints in HF configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// A decoder config, field names as in HF `LlamaConfig` / `Qwen2Config` / `Qwen3Config`.
///
/// Every key is kept (unknown ones in `other`, so a config written back is the one read). Keys
/// that do not change the forward pass (`transformers_version`, `use_cache`, other frameworks'
/// settings, flags at their no-op value) are accepted silently; a known key whose value changes
/// the math in a way dsmath does not implement is an error naming key and value; any other key is
/// a warning naming it (printed once per process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<Value>,
    /// transformers >= 5 writes `rope_parameters` instead of `rope_theta` + `rope_scaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<Value>,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// LLaMA: bias on q/k/v/o. Qwen2 always has q/k/v biases (see [`LlamaConfig::qkv_bias`]).
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_sliding_window: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<Value>,
    /// Every other key, checked by [`LlamaConfig::validate`].
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn default_model_type() -> String {
    "llama".into()
}
fn default_act() -> String {
    "silu".into()
}
fn default_max_pos() -> usize {
    2048
}
fn default_init_range() -> f64 {
    0.02
}
fn default_eps() -> f64 {
    1e-6
}

/// Keys HF configs carry that do not change the forward pass of these architectures.
const HARMLESS_KEYS: &[&str] = &[
    "_name_or_path",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "use_cache",
    "pretraining_tp", // HF splits matmuls into tp slices: the same product
    "attention_dropout",
    "max_window_layers", // only read when use_sliding_window is true (checked in validate)
    "layer_types",       // checked in validate: all must be full_attention
    "output_attentions",
    "output_hidden_states",
    "return_dict",
    "torchscript",
    "is_encoder_decoder",
    "is_decoder",
    "add_cross_attention",
    "tie_encoder_decoder",
    "chunk_size_feed_forward",
    "tokenizer_class",
    "prefix",
    "sep_token_id",
    "decoder_start_token_id",
    "task_specific_params",
    "problem_type",
    "id2label",
    "label2id",
    "finetuning_task",
    "auto_map",
    "quantization_config_ignored",
    "use_bfloat16",
    "pruned_heads",
    "cross_attention_hidden_size",
    "tf_legacy_loss",
    "bad_words_ids",
    "begin_suppress_tokens",
    "diversity_penalty",
    "do_sample",
    "early_stopping",
    "encoder_no_repeat_ngram_size",
    "exponential_decay_length_penalty",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "length_penalty",
    "max_length",
    "min_length",
    "no_repeat_ngram_size",
    "num_beam_groups",
    "num_beams",
    "num_return_sequences",
    "output_scores",
    "remove_invalid_values",
    "repetition_penalty",
    "return_dict_in_generate",
    "suppress_tokens",
    "temperature",
    "top_k",
    "top_p",
    "typical_p",
    "architectures",
    "is_llama_config",        // nanotron's marker on SmolLM2 configs
    "transformers.js_config", // transformers.js runtime settings (KV-cache dtypes)
    "keys_to_ignore_at_inference",
    "base_model_tp_plan",
    "base_model_pp_plan",
    "_attn_implementation",
    "_attn_implementation_autoset",
    "mlp_only_layers", // Qwen MoE configs: empty for dense models (num_experts is checked)
    "decoder_sparse_step",
];

impl LlamaConfig {
    /// Read and validate `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_json(&text).map_err(|e| e.in_file(path))
    }

    /// Parse and validate config.json text.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let cfg: LlamaConfig =
            serde_json::from_str(text).map_err(|e| ModelError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reject what dsmath does not implement instead of computing something else.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::Config(msg));
        self.architecture()?;
        for (key, value) in &self.other {
            if let Some(msg) = unsupported_value(key, value) {
                return bad(msg);
            }
        }
        for key in self.unknown_keys() {
            warn_once(&format!(
                "config.json: unknown key `{key}` ignored (dsmath does not know it; model_type {})",
                self.model_type
            ));
        }
        if self.hidden_act != "silu" {
            return bad(format!(
                "hidden_act `{}` is not supported (only silu)",
                self.hidden_act
            ));
        }
        if self.num_attention_heads == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return bad(
                "hidden_size, num_attention_heads and num_hidden_layers must be > 0".into(),
            );
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!(
                "head_dim {} must be even for RoPE",
                self.head_dim()
            ));
        }
        let kv = self.num_kv_heads();
        if kv == 0 || !self.num_attention_heads.is_multiple_of(kv) {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {kv}",
                self.num_attention_heads
            ));
        }
        if self.use_sliding_window == Some(true) {
            // A window at least as long as the context attends to everything: the same math.
            let window = self.sliding_window.as_ref().and_then(Value::as_u64);
            if window.is_none_or(|w| (w as usize) < self.max_position_embeddings) {
                return bad(format!(
                    "use_sliding_window = true with sliding_window {} shorter than \
                     max_position_embeddings {} is not supported",
                    self.sliding_window
                        .as_ref()
                        .map_or("null".into(), Value::to_string),
                    self.max_position_embeddings
                ));
            }
        }
        if let Some(Value::Array(types)) = self.other.get("layer_types")
            && types.iter().any(|t| t.as_str() != Some("full_attention"))
        {
            return bad("layer_types other than full_attention are not supported".into());
        }
        self.rope()?;
        Ok(())
    }

    /// The architecture named by `architectures` (or `model_type` when that is absent).
    pub fn architecture(&self) -> Result<Architecture, ModelError> {
        let name = self.architectures.first().map(String::as_str);
        match (name, self.model_type.as_str()) {
            (Some("LlamaForCausalLM"), _) | (None, "llama") => Ok(Architecture::Llama),
            (Some("Qwen2ForCausalLM"), _) | (None, "qwen2") => Ok(Architecture::Qwen2),
            (Some("Qwen3ForCausalLM"), _) | (None, "qwen3") => Ok(Architecture::Qwen3),
            (Some(other), _) => Err(ModelError::Config(format!(
                "architectures `{other}` is not supported (LlamaForCausalLM, Qwen2ForCausalLM, \
                 Qwen3ForCausalLM)"
            ))),
            (None, other) => Err(ModelError::Config(format!(
                "model_type `{other}` is not supported (llama, qwen2, qwen3)"
            ))),
        }
    }

    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// q/k/v projections carry a bias (Qwen2 always, LLaMA with `attention_bias`).
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias || self.architecture().ok() == Some(Architecture::Qwen2)
    }

    /// o_proj carries a bias (LLaMA / Qwen3 `attention_bias`; Qwen2's o_proj has none).
    pub fn o_bias(&self) -> bool {
        self.attention_bias && self.architecture().ok() != Some(Architecture::Qwen2)
    }

    /// Per-head RMSNorm on queries and keys before RoPE (Qwen3).
    pub fn qk_norm(&self) -> bool {
        self.architecture().ok() == Some(Architecture::Qwen3)
    }

    /// Keys of `other` that dsmath does not know (each is warned about once at load).
    pub fn unknown_keys(&self) -> Vec<&str> {
        self.other
            .keys()
            .map(String::as_str)
            .filter(|k| !HARMLESS_KEYS.contains(k) && !NO_OP_KEYS.iter().any(|(n, _)| n == k))
            .collect()
    }

    /// RoPE base and scaling, from `rope_parameters` (transformers >= 5) or `rope_theta` +
    /// `rope_scaling`; a scaling type or parameter dsmath does not implement is an error.
    pub fn rope(&self) -> Result<Rope, ModelError> {
        let mut theta = self.rope_theta.unwrap_or(10000.0);
        let mut scaling: Option<(&str, &Value)> = self
            .rope_scaling
            .as_ref()
            .filter(|v| !v.is_null())
            .map(|v| ("rope_scaling", v));
        if let Some(params) = self.rope_parameters.as_ref().filter(|v| !v.is_null()) {
            if let Some(t) = params.get("rope_theta").and_then(Value::as_f64) {
                theta = t;
            }
            scaling = Some(("rope_parameters", params));
        }
        let Some((key, s)) = scaling else {
            return Ok(Rope {
                theta,
                scaling: RopeScaling::None,
            });
        };
        let kind = s
            .get("rope_type")
            .or_else(|| s.get("type"))
            .and_then(Value::as_str);
        let num = |name: &str| -> Result<f64, ModelError> {
            let v = s.get(name).and_then(Value::as_f64).ok_or_else(|| {
                ModelError::Config(format!(
                    "{key}: {} rope scaling needs a numeric `{name}`",
                    kind.unwrap_or("?")
                ))
            })?;
            if v > 0.0 {
                Ok(v)
            } else {
                Err(ModelError::Config(format!(
                    "{key}.{name} = {v} must be > 0"
                )))
            }
        };
        let scaling = match kind {
            None | Some("default") => RopeScaling::None,
            Some("linear") => RopeScaling::Linear {
                factor: num("factor")?,
            },
            Some("llama3") => {
                let low = num("low_freq_factor")?;
                let high = num("high_freq_factor")?;
                if high <= low {
                    return Err(ModelError::Config(format!(
                        "{key}: high_freq_factor {high} must be greater than low_freq_factor {low}"
                    )));
                }
                RopeScaling::Llama3 {
                    factor: num("factor")?,
                    low_freq_factor: low,
                    high_freq_factor: high,
                    original_max_position_embeddings: num("original_max_position_embeddings")?,
                }
            }
            Some(other) => {
                return Err(ModelError::Config(format!(
                    "{key}: rope_type `{other}` is not supported (default, linear, llama3)"
                )));
            }
        };
        if let Some(f) = s
            .get("attention_factor")
            .and_then(Value::as_f64)
            .filter(|&f| f != 1.0)
        {
            return Err(ModelError::Config(format!(
                "{key}.attention_factor = {f} is not supported (only 1.0)"
            )));
        }
        Ok(Rope { theta, scaling })
    }

    /// EOS ids from the config (int or list).
    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map(TokenIds::to_vec)
            .unwrap_or_default()
    }

    /// Number of parameters the model holds.
    pub fn num_parameters(&self) -> usize {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let (q, kv) = (
            self.num_attention_heads * self.head_dim(),
            self.num_kv_heads() * self.head_dim(),
        );
        let attn = h * q
            + 2 * h * kv
            + q * h
            + if self.qkv_bias() { q + 2 * kv } else { 0 }
            + if self.o_bias() { h } else { 0 };
        let mlp = 3 * h * i + if self.mlp_bias { 2 * i + h } else { 0 };
        let qk_norm = if self.qk_norm() {
            2 * self.head_dim()
        } else {
            0
        };
        let layer = attn + mlp + 2 * h + qk_norm;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + self.num_hidden_layers * layer + h + head
    }

    /// DeepSeekMath-7B (base / instruct / RL): a LLaMA-architecture model.
    pub fn deepseek_math_7b() -> Self {
        Self::from_json(
            r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                "vocab_size": 102400, "hidden_size": 4096, "intermediate_size": 11008,
                "num_hidden_layers": 30, "num_attention_heads": 32, "num_key_value_heads": 32,
                "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                "bos_token_id": 100000, "eos_token_id": 100001, "tie_word_embeddings": false,
                "hidden_act": "silu", "initializer_range": 0.02}"#,
        )
        .expect("preset is valid")
    }

    /// The names [`LlamaConfig::preset`] knows.
    pub const PRESETS: [&str; 4] = ["tiny", "small", "bench_25m", "llama_1b"];

    /// A preset by name (random-weight models for tests, the demo, benchmarks), `None` if unknown.
    pub fn preset(name: &str, vocab_size: usize) -> Option<Self> {
        match name {
            "tiny" => Some(Self::tiny(vocab_size)),
            "small" => Some(Self::small(vocab_size)),
            "bench_25m" => Some(Self::bench_25m(vocab_size)),
            "llama_1b" => Some(Self::llama_1b(vocab_size)),
            _ => None,
        }
    }

    /// A tiny LLaMA (GQA, untied) for tests and the CPU demo.
    pub fn tiny(vocab_size: usize) -> Self {
        let mut cfg = Self::from_json(
            r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                "vocab_size": 512, "hidden_size": 64, "intermediate_size": 176,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                "tie_word_embeddings": false, "hidden_act": "silu", "initializer_range": 0.02}"#,
        )
        .expect("preset is valid");
        cfg.vocab_size = vocab_size;
        cfg
    }

    /// A ~1M-parameter LLaMA (4 layers, width 128): the demo's model, trainable on a laptop CPU
    /// in minutes.
    pub fn small(vocab_size: usize) -> Self {
        let mut cfg = Self::tiny(vocab_size);
        cfg.hidden_size = 128;
        cfg.intermediate_size = 352;
        cfg.num_hidden_layers = 4;
        cfg.num_attention_heads = 4;
        cfg.num_key_value_heads = Some(4);
        cfg
    }

    /// A ~1.1B-parameter LLaMA with TinyLlama-1.1B's shapes (22 layers, width 2048, SwiGLU 5632,
    /// 32 heads, 4 KV heads): the GPU throughput check (`scripts/device_check.sh`).
    pub fn llama_1b(vocab_size: usize) -> Self {
        let mut cfg = Self::tiny(vocab_size);
        cfg.hidden_size = 2048;
        cfg.intermediate_size = 5632;
        cfg.num_hidden_layers = 22;
        cfg.num_attention_heads = 32;
        cfg.num_key_value_heads = Some(4);
        cfg.max_position_embeddings = 4096;
        cfg
    }

    /// A ~25M-parameter LLaMA used by the CPU benchmarks.
    pub fn bench_25m(vocab_size: usize) -> Self {
        let mut cfg = Self::tiny(vocab_size);
        cfg.hidden_size = 512;
        cfg.intermediate_size = 1408;
        cfg.num_hidden_layers = 6;
        cfg.num_attention_heads = 8;
        cfg.num_key_value_heads = Some(8);
        cfg.max_position_embeddings = 2048;
        cfg
    }

    /// Serialise as config.json (HF loads it as is).
    pub fn to_json(&self) -> String {
        let mut cfg = self.clone();
        if cfg.architectures.is_empty() {
            cfg.architectures = vec![
                self.architecture()
                    .unwrap_or(Architecture::Llama)
                    .class_name()
                    .into(),
            ];
        }
        serde_json::to_string_pretty(&cfg).expect("config serialises")
    }
}

/// Rotary embedding parameters resolved from the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    pub theta: f64,
    pub scaling: RopeScaling,
}

/// HF `rope_type` (`modeling_rope_utils.py`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor` (equivalently every frequency).
    Linear {
        factor: f64,
    },
    /// Llama 3.1+: long wavelengths divided by `factor`, short ones kept, a smooth blend between.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

impl Rope {
    /// The `head_dim / 2` inverse frequencies, computed in f32 as HF does
    /// (`_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters`,
    /// `_compute_llama3_parameters`).
    pub fn inv_freq(&self, head_dim: usize) -> Vec<f32> {
        let base = self.theta as f32;
        let inv = (0..head_dim / 2).map(|i| 1.0 / base.powf((2 * i) as f32 / head_dim as f32));
        match self.scaling {
            RopeScaling::None => inv.collect(),
            RopeScaling::Linear { factor } => inv.map(|f| f / factor as f32).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let (factor, low, high, old) = (
                    factor as f32,
                    low_freq_factor as f32,
                    high_freq_factor as f32,
                    original_max_position_embeddings as f32,
                );
                let (low_wavelen, high_wavelen) = (old / low, old / high);
                inv.map(|f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    let scaled = if wavelen > low_wavelen { f / factor } else { f };
                    let smooth = (old / wavelen - low) / (high - low);
                    let medium = (high_wavelen..=low_wavelen).contains(&wavelen);
                    if medium {
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    }
                })
                .collect()
            }
        }
    }
}

/// Keys whose value is checked: at the value given here they change nothing and are accepted;
/// any other value changes the math in a way dsmath does not implement and is an error.
const NO_OP_KEYS: &[(&str, NoOp)] = &[
    ("rope_interleaved", NoOp::False), // nanotron / SmolLM2: GPT-J style pairs when true
    ("use_mrope", NoOp::False),        // Qwen2-VL multimodal RoPE
    ("attn_logit_softcapping", NoOp::Null),
    ("final_logit_softcapping", NoOp::Null),
    ("use_qk_norm", NoOp::False),
    ("qk_layer_norms", NoOp::False),
    ("quantization_config", NoOp::Null), // quantised weights (GPTQ, AWQ, ...)
    ("moe_intermediate_size", NoOp::Null),
    ("num_experts", NoOp::Null),
    ("partial_rotary_factor", NoOp::One),
    ("embedding_multiplier", NoOp::One),
    ("logits_scaling", NoOp::One),
    ("residual_multiplier", NoOp::One),
    ("attention_multiplier", NoOp::Null),
    ("neftune_noise_alpha", NoOp::Zero), // training-time noise only
];

#[derive(Debug, Clone, Copy)]
enum NoOp {
    False,
    Null,
    One,
    Zero,
}

/// The error for a checked key whose value changes the math, if it does.
fn unsupported_value(key: &str, value: &Value) -> Option<String> {
    let (_, no_op) = NO_OP_KEYS.iter().find(|(k, _)| *k == key)?;
    let fine = match no_op {
        NoOp::False => value.is_null() || value.as_bool() == Some(false),
        NoOp::Null => value.is_null() || value.as_f64() == Some(0.0),
        NoOp::One => value.is_null() || value.as_f64() == Some(1.0),
        NoOp::Zero => value.is_null() || value.as_f64() == Some(0.0),
    };
    (!fine).then(|| {
        format!("`{key}`: {value} is not supported (dsmath implements only the model without it)")
    })
}

/// Print `msg` on stderr the first time it is seen in this process.
fn warn_once(msg: &str) {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.insert(msg.to_string()) {
        eprintln!("warning: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepseek_math_7b_preset_matches_the_paper_model() {
        let c = LlamaConfig::deepseek_math_7b();
        assert_eq!(
            (c.vocab_size, c.num_hidden_layers, c.hidden_size),
            (102400, 30, 4096)
        );
        assert_eq!((c.num_attention_heads, c.intermediate_size), (32, 11008));
        // 6.91B parameters, as the HF checkpoint reports.
        assert_eq!(c.num_parameters(), 6_910_365_696);
    }

    #[test]
    fn reads_transformers_v5_rope_parameters() {
        let c = LlamaConfig::from_json(
            r#"{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,
            "intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,
            "rope_parameters":{"rope_type":"linear","factor":4.0,"rope_theta":500000.0},
            "dtype":"float32","transformers_version":"5.0.0"}"#,
        )
        .unwrap();
        assert_eq!(
            c.rope().unwrap(),
            Rope {
                theta: 500000.0,
                scaling: RopeScaling::Linear { factor: 4.0 }
            }
        );
    }

    #[test]
    fn rejects_math_changing_keys_with_a_clear_message() {
        let base = r#""vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2"#;
        let cases = [
            (
                format!(r#"{{"architectures":["MistralForCausalLM"],{base}}}"#),
                "MistralForCausalLM",
            ),
            (
                format!(r#"{{{base},"rope_scaling":{{"type":"yarn","factor":2.0}}}}"#),
                "yarn",
            ),
            (format!(r#"{{{base},"hidden_act":"gelu"}}"#), "gelu"),
            (
                format!(r#"{{{base},"rope_interleaved":true}}"#),
                "rope_interleaved",
            ),
            (
                format!(r#"{{{base},"use_sliding_window":true,"sliding_window":64}}"#),
                "sliding_window 64",
            ),
            (
                format!(r#"{{{base},"rope_scaling":{{"rope_type":"dynamic","factor":2.0}}}}"#),
                "dynamic",
            ),
            (
                format!(r#"{{{base},"final_logit_softcapping":30.0}}"#),
                "final_logit_softcapping",
            ),
            (
                format!(r#"{{{base},"num_key_value_heads":3}}"#),
                "num_key_value_heads 3",
            ),
            (r#"{"vocab_size":"ten"}"#.to_string(), "invalid type"),
        ];
        for (json, needle) in cases {
            let err = LlamaConfig::from_json(&json).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn round_trips_through_json() {
        let c = LlamaConfig::deepseek_math_7b();
        let back = LlamaConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(c, back);
    }
}
