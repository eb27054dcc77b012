//! Reward models (DeepSeekMath §4.1: outcome and process supervision; Algorithm 1 keeps training
//! the reward model on policy samples): the decoder with a scalar head. An outcome reward model
//! (ORM) scores a whole solution at its last token; a process reward model (PRM) scores each
//! reasoning step at the step's last token (steps end at a delimiter, `\n` by default, as in
//! Math-Shepherd). Training is pointwise (binary cross-entropy against 0/1 labels) or pairwise
//! (`-log sigmoid(s_chosen - s_rejected)`). A reward model directory is the body in HF layout
//! (`config.json`, `model.safetensors`, tokenizer) plus `score.safetensors` (`score.weight`
//! `[1, hidden]`, the name HF's `LlamaForSequenceClassification` uses).

use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use dsmath_model::{LlamaConfig, LlamaForCausalLM, SaveDtype, Tokenizer, load_model, save_model};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::optim::{AdamW, AdamWConfig, clip, collect_grads};

/// The decoder body and a linear scalar head.
#[derive(Module, Debug)]
pub struct RewardModel<B: Backend> {
    pub body: LlamaForCausalLM<B>,
    /// `[1, hidden]`
    pub score: Param<Tensor<B, 2>>,
}

/// One labelled sample: `label` for an ORM (1 = correct), `step_labels` for a PRM (one per step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmSample {
    pub prompt: String,
    pub response: String,
    #[serde(default)]
    pub label: Option<f32>,
    #[serde(default)]
    pub step_labels: Option<Vec<f32>>,
}

/// Token ids of prompt + response, and the index of the last token of each step of the
/// response. The prompt and the response are encoded separately (as a GRPO rollout holds them)
/// and the steps are found on the response's tokens by [`crate::rl::explore::step_ends`], the same
/// function GRPO's process rewards use, so a PRM is trained and queried at the same positions.
pub fn encode_steps(
    tok: &Tokenizer,
    prompt: &str,
    response: &str,
    delimiter: &str,
) -> Result<(Vec<u32>, Vec<usize>), TrainError> {
    let mut ids = tok.encode(prompt)?;
    let resp = tok.encode(response)?;
    let (_, ends) = crate::rl::explore::step_ends(tok, &resp, delimiter);
    let p = ids.len();
    ids.extend(resp);
    let ends: Vec<usize> = if ends.is_empty() {
        vec![ids.len().saturating_sub(1)]
    } else {
        ends.iter().map(|e| p + e).collect()
    };
    Ok((ids, ends))
}

impl<B: Backend> RewardModel<B> {
    /// A reward model on top of a language model (the paper starts RMs from the SFT model); the
    /// head starts at zero so every score starts at 0 (probability 0.5).
    pub fn from_policy(body: LlamaForCausalLM<B>) -> Self {
        let d = body.model.norm.weight.val().dims()[0];
        let device = body.model.norm.weight.val().device();
        RewardModel {
            body,
            score: Param::from_tensor(Tensor::zeros([1, d], &device)),
        }
    }

    /// Scalar scores at every position, `[n, s]`, for right-padded rows.
    pub fn scores(&self, rows: &[Vec<u32>], pad: u32) -> Tensor<B, 2> {
        let device = self.score.val().device();
        let s = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let n = rows.len();
        let ids: Vec<i64> = rows
            .iter()
            .flat_map(|r| {
                r.iter()
                    .map(|&x| x as i64)
                    .chain(std::iter::repeat_n(pad as i64, s - r.len()))
            })
            .collect();
        let valid: Vec<Vec<bool>> = rows
            .iter()
            .map(|r| (0..s).map(|j| j < r.len()).collect())
            .collect();
        let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, s]), &device);
        let positions = dsmath_model::model::positions_from_valid::<B>(&valid, 0, s, &device);
        let mask = dsmath_model::model::attention_mask::<B>(&valid, s, &device);
        let h = self.body.hidden_states(input, positions, Some(mask), None); // [n, s, d]
        let w = self.score.val().reshape([1, 1, -1]); // [1, 1, d]
        (h * w).sum_dim(2).reshape([n, s]) // [n, s]
    }

    /// Scores (as probabilities) at the given positions of each row: `at[i]` = positions of row `i`.
    pub fn score_at(&self, rows: &[Vec<u32>], at: &[Vec<usize>], pad: u32) -> Vec<Vec<f64>> {
        let s = self.scores(rows, pad);
        let width = s.dims()[1];
        let v: Vec<f32> = sigmoid(s)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap_or_default();
        at.iter()
            .enumerate()
            .map(|(i, ps)| {
                ps.iter()
                    .map(|&p| v[i * width + p.min(width - 1)] as f64)
                    .collect()
            })
            .collect()
    }

    pub fn save(
        &self,
        dir: &Path,
        config: &LlamaConfig,
        tokenizer_dir: Option<&Path>,
    ) -> Result<(), TrainError> {
        save_model(dir, config, &self.body, tokenizer_dir, SaveDtype::F32)?;
        let w = self.score.val().into_data().convert::<f32>();
        let bytes: Vec<u8> = w
            .to_vec::<f32>()
            .unwrap_or_default()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, w.shape.to_vec(), &bytes)
                .map_err(|e| TrainError::Io(dir.into(), e.to_string()))?;
        let data = safetensors::serialize([("score.weight", view)], None)
            .map_err(|e| TrainError::Io(dir.into(), e.to_string()))?;
        dsmath_model::checkpoint::write_atomic(&dir.join("score.safetensors"), &data)?;
        Ok(())
    }

    pub fn load(dir: &Path, device: &B::Device) -> Result<(Self, LlamaConfig), TrainError> {
        let ck = load_model::<B>(dir, device)?;
        let p = dir.join("score.safetensors");
        let bytes = std::fs::read(&p).map_err(|e| TrainError::Io(p.clone(), e.to_string()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| TrainError::Io(p.clone(), e.to_string()))?;
        let t = st
            .tensor("score.weight")
            .map_err(|e| TrainError::Io(p.clone(), format!("score.weight: {e}")))?;
        let d = ck.config.hidden_size;
        if t.dtype() != safetensors::Dtype::F32 || t.shape() != [1, d] {
            return Err(TrainError::Io(
                p,
                format!(
                    "score.weight: expected f32 [1, {d}], found {:?} {:?}",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        let w: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let score = Param::from_tensor(Tensor::from_data(TensorData::new(w, [1, d]), device));
        Ok((
            RewardModel {
                body: ck.model,
                score,
            },
            ck.config,
        ))
    }
}

/// How a reward model is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RmTrainConfig {
    /// `pointwise` (BCE on labels) or `pairwise` (a correct vs an incorrect answer to one prompt).
    pub objective: String,
    /// Process supervision: score every step (needs `step_labels`).
    pub process: bool,
    pub step_delimiter: String,
    pub lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub grad_clip: f64,
    pub seed: u64,
}

impl Default for RmTrainConfig {
    fn default() -> Self {
        RmTrainConfig {
            objective: "pointwise".into(),
            process: false,
            step_delimiter: "\n".into(),
            lr: 1e-4,
            epochs: 1,
            batch_size: 16,
            grad_clip: 1.0,
            seed: 0,
        }
    }
}

/// What one epoch of reward-model training saw.
#[derive(Debug, Clone, Serialize)]
pub struct RmEpochStats {
    pub epoch: usize,
    pub loss: f64,
    pub samples: usize,
}

/// A tokenized sample: ids, scored positions and their labels.
struct Encoded {
    prompt: String,
    ids: Vec<u32>,
    at: Vec<usize>,
    labels: Vec<f32>,
}

fn encode(
    tok: &Tokenizer,
    s: &RmSample,
    cfg: &RmTrainConfig,
) -> Result<Option<Encoded>, TrainError> {
    let (ids, ends) = encode_steps(
        tok,
        &s.prompt,
        &s.response,
        if cfg.process { &cfg.step_delimiter } else { "" },
    )?;
    let (at, labels) = if cfg.process {
        let Some(l) = &s.step_labels else {
            return Ok(None);
        };
        if l.len() != ends.len() {
            return Ok(None); // the labels do not match this tokenizer's steps
        }
        (ends, l.clone())
    } else {
        let Some(l) = s.label else { return Ok(None) };
        (vec![*ends.last().unwrap_or(&0)], vec![l])
    };
    Ok(Some(Encoded {
        prompt: s.prompt.clone(),
        ids,
        at,
        labels,
    }))
}

/// Train `rm` on `samples` (shuffled per epoch with `cfg.seed`); returns it and per-epoch stats.
/// Pointwise: mean BCE over scored positions. Pairwise: every (correct, incorrect) pair of
/// responses to the same prompt within a batch. Samples without usable labels are counted and
/// left out; an error if none is usable.
pub fn train_reward_model<AB: AutodiffBackend>(
    mut rm: RewardModel<AB>,
    tok: &Tokenizer,
    samples: &[RmSample],
    cfg: &RmTrainConfig,
    opt: &mut AdamW<AB::InnerBackend>,
) -> Result<(RewardModel<AB>, Vec<RmEpochStats>), TrainError> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut data = vec![];
    for s in samples {
        if let Some(e) = encode(tok, s, cfg)? {
            data.push(e);
        }
    }
    if data.is_empty() {
        return Err(TrainError::Config(
            "reward model".into(),
            format!(
                "none of {} samples has usable {} labels",
                samples.len(),
                if cfg.process { "step" } else { "outcome" }
            ),
        ));
    }
    let pairwise = match cfg.objective.as_str() {
        "pointwise" => false,
        "pairwise" => true,
        o => {
            return Err(TrainError::Config(
                "reward model".into(),
                format!("objective `{o}`: expected pointwise or pairwise"),
            ));
        }
    };
    let device = rm.score.val().device();
    let mut order: Vec<usize> = (0..data.len()).collect();
    // Pairwise batches keep a prompt's responses together.
    if pairwise {
        order.sort_by(|&a, &b| data[a].prompt.cmp(&data[b].prompt));
    }
    let mut stats = vec![];
    for epoch in 0..cfg.epochs.max(1) {
        if !pairwise {
            order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
                cfg.seed ^ epoch as u64,
            ));
        }
        let (mut total, mut batches) = (0.0, 0);
        for chunk in order.chunks(cfg.batch_size.max(2)) {
            let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| data[i].ids.clone()).collect();
            let scores = rm.scores(&rows, tok.pad_id); // [b, s]
            let s = scores.dims()[1];
            let loss = if pairwise {
                let last = |i: usize| data[i].at[data[i].at.len() - 1];
                let mut pos = vec![];
                let mut neg = vec![];
                for (a, &i) in chunk.iter().enumerate() {
                    for (b, &j) in chunk.iter().enumerate() {
                        if data[i].prompt == data[j].prompt
                            && data[i].labels.last() > Some(&0.5)
                            && data[j].labels.last() <= Some(&0.5)
                        {
                            pos.push((a * s + last(i)) as i64);
                            neg.push((b * s + last(j)) as i64);
                        }
                    }
                }
                if pos.is_empty() {
                    continue;
                }
                let flat = scores.reshape([-1]);
                let k = pos.len();
                let pick = |v: Vec<i64>| {
                    flat.clone().select(
                        0,
                        Tensor::<AB, 1, Int>::from_data(TensorData::new(v, [k]), &device),
                    )
                };
                -log_sigmoid(pick(pos) - pick(neg)).mean()
            } else {
                let mut idx = vec![];
                let mut lab = vec![];
                for (a, &i) in chunk.iter().enumerate() {
                    for (p, l) in data[i].at.iter().zip(&data[i].labels) {
                        idx.push((a * s + p) as i64);
                        lab.push(*l);
                    }
                }
                let k = idx.len();
                let z = scores.reshape([-1]).select(
                    0,
                    Tensor::<AB, 1, Int>::from_data(TensorData::new(idx, [k]), &device),
                );
                let y = Tensor::<AB, 1>::from_data(TensorData::new(lab, [k]), &device);
                // BCE with logits: -(y log s(z) + (1 - y) log s(-z))
                -(y.clone() * log_sigmoid(z.clone()) + (y.neg() + 1.0) * log_sigmoid(z.neg()))
                    .mean()
            };
            let lv: f64 = loss.clone().into_scalar().elem();
            if !lv.is_finite() {
                eprintln!("warning: reward model batch with non-finite loss skipped");
                continue;
            }
            let grads = collect_grads(&rm, &loss.backward());
            let (grads, _) = clip(grads, cfg.grad_clip);
            rm = opt.step(rm, grads, cfg.lr);
            total += lv;
            batches += 1;
        }
        stats.push(RmEpochStats {
            epoch: epoch + 1,
            loss: total / batches.max(1) as f64,
            samples: data.len(),
        });
    }
    Ok((rm, stats))
}

/// A fresh optimizer for reward-model training (no weight decay on the head's vector).
pub fn rm_optimizer<B: Backend>() -> AdamW<B> {
    AdamW::new(AdamWConfig::default())
}

use burn::tensor::ElementConversion;

/// Labelled policy samples for reward-model training: `k` completions per `(question, gold)`,
/// outcome labels from the grader; with `prm_rollouts > 0` also step labels by Math-Shepherd's
/// hard estimation (a step is good if one of `prm_rollouts` completions continuing after it
/// reaches the gold answer).
pub fn label_samples<B: Backend>(
    model: &LlamaForCausalLM<B>,
    tok: &Tokenizer,
    prompts: &[(String, String)],
    k: usize,
    prm_rollouts: usize,
    delimiter: &str,
    params: &dsmath_model::SamplingParams,
) -> Result<Vec<RmSample>, TrainError> {
    let correct = |text: &str, gold: &str| dsmath_eval::reward(text, text, gold) > 0.5;
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|(q, _)| tok.encode(q))
        .collect::<Result<_, _>>()?;
    let mut p = params.clone();
    p.n = k;
    let samples = dsmath_model::generate(model, tok, &ids, &p, None)?;
    let mut out = vec![];
    for s in samples {
        let (prompt, gold) = &prompts[s.prompt];
        let label = if correct(&s.text, gold) { 1.0 } else { 0.0 };
        let step_labels = if prm_rollouts > 0 {
            // Steps on the sampled tokens, as GRPO's process rewards and `encode_steps` find them.
            let (_, ends) = crate::rl::explore::step_ends(tok, &s.tokens, delimiter);
            let mut labels = vec![];
            for (j, &e) in ends.iter().enumerate() {
                if j + 1 == ends.len() {
                    break;
                }
                let ctx: Vec<u32> = ids[s.prompt]
                    .iter()
                    .chain(&s.tokens[..=e])
                    .copied()
                    .collect();
                let prefix = tok.decode(&s.tokens[..=e])?;
                let mut q = params.clone();
                q.n = prm_rollouts;
                q.seed = params.seed.wrapping_add(1 + j as u64);
                let conts = dsmath_model::generate(model, tok, &[ctx], &q, None)?;
                labels.push(
                    if conts
                        .iter()
                        .any(|c| correct(&format!("{prefix}{}", c.text), gold))
                    {
                        1.0
                    } else {
                        0.0
                    },
                );
            }
            labels.push(label); // the last step's label is the outcome's
            Some(labels)
        } else {
            None
        };
        out.push(RmSample {
            prompt: prompt.clone(),
            response: s.text,
            label: Some(label),
            step_labels,
        });
    }
    Ok(out)
}
