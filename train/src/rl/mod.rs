//! Reinforcement learning on the policy (DeepSeekMath §4 and §5.2.1), one module per concern:
//! exploration, advantages, the objective, bounded-memory log-probs, the micro-batched update,
//! PPO's critic, the sampler / trainer mismatch correction, data parallelism, the memory plan and
//! the run loop.

pub mod advantages;
pub mod correction;
pub mod critic;
pub mod explore;
pub mod logprobs;
pub mod loss;
pub mod parallel;
pub mod plan;
pub mod run;
pub mod update;
