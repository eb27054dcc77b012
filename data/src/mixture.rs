//! The pretraining data mixture (DeepSeekMath §3.1: 56% math corpus, 4% AlgebraicStack, 10%
//! arXiv, 20% GitHub code, 10% general): a streaming sampler over token shards with weights. Each
//! draw picks a source by weight and takes the next `len` tokens of that source's stream
//! (wrapping around at the end: a new epoch). The cursor (per-source position and epoch, draw
//! count, seed) is plain data: saved in a checkpoint, it resumes the exact same stream.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::shards::TokenShard;

/// Where the sampler is: enough to resume exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureCursor {
    pub seed: u64,
    pub draws: u64,
    pub positions: Vec<u64>,
    pub epochs: Vec<u64>,
    /// Source names, to refuse resuming onto a different mixture.
    pub names: Vec<String>,
}

pub struct Source {
    pub name: String,
    pub shard: TokenShard,
    pub weight: f64,
}

pub struct Mixture {
    pub sources: Vec<Source>,
    cursor: MixtureCursor,
    cumulative: Vec<f64>,
}

impl Mixture {
    pub fn new(sources: Vec<Source>, seed: u64) -> Result<Mixture> {
        if sources.is_empty() {
            return Err(DataError::Other("mixture has no sources".into()));
        }
        if let Some(s) = sources
            .iter()
            .find(|s| !(s.weight >= 0.0 && s.weight.is_finite()))
        {
            return Err(DataError::Other(format!(
                "source `{}` has weight {}",
                s.name, s.weight
            )));
        }
        if let Some(s) = sources
            .iter()
            .find(|s| s.weight > 0.0 && s.shard.is_empty())
        {
            return Err(DataError::file(
                &s.shard.stem,
                format!("source `{}` has no tokens", s.name),
            ));
        }
        let total: f64 = sources.iter().map(|s| s.weight).sum();
        if total <= 0.0 {
            return Err(DataError::Other("mixture weights sum to zero".into()));
        }
        let mut acc = 0.0;
        let cumulative = sources
            .iter()
            .map(|s| {
                acc += s.weight / total;
                acc
            })
            .collect();
        let n = sources.len();
        let cursor = MixtureCursor {
            seed,
            draws: 0,
            positions: vec![0; n],
            epochs: vec![0; n],
            names: sources.iter().map(|s| s.name.clone()).collect(),
        };
        Ok(Mixture {
            sources,
            cursor,
            cumulative,
        })
    }

    pub fn cursor(&self) -> &MixtureCursor {
        &self.cursor
    }

    /// Continue from a saved cursor.
    pub fn restore(&mut self, cursor: MixtureCursor) -> Result<()> {
        if cursor.names != self.cursor.names {
            return Err(DataError::Other(format!(
                "cursor is for sources {:?}, this mixture has {:?}",
                cursor.names, self.cursor.names
            )));
        }
        self.cursor = cursor;
        Ok(())
    }

    /// The next `len` tokens and the index of the source they came from.
    pub fn next_sequence(&mut self, len: usize) -> (Vec<u32>, usize) {
        // One RNG per draw, derived from (seed, draw): resuming needs no RNG state.
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.cursor.seed ^ self.cursor.draws.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let u: f64 = rng.random();
        let s = self
            .cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.sources.len() - 1);
        let shard = &self.sources[s].shard;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let pos = self.cursor.positions[s];
            let take = ((shard.len() - pos) as usize).min(len - out.len());
            out.extend(shard.tokens(pos, take));
            self.cursor.positions[s] += take as u64;
            if self.cursor.positions[s] >= shard.len() {
                self.cursor.positions[s] = 0;
                self.cursor.epochs[s] += 1;
            }
        }
        self.cursor.draws += 1;
        (out, s)
    }
}
