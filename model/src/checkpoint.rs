//! HF model directories: load config.json + safetensors + tokenizer.json, and write them back in
//! the layout HF transformers loads (`save_pretrained` layout), atomically.

use std::path::Path;

use burn::tensor::backend::Backend;

use crate::ModelError;
use crate::config::LlamaConfig;
use crate::model::LlamaForCausalLM;
use crate::tokenizer::Tokenizer;
use crate::weights::{RandomInit, SafetensorsDir, SaveDtype, WeightSource, save_safetensors};

/// A loaded model directory.
pub struct Checkpoint<B: Backend> {
    pub config: LlamaConfig,
    pub model: LlamaForCausalLM<B>,
}

/// Read `dir/config.json` and the weights in `dir` onto `device`.
pub fn load_model<B: Backend>(dir: &Path, device: &B::Device) -> Result<Checkpoint<B>, ModelError> {
    let config = LlamaConfig::from_file(dir.join("config.json"))?;
    let mut source = SafetensorsDir::open(dir)?;
    let model = LlamaForCausalLM::from_source(&config, &mut source, device)?;
    source.finish()?;
    Ok(Checkpoint { config, model })
}

/// Load model and tokenizer from an HF model directory.
pub fn load_model_and_tokenizer<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(Checkpoint<B>, Tokenizer), ModelError> {
    let ckpt = load_model(dir, device)?;
    let tok = Tokenizer::from_dir(dir, &ckpt.config)?;
    Ok((ckpt, tok))
}

/// A freshly initialised model (HF `_init_weights`: normal(0, initializer_range)).
pub fn init_model<B: Backend>(
    config: &LlamaConfig,
    seed: u64,
    device: &B::Device,
) -> Result<LlamaForCausalLM<B>, ModelError> {
    let mut source = RandomInit::new(seed);
    let model = LlamaForCausalLM::from_source(config, &mut source, device)?;
    source.finish()?;
    Ok(model)
}

/// Write `config.json` + `model.safetensors` (+ the tokenizer files of `tokenizer_dir`, if given)
/// into `dir`. Each file is written to a temporary name and renamed.
pub fn save_model<B: Backend>(
    dir: &Path,
    config: &LlamaConfig,
    model: &LlamaForCausalLM<B>,
    tokenizer_dir: Option<&Path>,
    dtype: SaveDtype,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut config = config.clone();
    let dtype_name = match dtype {
        SaveDtype::F32 => "float32",
        SaveDtype::BF16 => "bfloat16",
    };
    config.other.remove("torch_dtype");
    config.other.insert("dtype".into(), dtype_name.into());
    write_atomic(&dir.join("config.json"), config.to_json().as_bytes())?;
    save_safetensors(&dir.join("model.safetensors"), model.named_tensors(), dtype)?;
    if let Some(src) = tokenizer_dir {
        for name in [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "generation_config.json",
            "chat_template.jinja",
        ] {
            let from = src.join(name);
            if from.exists() {
                let bytes = std::fs::read(&from).map_err(|e| ModelError::io(&from, e))?;
                write_atomic(&dir.join(name), &bytes)?;
            }
        }
    }
    Ok(())
}

/// Write `bytes` to `path` via a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, bytes).map_err(|e| ModelError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}
