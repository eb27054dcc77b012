//! The generation engine, outside the model (as in candle / llama-burn): batched left-padded
//! prefill, `n` samples per prompt sharing that prefill (GRPO's G outputs), KV-cache decode,
//! greedy / temperature / top-k / top-p sampling with per-sample seeded RNGs, EOS and stop strings,
//! and the log-probability of every sampled token (GRPO's pi_old).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ModelError;
use crate::model::{KvCache, LlamaForCausalLM, attention_mask, positions_from_valid};
use crate::tokenizer::Tokenizer;

/// How to sample. `temperature == 0` is greedy decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Samples per prompt; they share one prefill.
    pub n: usize,
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches top_p (1.0 = off).
    pub top_p: f32,
    pub max_new_tokens: usize,
    pub seed: u64,
    /// Generation ends when the text contains one of these; the text is cut before it.
    pub stop: Vec<String>,
    /// Keep going after EOS until `max_new_tokens` (benchmarks).
    pub ignore_eos: bool,
    /// The first prompt's index in the caller's numbering: sample `i` of prompt `p` draws from
    /// the RNG seeded by `(seed, first_prompt + p, i)`, so a share of a batch (a data-parallel
    /// rank's) samples exactly what the whole batch would.
    pub first_prompt: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            n: 1,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens: 256,
            seed: 0,
            stop: vec![],
            ignore_eos: false,
            first_prompt: 0,
        }
    }
}

impl SamplingParams {
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Eos,
    Stop,
    Length,
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index of the prompt it answers.
    pub prompt: usize,
    /// Which of the `n` samples of that prompt.
    pub index: usize,
    /// Generated ids, including a final EOS when the model produced one.
    pub tokens: Vec<u32>,
    /// log p(token | prefix) of each generated token under the model's unmodified distribution
    /// (temperature 1, no top-k/top-p): what GRPO uses as pi_old.
    pub logprobs: Vec<f32>,
    /// Decoded text, special tokens skipped, cut before a stop string.
    pub text: String,
    pub finish: FinishReason,
}

/// Independent RNG per (prompt, sample): results do not depend on how prompts are batched.
fn row_rng(seed: u64, prompt: usize, index: usize) -> ChaCha8Rng {
    let mut z = seed ^ ((prompt as u64) << 32 | index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ChaCha8Rng::seed_from_u64(z ^ (z >> 31))
}

/// log-softmax of `logits` at `token`.
pub fn logprob_of(logits: &[f32], token: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    ((logits[token] - max) as f64 - sum.ln()) as f32
}

/// Pick the next token from one row of logits.
pub fn sample_token(logits: &[f32], p: &SamplingParams, rng: &mut impl Rng) -> usize {
    let argmax = || {
        // First maximum, like torch.argmax.
        let mut best = 0;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        best
    };
    if p.temperature <= 0.0 {
        return argmax();
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if p.top_k > 0 {
        idx.truncate(p.top_k.max(1));
    }
    let max = logits[idx[0]];
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| (((logits[i] - max) / p.temperature) as f64).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|q| *q /= total);
    if p.top_p < 1.0 {
        let mut cum = 0.0;
        let mut keep = probs.len();
        for (j, q) in probs.iter().enumerate() {
            cum += q;
            if cum >= p.top_p as f64 {
                keep = j + 1;
                break;
            }
        }
        probs.truncate(keep);
        idx.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (j, q) in probs.iter().enumerate() {
        u -= q;
        if u <= 0.0 {
            return idx[j];
        }
    }
    idx[probs.len() - 1]
}

/// A row of the batch being decoded.
struct Row {
    prompt: usize,
    index: usize,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    rng: ChaCha8Rng,
    /// Which cache slots hold real tokens (false = left padding).
    valid: Vec<bool>,
    streamed: String,
}

fn host_rows<B: Backend>(logits: Tensor<B, 2>) -> Result<Vec<Vec<f32>>, ModelError> {
    let [r, v] = logits.dims();
    let flat = logits
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?;
    Ok((0..r).map(|i| flat[i * v..(i + 1) * v].to_vec()).collect())
}

/// Generate from token-id prompts. With `on_text`, `on_text(prompt, sample, new_text)` is called
/// as text appears (streaming; it costs a decode per token and row, so pass `None` for batch work
/// such as GRPO rollouts). Samples come back ordered by (prompt, sample index).
pub fn generate<B: Backend>(
    model: &LlamaForCausalLM<B>,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    mut on_text: Option<&mut dyn FnMut(usize, usize, &str)>,
) -> Result<Vec<Sample>, ModelError> {
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::Input(
            "empty prompt: a prompt needs at least one token".into(),
        ));
    }
    let vocab = model.model.embed_tokens.dims()[0];
    if let Some(bad) = prompts.iter().flatten().find(|&&t| t as usize >= vocab) {
        return Err(ModelError::Input(format!(
            "token id {bad} is outside the vocabulary ({vocab})"
        )));
    }
    if prompts.is_empty() || params.n == 0 {
        return Ok(vec![]);
    }
    let device = model.model.embed_tokens.device();
    let len = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let pad = tokenizer.pad_id;

    // Prefill all prompts once, left-padded: [P, len].
    let mut ids = Vec::with_capacity(prompts.len() * len);
    let mut valid = Vec::with_capacity(prompts.len());
    for p in prompts {
        ids.extend(
            std::iter::repeat_n(pad as i64, len - p.len()).chain(p.iter().map(|&t| t as i64)),
        );
        valid.push((0..len).map(|j| j >= len - p.len()).collect::<Vec<bool>>());
    }
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [prompts.len(), len]), &device);
    let mut cache = KvCache::new(model.model.layers.len());
    let positions = positions_from_valid::<B>(&valid, 0, len, &device);
    let mask = attention_mask::<B>(&valid, len, &device);
    let logits = model.forward(input, positions, Some(mask), Some(&mut cache)); // [P, len, V]
    let [p_n, _, v] = logits.dims();
    let last = host_rows(logits.narrow(1, len - 1, 1).reshape([p_n, v]))?;

    // n samples per prompt: repeat cache rows, logits and masks.
    let order: Vec<usize> = (0..prompts.len())
        .flat_map(|p| std::iter::repeat_n(p, params.n))
        .collect();
    let mut cache = if params.n > 1 {
        cache.select_rows(&order, &device)
    } else {
        cache
    };
    let mut rows: Vec<Row> = order
        .iter()
        .enumerate()
        .map(|(r, &p)| Row {
            prompt: p,
            index: r % params.n,
            tokens: vec![],
            logprobs: vec![],
            rng: row_rng(params.seed, params.first_prompt + p, r % params.n),
            valid: valid[p].clone(),
            streamed: String::new(),
        })
        .collect();
    let mut logits: Vec<Vec<f32>> = order.iter().map(|&p| last[p].clone()).collect();
    let mut done: Vec<(Row, FinishReason)> = vec![];
    let watch_text = !params.stop.is_empty();

    for step in 0..params.max_new_tokens {
        // Sample one token per active row, then retire the finished rows.
        let mut keep = Vec::with_capacity(rows.len());
        let mut next_rows = Vec::with_capacity(rows.len());
        for (i, (mut row, row_logits)) in rows.drain(..).zip(logits.iter()).enumerate() {
            let tok = sample_token(row_logits, params, &mut row.rng);
            row.logprobs.push(logprob_of(row_logits, tok));
            row.tokens.push(tok as u32);
            let mut finish = None;
            if !params.ignore_eos && tokenizer.is_eos(tok as u32) {
                finish = Some(FinishReason::Eos);
            } else if watch_text || step + 1 == params.max_new_tokens {
                let text = tokenizer.decode(&row.tokens)?;
                if params.stop.iter().any(|s| text.contains(s.as_str())) {
                    finish = Some(FinishReason::Stop);
                } else if step + 1 == params.max_new_tokens {
                    finish = Some(FinishReason::Length);
                }
            }
            if let Some(f) = on_text.as_mut() {
                stream(&mut row, tokenizer, params, &mut **f)?;
            }
            match finish {
                Some(f) => done.push((row, f)),
                None => {
                    keep.push(i);
                    next_rows.push(row);
                }
            }
        }
        rows = next_rows;
        if rows.is_empty() {
            break;
        }
        if keep.len() < logits.len() {
            cache = cache.select_rows(&keep, &device);
        }
        // Decode one step for the rows still going: [A, 1].
        let t = cache.len();
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| *r.tokens.last().unwrap() as i64)
            .collect();
        for r in rows.iter_mut() {
            r.valid.push(true);
        }
        let valid: Vec<Vec<bool>> = rows.iter().map(|r| r.valid.clone()).collect();
        let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows.len(), 1]), &device);
        let positions = positions_from_valid::<B>(&valid, t, 1, &device);
        let mask = valid
            .iter()
            .any(|v| v.contains(&false))
            .then(|| attention_mask::<B>(&valid, 1, &device));
        let out = model.forward(input, positions, mask, Some(&mut cache)); // [A, 1, V]
        logits = host_rows(out.reshape([rows.len(), v]))?;
    }

    let mut samples = done
        .into_iter()
        .map(|(row, finish)| {
            let mut text = tokenizer.decode(&row.tokens)?;
            if let Some(cut) = params
                .stop
                .iter()
                .filter_map(|s| text.find(s.as_str()))
                .min()
            {
                text.truncate(cut);
            }
            Ok(Sample {
                prompt: row.prompt,
                index: row.index,
                tokens: row.tokens,
                logprobs: row.logprobs,
                text,
                finish,
            })
        })
        .collect::<Result<Vec<_>, ModelError>>()?;
    samples.sort_by_key(|s| (s.prompt, s.index));
    Ok(samples)
}

/// Emit the newly decoded text of a row (only the part that is stable and before any stop string).
fn stream(
    row: &mut Row,
    tokenizer: &Tokenizer,
    params: &SamplingParams,
    on_text: &mut dyn FnMut(usize, usize, &str),
) -> Result<(), ModelError> {
    let text = tokenizer.decode(&row.tokens)?;
    let mut end = text.len();
    if let Some(cut) = params
        .stop
        .iter()
        .filter_map(|s| text.find(s.as_str()))
        .min()
    {
        end = cut;
    }
    // A partial UTF-8 sequence decodes to U+FFFD: hold it back until it completes.
    let stable = text[..end].trim_end_matches('\u{FFFD}');
    if stable.len() > row.streamed.len() && stable.starts_with(row.streamed.as_str()) {
        on_text(row.prompt, row.index, &stable[row.streamed.len()..]);
        row.streamed = stable.to_string();
    }
    Ok(())
}

/// Log-probability of every token given its prefix (`None` for the first token), for whole
/// sequences scored in one right-padded batch; with `full_logits`, also the logits rows.
pub fn score<B: Backend>(
    model: &LlamaForCausalLM<B>,
    seqs: &[Vec<u32>],
    pad_id: u32,
    full_logits: bool,
) -> Result<Vec<(Vec<Option<f32>>, Option<Vec<Vec<f32>>>)>, ModelError> {
    let device = model.model.embed_tokens.device();
    let vocab = model.model.embed_tokens.dims()[0];
    if let Some(bad) = seqs.iter().flatten().find(|&&t| t as usize >= vocab) {
        return Err(ModelError::Input(format!(
            "token id {bad} is outside the vocabulary ({vocab})"
        )));
    }
    let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
    if len == 0 {
        return Ok(seqs
            .iter()
            .map(|_| (vec![], full_logits.then(Vec::new)))
            .collect());
    }
    let mut ids = Vec::with_capacity(seqs.len() * len);
    let mut valid = Vec::with_capacity(seqs.len());
    for s in seqs {
        ids.extend(
            s.iter()
                .map(|&t| t as i64)
                .chain(std::iter::repeat_n(pad_id as i64, len - s.len())),
        );
        valid.push((0..len).map(|j| j < s.len()).collect::<Vec<bool>>());
    }
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [seqs.len(), len]), &device);
    let logits = model.forward_padded(input, &valid); // [b, len, V]
    let logp = log_softmax(logits.clone(), 2)
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?;
    let raw = if full_logits {
        Some(
            logits
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| ModelError::Backend(format!("{e:?}")))?,
        )
    } else {
        None
    };
    Ok(seqs
        .iter()
        .enumerate()
        .map(|(b, s)| {
            let at = |j: usize| b * len * vocab + j * vocab;
            let lps = (0..s.len())
                .map(|j| (j > 0).then(|| logp[at(j - 1) + s[j] as usize]))
                .collect();
            let rows = raw.as_ref().map(|r| {
                (0..s.len())
                    .map(|j| r[at(j)..at(j) + vocab].to_vec())
                    .collect()
            });
            (lps, rows)
        })
        .collect())
}
