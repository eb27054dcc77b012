//! Errors of the model crate: every one names the file (and tensor) it is about.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid model config: {0}")]
    Config(String),
    #[error("{path}: invalid config: {message}")]
    ConfigFile { path: PathBuf, message: String },
    #[error("{path}: not a valid safetensors file: {message}")]
    Safetensors { path: PathBuf, message: String },
    #[error("weights do not match the config:\n{0}")]
    Weights(String),
    #[error("{path}: GGUF: {message}")]
    Gguf { path: PathBuf, message: String },
    #[error("{path}: chat template: {message}")]
    ChatTemplate { path: PathBuf, message: String },
    #[error("{path}: tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("bad input: {0}")]
    Input(String),
    #[error("tensor backend: {0}")]
    Backend(String),
}

impl ModelError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Attach the file a config error came from.
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            ModelError::Config(message) => ModelError::ConfigFile {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        }
    }
}
