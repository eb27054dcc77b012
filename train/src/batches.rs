//! Training batches: token-shard mixtures for continued pretraining (DeepSeekMath §3.1) and
//! packed SFT examples (§3.3: loss on response tokens only; several examples per context with
//! attention and positions that do not cross example boundaries). Both keep a cursor that a
//! checkpoint stores, so a resumed run sees exactly the batches it would have seen.

use std::path::Path;

use dsmath_data::mixture::{Mixture, MixtureCursor, Source};
use dsmath_data::shards::TokenShard;
use dsmath_model::chat::{ChatTemplate, Message};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::TrainError;

/// `n` rows of `seq_len` tokens with per-token loss weights (for the *target* token) and the
/// example each position belongs to (packing).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub ids: Vec<Vec<u32>>,
    pub weight: Vec<Vec<f32>>,
    pub segment: Vec<Vec<u32>>,
}

impl Batch {
    /// Target tokens that count (position 0 predicts nothing).
    pub fn target_weight(&self) -> f64 {
        self.weight
            .iter()
            .map(|w| w[1..].iter().map(|&x| x as f64).sum::<f64>())
            .sum()
    }

    pub fn rows(&self, from: usize, n: usize) -> Batch {
        Batch {
            ids: self.ids[from..from + n].to_vec(),
            weight: self.weight[from..from + n].to_vec(),
            segment: self.segment[from..from + n].to_vec(),
        }
    }
}

/// A stream of batches with a resumable cursor.
pub trait BatchSource {
    fn next_batch(&mut self, rows: usize) -> Batch;
    fn cursor(&self) -> Value;
    fn restore(&mut self, cursor: &Value) -> Result<(), TrainError>;
}

/// Pretraining: `seq_len`-token windows from a weighted mixture of token shards.
pub struct PretrainBatches {
    pub mixture: Mixture,
    pub seq_len: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: String,
    /// Shard stem (`<stem>.bin/.idx/.json`).
    pub path: String,
    pub weight: f64,
}

impl PretrainBatches {
    pub fn open(sources: &[SourceSpec], seq_len: usize, seed: u64) -> Result<Self, TrainError> {
        let mut srcs = vec![];
        for s in sources {
            srcs.push(Source {
                name: s.name.clone(),
                shard: TokenShard::open(Path::new(&s.path))?,
                weight: s.weight,
            });
        }
        Ok(PretrainBatches {
            mixture: Mixture::new(srcs, seed)?,
            seq_len,
        })
    }
}

impl BatchSource for PretrainBatches {
    fn next_batch(&mut self, rows: usize) -> Batch {
        let mut b = Batch {
            ids: vec![],
            weight: vec![],
            segment: vec![],
        };
        for _ in 0..rows {
            let (ids, _) = self.mixture.next_sequence(self.seq_len);
            b.weight.push(vec![1.0; ids.len()]);
            b.segment.push(vec![0; ids.len()]);
            b.ids.push(ids);
        }
        b
    }
    fn cursor(&self) -> Value {
        serde_json::to_value(self.mixture.cursor()).unwrap_or(Value::Null)
    }
    fn restore(&mut self, cursor: &Value) -> Result<(), TrainError> {
        let c: MixtureCursor = serde_json::from_value(cursor.clone())
            .map_err(|e| TrainError::Backend(format!("mixture cursor: {e}")))?;
        Ok(self.mixture.restore(c)?)
    }
}

/// One tokenised SFT example: prompt tokens (no loss) then response tokens + EOS (loss).
#[derive(Debug, Clone, PartialEq)]
pub struct SftExample {
    pub ids: Vec<u32>,
    pub weight: Vec<f32>,
}

/// Read `{prompt, response}` or `{messages: [{role, content}]}` JSONL records into examples;
/// examples longer than `seq_len` are cut (counted in the second value). With `chat` (the
/// checkpoint's template), `messages` are rendered in it and the loss covers the assistant
/// turns only, each with the template's end-of-turn text; without it they use DeepSeekMath's
/// "User: ... Assistant:" format.
pub fn read_sft(
    path: &Path,
    tok: &dsmath_model::Tokenizer,
    chat: Option<&ChatTemplate>,
    seq_len: usize,
) -> Result<(Vec<SftExample>, usize), TrainError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| TrainError::Io(path.into(), e.to_string()))?;
    let eos = tok
        .eos_ids
        .first()
        .copied()
        .ok_or_else(|| TrainError::Io(path.into(), "tokenizer has no EOS token".into()))?;
    let mut out = vec![];
    let mut cut = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| TrainError::Io(path.into(), format!("line {}: {m}", i + 1));
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        // Turns: (text, counts for the loss).
        let messages = v.get("messages").and_then(Value::as_array);
        if let (Some(template), Some(msgs)) = (chat, messages) {
            let msgs: Vec<Message> = serde_json::from_value(Value::Array(msgs.clone()))
                .map_err(|e| bad(format!("messages must be {{role, content}} strings: {e}")))?;
            let (ids, weight) = chat_example(template, tok, &msgs).map_err(bad)?;
            push_example(&mut out, &mut cut, ids, weight, seq_len);
            continue;
        }
        let turns: Vec<(String, bool)> = if let (Some(p), Some(r)) = (
            v.get("prompt").and_then(Value::as_str),
            v.get("response").and_then(Value::as_str),
        ) {
            vec![(p.to_string(), false), (r.to_string(), true)]
        } else if let Some(msgs) = messages {
            let mut t = vec![];
            for m in msgs {
                let role = m
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("message without `role`".into()))?;
                let content = m
                    .get("content")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("message without `content`".into()))?;
                match role {
                    "user" => t.push((format!("User: {content}\n\n"), false)),
                    "system" => t.push((format!("{content}\n\n"), false)),
                    "assistant" => {
                        t.push(("Assistant:".to_string(), false));
                        t.push((format!(" {content}"), true));
                    }
                    other => return Err(bad(format!("unknown role `{other}`"))),
                }
            }
            t
        } else {
            return Err(bad("need `prompt` + `response` or `messages`".into()));
        };
        let mut ids = vec![];
        let mut weight = vec![];
        if let Some(b) = tok.bos_id {
            ids.push(b);
            weight.push(0.0);
        }
        for (k, (t, counts)) in turns.iter().enumerate() {
            let enc = tok.encode_with(t, false)?;
            weight.extend(std::iter::repeat_n(
                if *counts { 1.0 } else { 0.0 },
                enc.len(),
            ));
            ids.extend(enc);
            if *counts && turns[k + 1..].iter().all(|x| !x.1) {
                ids.push(eos);
                weight.push(1.0);
            }
        }
        push_example(&mut out, &mut cut, ids, weight, seq_len);
    }
    if out.is_empty() {
        return Err(TrainError::Io(path.into(), "no usable SFT examples".into()));
    }
    Ok((out, cut))
}

fn push_example(
    out: &mut Vec<SftExample>,
    cut: &mut usize,
    mut ids: Vec<u32>,
    mut weight: Vec<f32>,
    seq_len: usize,
) {
    if ids.len() > seq_len {
        ids.truncate(seq_len);
        weight.truncate(seq_len);
        *cut += 1;
    }
    if weight.iter().any(|&w| w > 0.0) {
        out.push(SftExample { ids, weight });
    }
}

/// Token ids and loss weights of a conversation rendered in `template`: the text is cut where
/// each turn ends (the rendering of the turns before it, with the assistant header when an
/// assistant turn follows), so the weights are 1 exactly on what the assistant writes, its
/// end-of-turn text included. A template whose renderings of a conversation's beginnings are
/// not prefixes of the whole (it rewrites earlier turns) cannot be masked this way: an error.
fn chat_example(
    template: &ChatTemplate,
    tok: &dsmath_model::Tokenizer,
    msgs: &[Message],
) -> Result<(Vec<u32>, Vec<f32>), String> {
    let render = |n: usize, add: bool| {
        template
            .render(&msgs[..n], add, &[])
            .map_err(|e| e.to_string())
    };
    let mut ids = vec![];
    let mut weight = vec![];
    let mut done = String::new();
    for (k, m) in msgs.iter().enumerate() {
        let assistant = m.role == "assistant";
        // What comes before turn k's own text: the header of an assistant turn is not learned.
        let before = if assistant {
            render(k, true)?
        } else {
            done.clone()
        };
        let after = render(k + 1, false)?;
        for (from, to, w) in [
            (&done, &before, 0.0),
            (&before, &after, if assistant { 1.0 } else { 0.0 }),
        ] {
            let piece = to.strip_prefix(from.as_str()).ok_or_else(|| {
                format!("{}: rendering the first {} turns is not a prefix of rendering {} (the template rewrites earlier turns), so the assistant turns cannot be masked", template.path.display(), k, k + 1)
            })?;
            if !piece.is_empty() {
                let enc = tok.encode_with(piece, false).map_err(|e| e.to_string())?;
                weight.extend(std::iter::repeat_n(w, enc.len()));
                ids.extend(enc);
            }
        }
        done = after;
    }
    Ok((ids, weight))
}

/// SFT: examples shuffled per epoch (seeded) and, with `pack`, packed greedily into rows of
/// `seq_len` (padding has weight 0 and its own segment).
pub struct SftBatches {
    examples: Vec<SftExample>,
    seq_len: usize,
    pack: bool,
    pad: u32,
    seed: u64,
    epoch: u64,
    next: usize,
    order: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SftCursor {
    epoch: u64,
    next: usize,
}

impl SftBatches {
    pub fn new(examples: Vec<SftExample>, seq_len: usize, pack: bool, pad: u32, seed: u64) -> Self {
        let mut s = SftBatches {
            examples,
            seq_len,
            pack,
            pad,
            seed,
            epoch: 0,
            next: 0,
            order: vec![],
        };
        s.shuffle();
        s
    }

    fn shuffle(&mut self) {
        let mut order: Vec<usize> = (0..self.examples.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            self.seed ^ self.epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        self.order = order;
    }

    fn take(&mut self) -> &SftExample {
        if self.next >= self.order.len() {
            self.epoch += 1;
            self.next = 0;
            self.shuffle();
        }
        let e = &self.examples[self.order[self.next]];
        self.next += 1;
        e
    }

    fn peek_len(&mut self) -> usize {
        if self.next >= self.order.len() {
            self.epoch += 1;
            self.next = 0;
            self.shuffle();
        }
        self.examples[self.order[self.next]].ids.len()
    }
}

impl BatchSource for SftBatches {
    fn next_batch(&mut self, rows: usize) -> Batch {
        let (seq_len, pad) = (self.seq_len, self.pad);
        let mut b = Batch {
            ids: vec![],
            weight: vec![],
            segment: vec![],
        };
        for _ in 0..rows {
            let (mut ids, mut w, mut seg) = (vec![], vec![], vec![]);
            let mut k = 0u32;
            loop {
                let len = self.peek_len();
                if !ids.is_empty() && (!self.pack || ids.len() + len > seq_len) {
                    break;
                }
                let e = self.take().clone();
                ids.extend(&e.ids);
                w.extend(&e.weight);
                seg.extend(std::iter::repeat_n(k, e.ids.len()));
                k += 1;
                if !self.pack {
                    break;
                }
            }
            while ids.len() < seq_len {
                ids.push(pad);
                w.push(0.0);
                seg.push(u32::MAX);
            }
            b.ids.push(ids);
            b.weight.push(w);
            b.segment.push(seg);
        }
        b
    }
    fn cursor(&self) -> Value {
        serde_json::to_value(SftCursor {
            epoch: self.epoch,
            next: self.next,
        })
        .unwrap_or(Value::Null)
    }
    fn restore(&mut self, cursor: &Value) -> Result<(), TrainError> {
        let c: SftCursor = serde_json::from_value(cursor.clone())
            .map_err(|e| TrainError::Backend(format!("SFT cursor: {e}")))?;
        self.epoch = c.epoch;
        self.next = c.next;
        self.shuffle();
        Ok(())
    }
}

/// Positions restarting at each packed example, and the attention mask `[b, 1, s, s]` (true =
/// blocked): causal, and never across examples.
pub fn packing_inputs(segment: &[Vec<u32>]) -> (Vec<i64>, Vec<bool>) {
    let s = segment.first().map_or(0, Vec::len);
    let mut pos = Vec::with_capacity(segment.len() * s);
    let mut blocked = Vec::with_capacity(segment.len() * s * s);
    for row in segment {
        let mut p = 0i64;
        for j in 0..s {
            if j > 0 && row[j] != row[j - 1] {
                p = 0;
            }
            pos.push(p);
            p += 1;
        }
        for i in 0..s {
            for j in 0..s {
                blocked.push(j > i || row[i] != row[j]);
            }
        }
    }
    (pos, blocked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_restarts_positions_and_blocks_other_examples() {
        let (pos, blocked) = packing_inputs(&[vec![0, 0, 1, 1, 1]]);
        assert_eq!(pos, vec![0, 1, 0, 1, 2]);
        let row = |i: usize| blocked[i * 5..i * 5 + 5].to_vec();
        assert_eq!(row(1), vec![false, false, true, true, true]);
        assert_eq!(row(3), vec![true, true, false, false, true]);
    }

    #[test]
    fn sft_batches_pack_and_resume() {
        let ex = |n: usize, w: f32| SftExample {
            ids: vec![7; n],
            weight: vec![w; n],
        };
        let examples = vec![ex(3, 1.0), ex(4, 1.0), ex(2, 0.5), ex(5, 1.0)];
        let mut s = SftBatches::new(examples.clone(), 8, true, 0, 3);
        let a = s.next_batch(2);
        assert!(a.segment.iter().all(|r| r.len() == 8));
        assert!(
            a.ids.iter().flatten().filter(|&&t| t == 7).count() >= 7,
            "packed: {a:?}"
        );
        let cur = s.cursor();
        let b = s.next_batch(3);
        let mut t = SftBatches::new(examples, 8, true, 0, 3);
        t.restore(&cur).unwrap();
        assert_eq!(t.next_batch(3), b);
    }
}
