//! The paper's unified paradigm as an experiment (DeepSeekMath §5.2.1, Figure 5): RFT, Online
//! RFT, DPO, PPO (with a value model) and GRPO trained from one SFT model on the same prompts, with the same sampling
//! budget and steps, then evaluated greedy on the same held-out problems. `cargo xtask
//! rl-compare` runs it on the demo's arithmetic task; each algorithm's run resumes.

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use dsmath_eval::bench::Benchmark;
use dsmath_eval::prompts::PromptKind;
use dsmath_eval::run::{Mode, evaluate};
use dsmath_model::{LlamaForCausalLM, SamplingParams, Tokenizer, load_model};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::rl::loss::Algorithm;
use crate::rl::run::{GrpoConfig, GrpoRun};

/// What to compare, on which data.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub sft: PathBuf,
    /// RL prompts `{"question", "gold"}`.
    pub prompts: PathBuf,
    /// Held-out problems in GSM8K's layout.
    pub heldout: PathBuf,
    pub out: PathBuf,
    pub algorithms: Vec<Algorithm>,
    /// Every run's GRPO config apart from the algorithm (`[model] init` and prompts are set here).
    pub base: GrpoConfig,
    pub progress: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    pub algorithm: String,
    pub heldout_greedy: f64,
    pub reward_first: f64,
    pub reward_last: f64,
    pub seconds: f64,
}

/// Greedy accuracy (%) of `model` on held-out problems.
pub fn heldout_accuracy<B: Backend>(
    model: &LlamaForCausalLM<B>,
    tok: &Tokenizer,
    heldout: &Path,
    max_new_tokens: usize,
) -> Result<f64, TrainError> {
    let probs = Benchmark::Gsm8k
        .load(heldout)
        .map_err(|e| TrainError::Io(heldout.into(), e.to_string()))?;
    let mut engine =
        crate::ModelEngine::new(model, tok, SamplingParams::greedy(max_new_tokens), 400);
    let run = evaluate(
        &mut engine,
        Benchmark::Gsm8k,
        &probs,
        PromptKind::Cot,
        Mode::Greedy,
        None,
        64,
        &mut |_| {},
    )
    .map_err(|e| TrainError::Io(heldout.into(), e))?;
    Ok(run.accuracy())
}

fn name(a: Algorithm) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Run every algorithm (or reuse its finished run) and write `compare.md` / `compare.json` /
/// `compare.svg`; the first row is the SFT model itself.
pub fn compare<B: Backend>(
    o: &CompareOptions,
    device: &B::Device,
) -> Result<Vec<CompareRow>, TrainError> {
    std::fs::create_dir_all(&o.out).map_err(|e| TrainError::Io(o.out.clone(), e.to_string()))?;
    let sft = load_model::<B>(&o.sft, device)?;
    let tok = Tokenizer::from_dir(&o.sft, &sft.config)?;
    let mnt = o.base.grpo.max_new_tokens;
    let mut rows = vec![CompareRow {
        algorithm: "sft".into(),
        heldout_greedy: heldout_accuracy(&sft.model, &tok, &o.heldout, mnt)?,
        reward_first: 0.0,
        reward_last: 0.0,
        seconds: 0.0,
    }];
    for &alg in &o.algorithms {
        let dir = o.out.join(name(alg));
        let done = dir.join("result.json");
        if let Some(r) = std::fs::read_to_string(&done)
            .ok()
            .and_then(|t| serde_json::from_str::<CompareRow>(&t).ok())
        {
            rows.push(r);
            continue;
        }
        if o.progress {
            eprintln!("{}: {} steps", name(alg), o.base.train.steps);
        }
        let t0 = std::time::Instant::now();
        let mut cfg = o.base.clone();
        cfg.model.init = Some(o.sft.display().to_string());
        cfg.data.prompts = o.prompts.display().to_string();
        cfg.grpo.loss.algorithm = alg;
        let mut run = GrpoRun::<burn_autodiff::Autodiff<B>>::new(cfg, &dir, device)?;
        run.run(None, o.progress)?;
        let (reward_first, reward_last) = crate::plots::quarter_means(
            &crate::plots::read_jsonl(&dir.join("metrics.jsonl")),
            "reward_mean",
        );
        let row = CompareRow {
            algorithm: name(alg),
            heldout_greedy: heldout_accuracy(&run.policy.valid(), &tok, &o.heldout, mnt)?,
            reward_first,
            reward_last,
            seconds: t0.elapsed().as_secs_f64(),
        };
        dsmath_model::checkpoint::write_atomic(
            &done,
            serde_json::to_string_pretty(&row)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        rows.push(row);
    }
    let mut md = format!(
        "# RL algorithms from one SFT model (DeepSeekMath §5.2.1)\n\nSFT model `{}`; {} steps each, {} questions x {} samples per step, lr {}; held-out: `{}` (greedy).\nRFT and DPO learn from samples of the SFT model, Online RFT, PPO and GRPO from the current policy's; PPO also trains a value model (the SFT model with a scalar head). Reward: mean over the first / last quarter of the steps (samples of the model that explores).\n\n| algorithm | held-out greedy (%) | reward first quarter | reward last quarter | seconds |\n|---|---|---|---|---|\n",
        o.sft.display(),
        o.base.train.steps,
        o.base.grpo.prompts_per_step,
        o.base.grpo.group_size,
        o.base.schedule.peak_lr,
        o.heldout.display()
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {:.1} | {:.3} | {:.3} | {:.0} |\n",
            r.algorithm, r.heldout_greedy, r.reward_first, r.reward_last, r.seconds
        ));
    }
    md.push_str("\n![held-out accuracy](compare.svg)\n");
    dsmath_model::checkpoint::write_atomic(&o.out.join("compare.md"), md.as_bytes())?;
    dsmath_model::checkpoint::write_atomic(
        &o.out.join("compare.json"),
        serde_json::to_string_pretty(&rows)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let bars: Vec<(String, f64)> = rows
        .iter()
        .map(|r| (r.algorithm.clone(), r.heldout_greedy))
        .collect();
    dsmath_eval::report::bar_chart(
        &o.out.join("compare.svg"),
        "held-out greedy accuracy after each algorithm",
        &bars,
    )
    .map_err(|e| TrainError::Io(o.out.clone(), e))?;
    Ok(rows)
}
