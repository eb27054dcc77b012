//! Tokenizer (HF `tokenizers` on tokenizer.json) with the checkpoint's BOS / EOS / pad tokens
//! (tokenizer_config.json, generation_config.json, config.json); prompts live in dsmath-eval.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::ModelError;
use crate::config::{LlamaConfig, TokenIds};

/// A tokenizer plus the special-token ids generation needs.
pub struct Tokenizer {
    pub inner: tokenizers::Tokenizer,
    pub path: PathBuf,
    pub bos_id: Option<u32>,
    /// Every id that ends a generation (config, generation_config and tokenizer_config together).
    pub eos_ids: Vec<u32>,
    pub pad_id: u32,
}

fn read_json(path: &Path) -> Result<Option<Value>, ModelError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ModelError::ConfigFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// A special token in tokenizer_config.json is a string or `{"content": ...}`.
fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

impl Tokenizer {
    /// Load `tokenizer.json` from a model directory and resolve special tokens; the vocabulary
    /// must fit in the model's `vocab_size`.
    pub fn from_dir(dir: &Path, config: &LlamaConfig) -> Result<Self, ModelError> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(ModelError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no tokenizer.json"),
            ));
        }
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| ModelError::Tokenizer {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let err = |message: String| ModelError::Tokenizer {
            path: path.clone(),
            message,
        };
        let vocab = inner.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(err(format!(
                "tokenizer has {vocab} tokens but the model's vocab_size is {}: they do not belong together",
                config.vocab_size
            )));
        }
        let tok_cfg = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null);
        let gen_cfg = read_json(&dir.join("generation_config.json"))?.unwrap_or(Value::Null);
        let id_of = |key: &str| token_text(tok_cfg.get(key)).and_then(|t| inner.token_to_id(&t));

        let bos_id = id_of("bos_token").or(config.bos_token_id);
        let mut eos_ids = config.eos_ids();
        if let Some(ids) = gen_cfg
            .get("eos_token_id")
            .and_then(|v| serde_json::from_value::<TokenIds>(v.clone()).ok())
        {
            eos_ids.extend(ids.to_vec());
        }
        eos_ids.extend(id_of("eos_token"));
        eos_ids.sort_unstable();
        eos_ids.dedup();
        if let Some(&bad) = eos_ids.iter().find(|&&id| id as usize >= config.vocab_size) {
            return Err(err(format!(
                "eos id {bad} is outside the vocabulary ({})",
                config.vocab_size
            )));
        }
        let pad_id = id_of("pad_token")
            .or(config.pad_token_id)
            .or(eos_ids.first().copied())
            .ok_or_else(|| err("no pad, eos or bos token: cannot pad batches".into()))?;
        Ok(Self {
            inner,
            path,
            bos_id,
            eos_ids,
            pad_id,
        })
    }

    /// Token ids of `text` with the checkpoint's own special tokens (e.g. LLaMA's BOS), like HF
    /// `tokenizer(text)["input_ids"]`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.encode_with(text, true)
    }

    /// Token ids of a prompt that may be a rendered chat template: as [`Tokenizer::encode`], but a
    /// BOS the template printed is not doubled by the one the post-processor adds (HF tokenizes
    /// `apply_chat_template` output without special tokens).
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let mut ids = self.encode(text)?;
        if let Some(bos) = self.bos_id
            && ids.len() >= 2
            && ids[0] == bos
            && ids[1] == bos
        {
            ids.remove(0);
        }
        Ok(ids)
    }

    /// Token ids of `text`; `special` adds the post-processor's special tokens.
    pub fn encode_with(&self, text: &str, special: bool) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .inner
            .encode(text, special)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    pub fn is_eos(&self, id: u32) -> bool {
        self.eos_ids.contains(&id)
    }
}
