//! Errors of the training stages: each names the file, step or record it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}: {1}")]
    Io(PathBuf, String),
    #[error("config {0}: {1}")]
    Config(PathBuf, String),
    #[error("{0}")]
    Model(#[from] dsmath_model::ModelError),
    #[error("{0}")]
    Data(#[from] dsmath_data::DataError),
    #[error("backend: {0}")]
    Backend(String),
    #[error("step {step}: {message}")]
    Step { step: u64, message: String },
}
