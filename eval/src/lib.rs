//! dsmath-eval: the DeepSeekMath evaluation grader in pure Rust (no Burn): answer extraction,
//! normalisation, equivalence, and metrics. Also GRPO's rule-based reward.

pub mod bench;
#[cfg(target_os = "linux")]
mod confine;
pub mod equiv;
pub mod extract;
pub mod grade;
pub mod math;
pub mod metrics;
pub mod normalize;
pub mod prompts;
pub mod report;
pub mod run;
pub mod sandbox;

pub use equiv::{Verdict, is_equiv};
pub use extract::{extract_answer, gsm8k_gold, math_gold};
pub use grade::{RewardConfig, grade, reward, reward_with};
