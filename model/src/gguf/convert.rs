//! GGUF to an HF checkpoint directory, as HF transformers' own GGUF loader reads the same file
//! (`modeling_gguf_pytorch_utils.py`, `integrations/ggml.py`): config.json from the `{arch}.*`
//! metadata, model.safetensors with llama.cpp's q/k row permutation undone, tokenizer.json from
//! `tokenizer.ggml.*` (byte-level BPE), tokenizer_config.json (special tokens, chat template) and
//! generation_config.json.

use std::path::Path;

use burn::tensor::TensorData;
use serde_json::{Map, Value as Json, json};

use super::{GgufFile, Value};
use crate::ModelError;
use crate::checkpoint::write_atomic;
use crate::config::{Architecture, LlamaConfig};
use crate::weights::{SaveDtype, save_safetensors};

/// What [`convert`] wrote.
#[derive(Debug)]
pub struct Converted {
    pub config: LlamaConfig,
    pub tensors: usize,
}

/// Convert `gguf` into an HF model directory `out` (created; files written atomically).
pub fn convert(gguf: &Path, out: &Path, dtype: SaveDtype) -> Result<Converted, ModelError> {
    let file = GgufFile::open(gguf)?;
    let err = |message: String| ModelError::Gguf {
        path: gguf.to_path_buf(),
        message,
    };
    let (config, arch) = config_from_metadata(&file).map_err(err)?;
    let tensors = hf_tensors(&file, &config, arch).map_err(err)?;
    let n = tensors.len();
    let tokenizer = tokenizer_json(&file).map_err(err)?;
    let (tok_config, gen_config) = tokenizer_configs(&file, &config).map_err(err)?;

    std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
    let mut config = config;
    config.other.insert(
        "dtype".into(),
        (if dtype == SaveDtype::F32 {
            "float32"
        } else {
            "bfloat16"
        })
        .into(),
    );
    save_safetensors(&out.join("model.safetensors"), tensors, dtype)?;
    let pretty = |v: &Json| serde_json::to_string_pretty(v).expect("json serialises");
    write_atomic(
        &out.join("tokenizer.json"),
        serde_json::to_string(&tokenizer).expect("json").as_bytes(),
    )?;
    write_atomic(
        &out.join("tokenizer_config.json"),
        pretty(&tok_config).as_bytes(),
    )?;
    write_atomic(
        &out.join("generation_config.json"),
        pretty(&gen_config).as_bytes(),
    )?;
    // config.json last: a directory with a config.json is a finished conversion.
    write_atomic(&out.join("config.json"), config.to_json().as_bytes())?;
    Ok(Converted { config, tensors: n })
}

fn meta<'a>(f: &'a GgufFile, key: &str) -> Result<&'a Value, String> {
    f.get(key)
        .ok_or_else(|| format!("metadata key `{key}` is missing"))
}

fn meta_u64(f: &GgufFile, key: &str) -> Result<u64, String> {
    meta(f, key)?
        .as_u64()
        .ok_or_else(|| format!("metadata `{key}` is not an unsigned integer"))
}

fn meta_f64(f: &GgufFile, key: &str) -> Result<f64, String> {
    meta(f, key)?
        .as_f64()
        .ok_or_else(|| format!("metadata `{key}` is not a number"))
}

/// config.json from the architecture's metadata.
fn config_from_metadata(f: &GgufFile) -> Result<(LlamaConfig, Architecture), String> {
    let name = meta(f, "general.architecture")?
        .as_str()
        .ok_or("metadata `general.architecture` is not a string")?;
    let arch = match name {
        "llama" => Architecture::Llama,
        "qwen2" => Architecture::Qwen2,
        "qwen3" => Architecture::Qwen3,
        other => {
            return Err(format!(
                "general.architecture `{other}` is not supported (llama, qwen2, qwen3)"
            ));
        }
    };
    let k = |s: &str| format!("{name}.{s}");
    let heads = meta_u64(f, &k("attention.head_count"))?;
    let kv_heads = f
        .get(&k("attention.head_count_kv"))
        .map_or(Some(heads), Value::as_u64)
        .ok_or("head_count_kv is not an integer")?;
    let hidden = meta_u64(f, &k("embedding_length"))?;
    let tokens = f
        .get("tokenizer.ggml.tokens")
        .and_then(Value::as_array)
        .map(<[Value]>::len);
    let vocab = match f.get(&k("vocab_size")) {
        Some(v) => v.as_u64().ok_or("vocab_size is not an integer")?,
        None => f
            .tensor("token_embd.weight")
            .map(|t| t.shape()[0] as u64)
            .or(tokens.map(|n| n as u64))
            .ok_or("no vocab_size")?,
    };
    let head_dim = match f.get(&k("attention.key_length")) {
        Some(v) => v.as_u64().ok_or("attention.key_length is not an integer")?,
        None => hidden / heads.max(1),
    };
    if let Some(rot) = f.get(&k("rope.dimension_count")).and_then(Value::as_u64)
        && rot != head_dim
    {
        return Err(format!(
            "{}: rope.dimension_count {rot} != head_dim {head_dim} (partial RoPE is not supported)",
            name
        ));
    }
    if f.tensor("rope_freqs.weight").is_some() {
        return Err(
            "tensor `rope_freqs.weight` (precomputed RoPE frequency factors) is not supported"
                .into(),
        );
    }
    let mut rope_scaling = Json::Null;
    if let Some(kind) = f.get(&k("rope.scaling.type")).and_then(Value::as_str) {
        match kind {
            "none" => {}
            "linear" => {
                rope_scaling = json!({"rope_type": "linear", "factor": meta_f64(f, &k("rope.scaling.factor"))?})
            }
            other => {
                return Err(format!(
                    "{name}.rope.scaling.type `{other}` is not supported (none, linear)"
                ));
            }
        }
    }
    let tok_id = |key: &str| f.get(key).and_then(Value::as_u64);
    let mut cfg = json!({
        "architectures": [arch.class_name()],
        "model_type": name,
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": meta_u64(f, &k("feed_forward_length"))?,
        "num_hidden_layers": meta_u64(f, &k("block_count"))?,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": meta_u64(f, &k("context_length"))?,
        "rms_norm_eps": meta_f64(f, &k("attention.layer_norm_rms_epsilon"))?,
        "rope_theta": f.get(&k("rope.freq_base")).and_then(Value::as_f64).unwrap_or(10000.0),
        "rope_scaling": rope_scaling,
        "tie_word_embeddings": f.tensor("output.weight").is_none(),
        "attention_bias": arch != Architecture::Qwen2 && f.tensor("blk.0.attn_q.bias").is_some(),
        "bos_token_id": tok_id("tokenizer.ggml.bos_token_id"),
        "eos_token_id": tok_id("tokenizer.ggml.eos_token_id"),
        "pad_token_id": tok_id("tokenizer.ggml.padding_token_id"),
    });
    if let Some(obj) = cfg.as_object_mut() {
        obj.retain(|k, v| !v.is_null() || k == "rope_scaling");
    }
    let config = LlamaConfig::from_json(&cfg.to_string()).map_err(|e| e.to_string())?;
    Ok((config, arch))
}

/// Every tensor under its HF name, dequantized to f32 in PyTorch layout.
fn hf_tensors(
    f: &GgufFile,
    c: &LlamaConfig,
    arch: Architecture,
) -> Result<Vec<(String, TensorData)>, String> {
    let mut out = Vec::with_capacity(f.tensors.len());
    for info in &f.tensors {
        let name = hf_name(&info.name)
            .ok_or_else(|| format!("tensor `{}` has no HF counterpart dsmath knows", info.name))?;
        let shape = info.shape();
        let mut values = f.dequantize(info);
        // llama.cpp's convert_hf_to_gguf.py permutes LLaMA's q / k rows for its interleaved RoPE;
        // HF's GGUF loader undoes it (`LlamaTensorProcessor._reverse_permute_weights`).
        if arch == Architecture::Llama {
            if info.name.contains(".attn_q.") {
                values = unpermute_rows(&values, &shape, c.num_attention_heads);
            } else if info.name.contains(".attn_k.") {
                values = unpermute_rows(&values, &shape, c.num_kv_heads());
            }
        }
        out.push((name, TensorData::new(values, shape)));
    }
    Ok(out)
}

/// HF row `h * d + half * d / 2 + i` of a `[heads * d, ...]` tensor is GGUF row `h * d + 2 i + half`.
fn unpermute_rows(values: &[f32], shape: &[usize], heads: usize) -> Vec<f32> {
    let rows = shape[0];
    let cols = values.len() / rows;
    let d = rows / heads;
    let mut out = vec![0f32; values.len()];
    for h in 0..heads {
        for half in 0..2 {
            for i in 0..d / 2 {
                let to = h * d + half * (d / 2) + i;
                let from = h * d + 2 * i + half;
                out[to * cols..(to + 1) * cols]
                    .copy_from_slice(&values[from * cols..(from + 1) * cols]);
            }
        }
    }
    out
}

/// The HF state-dict name of a llama.cpp tensor name (HF names from `crate::model::hf_names`).
fn hf_name(gguf: &str) -> Option<String> {
    use crate::model::hf_names::*;
    Some(match gguf {
        "token_embd.weight" => EMBED_TOKENS.into(),
        "output_norm.weight" => NORM.into(),
        "output.weight" => LM_HEAD.into(),
        _ => {
            let rest = gguf.strip_prefix("blk.")?;
            let (layer, rest) = rest.split_once('.')?;
            let layer = layer.parse::<usize>().ok()?;
            let (module, suffix) = rest.rsplit_once('.')?;
            let hf = match module {
                "attn_norm" => INPUT_LAYERNORM,
                "ffn_norm" => POST_ATTENTION_LAYERNORM,
                "attn_q" => Q_PROJ,
                "attn_k" => K_PROJ,
                "attn_v" => V_PROJ,
                "attn_output" => O_PROJ,
                "attn_q_norm" => Q_NORM,
                "attn_k_norm" => K_NORM,
                "ffn_gate" => GATE_PROJ,
                "ffn_up" => UP_PROJ,
                "ffn_down" => DOWN_PROJ,
                _ => return None,
            };
            format!("{}.{hf}.{suffix}", layer_prefix(layer))
        }
    })
}

fn tokens(f: &GgufFile) -> Result<Vec<&str>, String> {
    meta(f, "tokenizer.ggml.tokens")?
        .as_array()
        .ok_or("tokenizer.ggml.tokens is not an array")?
        .iter()
        .map(|t| {
            t.as_str()
                .ok_or_else(|| "tokenizer.ggml.tokens holds a non-string".to_string())
        })
        .collect()
}

/// tokenizer.json for a `gpt2` (byte-level BPE) GGUF vocabulary, as HF's `GGUFGPTConverter` builds it.
fn tokenizer_json(f: &GgufFile) -> Result<Json, String> {
    let model = meta(f, "tokenizer.ggml.model")?.as_str().unwrap_or("");
    if model != "gpt2" {
        return Err(format!(
            "tokenizer.ggml.model `{model}` is not supported (gpt2: byte-level BPE)"
        ));
    }
    let tokens = tokens(f)?;
    let types: Vec<i64> = match f.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .as_array()
            .ok_or("token_type is not an array")?
            .iter()
            .map(|t| t.as_i64().unwrap_or(1))
            .collect(),
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(format!(
            "tokenizer.ggml.token_type has {} entries for {} tokens",
            types.len(),
            tokens.len()
        ));
    }
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, (&tok, &kind)) in tokens.iter().zip(&types).enumerate() {
        vocab.insert(tok.to_string(), json!(id));
        // ggml token types: 3 control, 4 user-defined.
        if kind == 3 || kind == 4 {
            added.push(json!({"id": id, "content": tok, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": false, "special": kind == 3}));
        }
    }
    let merges: Vec<Json> = meta(f, "tokenizer.ggml.merges")?
        .as_array()
        .ok_or("tokenizer.ggml.merges is not an array")?
        .iter()
        .map(|m| {
            let m = m.as_str().ok_or("a merge is not a string")?;
            let (a, b) = m
                .split_once(' ')
                .ok_or_else(|| format!("merge `{m}` has no space"))?;
            Ok(json!([a, b]))
        })
        .collect::<Result<_, String>>()?;
    let add_bos = f
        .get("tokenizer.ggml.add_bos_token")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let bos = f.get("tokenizer.ggml.bos_token_id").and_then(Value::as_u64);
    let seq = |id: &str, t: u32| json!({"Sequence": {"id": id, "type_id": t}});
    let post = match (add_bos, bos) {
        (true, Some(bos)) => {
            let text = tokens
                .get(bos as usize)
                .ok_or("bos_token_id is outside the vocabulary")?;
            let sp = json!({"SpecialToken": {"id": text, "type_id": 0}});
            json!({"type": "TemplateProcessing", "single": [sp, seq("A", 0)], "pair": [sp, seq("A", 0), sp, seq("B", 1)],
                   "special_tokens": {*text: {"id": text, "ids": [bos], "tokens": [text]}}})
        }
        _ => {
            json!({"type": "TemplateProcessing", "single": [seq("A", 0)], "pair": [seq("A", 0), seq("B", 1)], "special_tokens": {}})
        }
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    }))
}

/// tokenizer_config.json (special tokens, chat template) and generation_config.json.
fn tokenizer_configs(f: &GgufFile, c: &LlamaConfig) -> Result<(Json, Json), String> {
    let tokens = tokens(f)?;
    let text = |key: &str| -> Result<Json, String> {
        match f.get(key).and_then(Value::as_u64) {
            None => Ok(Json::Null),
            Some(id) => tokens
                .get(id as usize)
                .map(|t| json!(t))
                .ok_or_else(|| format!("{key} {id} is outside the vocabulary")),
        }
    };
    let mut tok = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": text("tokenizer.ggml.bos_token_id")?,
        "eos_token": text("tokenizer.ggml.eos_token_id")?,
        "pad_token": text("tokenizer.ggml.padding_token_id")?,
        "unk_token": text("tokenizer.ggml.unknown_token_id")?,
        "add_bos_token": f.get("tokenizer.ggml.add_bos_token").and_then(Value::as_bool).unwrap_or(false),
        "model_max_length": c.max_position_embeddings,
    });
    if let Some(t) = f.get("tokenizer.chat_template") {
        tok["chat_template"] = json!(
            t.as_str()
                .ok_or("tokenizer.chat_template is not a string")?
        );
    }
    if let Some(o) = tok.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    let mut gen_cfg = json!({"bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id, "pad_token_id": c.pad_token_id});
    if let Some(o) = gen_cfg.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    Ok((tok, gen_cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: w.reshape(heads, 2, d/2, cols).swapaxes(1, 2) -> GGUF row h*d + 2i + half
        // holds HF row h*d + half*d/2 + i.
        let (heads, d, cols) = (2, 4, 3);
        let hf: Vec<f32> = (0..heads * d * cols).map(|x| x as f32).collect();
        let mut gguf = vec![0f32; hf.len()];
        for h in 0..heads {
            for i in 0..d / 2 {
                for half in 0..2 {
                    let (g, r) = (h * d + 2 * i + half, h * d + half * d / 2 + i);
                    gguf[g * cols..(g + 1) * cols].copy_from_slice(&hf[r * cols..(r + 1) * cols]);
                }
            }
        }
        assert_eq!(unpermute_rows(&gguf, &[heads * d, cols], heads), hf);
    }

    #[test]
    fn llama_cpp_names_map_to_hf() {
        assert_eq!(
            hf_name("blk.12.attn_q.weight").unwrap(),
            "model.layers.12.self_attn.q_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.ffn_norm.weight").unwrap(),
            "model.layers.0.post_attention_layernorm.weight"
        );
        assert_eq!(
            hf_name("blk.3.attn_k_norm.weight").unwrap(),
            "model.layers.3.self_attn.k_norm.weight"
        );
        assert_eq!(
            hf_name("token_embd.weight").unwrap(),
            "model.embed_tokens.weight"
        );
        assert!(hf_name("blk.x.attn_q.weight").is_none());
        assert!(hf_name("blk.0.ffn_gate_exps.weight").is_none());
    }
}
