//! HF `config.json` for LlamaForCausalLM / Qwen2ForCausalLM, read unchanged (transformers'
//! `LlamaConfig` / `Qwen2Config` field names), with presets and checks for keys that change the math.

use std::collections::BTreeMap;
use std::path::Path;

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

/// A decoder config, field names as in HF `LlamaConfig` / `Qwen2Config`.
///
/// Keys HF writes that do not change the forward pass (`transformers_version`, `use_cache`, ...)
/// are accepted and kept in `other`; any other unknown key is an error, so a checkpoint whose math
/// dsmath does not implement is never silently mis-run.
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
    "max_window_layers", // only read when use_sliding_window is true (rejected below)
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
        if let Some(key) = self.other.keys().find(|k| !HARMLESS_KEYS.contains(&k.as_str())) {
            return bad(format!(
                "unknown key `{key}`: dsmath does not know whether it changes the model's math \
                 (model_type {}); remove it if it is harmless",
                self.model_type
            ));
        }
        if self.hidden_act != "silu" {
            return bad(format!("hidden_act `{}` is not supported (only silu)", self.hidden_act));
        }
        if self.num_attention_heads == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return bad("hidden_size, num_attention_heads and num_hidden_layers must be > 0".into());
        }
        if self.head_dim.is_none() && self.hidden_size % self.num_attention_heads != 0 {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.head_dim() % 2 != 0 {
            return bad(format!("head_dim {} must be even for RoPE", self.head_dim()));
        }
        let kv = self.num_kv_heads();
        if kv == 0 || self.num_attention_heads % kv != 0 {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {kv}",
                self.num_attention_heads
            ));
        }
        if self.use_sliding_window == Some(true) {
            return bad("use_sliding_window = true is not supported".into());
        }
        if let Some(Value::Array(types)) = self.other.get("layer_types") {
            if types.iter().any(|t| t.as_str() != Some("full_attention")) {
                return bad("layer_types other than full_attention are not supported".into());
            }
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
            (Some(other), _) => Err(ModelError::Config(format!(
                "architecture `{other}` is not supported (LlamaForCausalLM, Qwen2ForCausalLM)"
            ))),
            (None, other) => Err(ModelError::Config(format!(
                "model_type `{other}` is not supported (llama, qwen2)"
            ))),
        }
    }

    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// q/k/v projections carry a bias (Qwen2 always, LLaMA with `attention_bias`).
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias || self.architecture().ok() == Some(Architecture::Qwen2)
    }

    /// o_proj carries a bias (LLaMA `attention_bias` only; Qwen2's o_proj has none).
    pub fn o_bias(&self) -> bool {
        self.attention_bias && self.architecture().ok() == Some(Architecture::Llama)
    }

    /// RoPE base and linear position scaling, from `rope_parameters` or `rope_theta` + `rope_scaling`.
    pub fn rope(&self) -> Result<Rope, ModelError> {
        let mut theta = self.rope_theta.unwrap_or(10000.0);
        let mut scaling: Option<&Value> = self.rope_scaling.as_ref().filter(|v| !v.is_null());
        if let Some(params) = self.rope_parameters.as_ref().filter(|v| !v.is_null()) {
            if let Some(t) = params.get("rope_theta").and_then(Value::as_f64) {
                theta = t;
            }
            scaling = Some(params);
        }
        let mut factor = 1.0;
        if let Some(s) = scaling {
            let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str);
            match kind {
                None | Some("default") => {}
                Some("linear") => {
                    factor = s.get("factor").and_then(Value::as_f64).ok_or_else(|| {
                        ModelError::Config("linear rope scaling needs a numeric `factor`".into())
                    })?;
                    if !(factor > 0.0) {
                        return Err(ModelError::Config(format!("rope factor {factor} must be > 0")));
                    }
                }
                Some(other) => {
                    return Err(ModelError::Config(format!(
                        "rope scaling type `{other}` is not supported (default, linear)"
                    )));
                }
            }
        }
        Ok(Rope { theta, linear_factor: factor })
    }

    /// EOS ids from the config (int or list).
    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id.as_ref().map(TokenIds::to_vec).unwrap_or_default()
    }

    /// Number of parameters the model holds.
    pub fn num_parameters(&self) -> usize {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let (q, kv) = (self.num_attention_heads * self.head_dim(), self.num_kv_heads() * self.head_dim());
        let attn = h * q + 2 * h * kv + q * h
            + if self.qkv_bias() { q + 2 * kv } else { 0 }
            + if self.o_bias() { h } else { 0 };
        let mlp = 3 * h * i + if self.mlp_bias { 2 * i + h } else { 0 };
        let layer = attn + mlp + 2 * h;
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
            cfg.architectures = vec![match self.architecture() {
                Ok(Architecture::Qwen2) => "Qwen2ForCausalLM".into(),
                _ => "LlamaForCausalLM".into(),
            }];
        }
        serde_json::to_string_pretty(&cfg).expect("config serialises")
    }
}

/// Rotary embedding parameters resolved from the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    pub theta: f64,
    /// Positions are divided by this (HF "linear" rope scaling); 1.0 without scaling.
    pub linear_factor: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepseek_math_7b_preset_matches_the_paper_model() {
        let c = LlamaConfig::deepseek_math_7b();
        assert_eq!((c.vocab_size, c.num_hidden_layers, c.hidden_size), (102400, 30, 4096));
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
        assert_eq!(c.rope().unwrap(), Rope { theta: 500000.0, linear_factor: 4.0 });
    }

    #[test]
    fn rejects_math_changing_keys_with_a_clear_message() {
        let base = r#""vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2"#;
        let cases = [
            (format!(r#"{{"architectures":["MistralForCausalLM"],{base}}}"#), "MistralForCausalLM"),
            (format!(r#"{{{base},"rope_scaling":{{"type":"yarn","factor":2.0}}}}"#), "yarn"),
            (format!(r#"{{{base},"hidden_act":"gelu"}}"#), "gelu"),
            (format!(r#"{{{base},"alibi":true}}"#), "alibi"),
            (format!(r#"{{{base},"num_key_value_heads":3}}"#), "num_key_value_heads 3"),
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
