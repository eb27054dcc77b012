//! dsmath-model: the LLaMA / DeepSeek / Qwen2 decoder on Burn, HF checkpoints in and out, the
//! tokenizer and the generation engine (DeepSeekMath §2-4 all run on this model).

pub mod chat;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod head;
pub mod loss;
pub mod model;
pub mod tokenizer;
pub mod weights;

pub use checkpoint::{Checkpoint, init_model, load_model, load_model_and_tokenizer, save_model};
pub use config::LlamaConfig;
pub use error::ModelError;
pub use generate::{FinishReason, Sample, SamplingParams, generate, score};
pub use loss::causal_lm_loss;
pub use model::{AttnMask, KvCache, LlamaForCausalLM};
pub use tokenizer::Tokenizer;
pub use weights::SaveDtype;
