//! dsmath-train: what runs a dsmath model in a loop — the evaluation engine (generation behind
//! dsmath-eval's `Engine`), and the pretraining, SFT and GRPO stages (DeepSeekMath §2-§4).

pub mod arith;
pub mod batches;
pub mod compare;
pub mod demo;
pub mod engine;
pub mod error;
pub mod fused;
pub mod optim;
pub mod parallel;
pub mod plots;
pub mod reward_model;
pub mod rl;
pub mod schedule;
pub mod sft_data;
pub mod trainer;

pub use engine::ModelEngine;
pub use error::TrainError;
