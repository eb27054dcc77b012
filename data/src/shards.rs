//! Tokenisation into packed token shards (DESIGN.md "Token shards"): `<name>.bin` little-endian
//! u32 ids, documents concatenated and each ended by EOS; `<name>.idx` little-endian u64 end
//! offsets; `<name>.json` metadata. Also byte-level BPE training with the `tokenizers` crate for
//! runs that start from scratch (the demo).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{DataError, Result};

/// Special tokens of trained tokenizers, in id order.
pub const EOS: &str = "<|endoftext|>";
pub const PAD: &str = "<|pad|>";

/// Train a byte-level BPE tokenizer (GPT-2 style) on `texts`; `EOS` is id 0, `PAD` id 1. Numbers
/// are split into single digits first, as DeepSeek LLM's tokenizer does (DeepSeekMath §3.1).
pub fn train_bpe<'a>(
    texts: impl Iterator<Item = &'a str> + Send,
    vocab_size: usize,
) -> Result<Tokenizer> {
    let mut tok = Tokenizer::new(BPE::default());
    let pre = Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::default().add_prefix_space(false).into(),
    ]);
    tok.with_pre_tokenizer(Some(pre));
    tok.with_decoder(Some(ByteLevel::default()));
    tok.with_post_processor(Some(ByteLevel::default().trim_offsets(false)));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![
            AddedToken::from(EOS, true),
            AddedToken::from(PAD, true),
        ])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tok.train(&mut trainer, texts)
        .map_err(|e| DataError::Other(format!("BPE training: {e}")))?;
    Ok(tok)
}

/// Metadata written beside a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardMeta {
    pub tokenizer_sha256: String,
    pub vocab_size: usize,
    pub documents: u64,
    pub tokens: u64,
    pub source: String,
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn stem_with(stem: &Path, ext: &str) -> PathBuf {
    PathBuf::from(format!("{}.{ext}", stem.display()))
}

/// Writes `<stem>.bin` / `.idx` under temp names, renames them into place, then writes the
/// `.json` (a reader that finds the `.json` finds the whole shard).
struct ShardWriter {
    stem: PathBuf,
    bin_tmp: PathBuf,
    idx_tmp: PathBuf,
    bin: BufWriter<std::fs::File>,
    idx: BufWriter<std::fs::File>,
    documents: u64,
    tokens: u64,
}

impl ShardWriter {
    fn create(stem: &Path) -> Result<ShardWriter> {
        if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        }
        let (bin_tmp, idx_tmp) = (stem_with(stem, "bin.tmp"), stem_with(stem, "idx.tmp"));
        let open = |p: &Path| {
            std::fs::File::create(p)
                .map(BufWriter::new)
                .map_err(|e| DataError::io(p, e))
        };
        Ok(ShardWriter {
            stem: stem.to_path_buf(),
            bin: open(&bin_tmp)?,
            idx: open(&idx_tmp)?,
            bin_tmp,
            idx_tmp,
            documents: 0,
            tokens: 0,
        })
    }

    /// Append `n` tokens given as little-endian bytes.
    fn tokens(&mut self, le_bytes: &[u8], n: u64) -> Result<()> {
        self.tokens += n;
        self.bin
            .write_all(le_bytes)
            .map_err(|e| DataError::io(&self.bin_tmp, e))
    }

    /// End the current document at the tokens written so far.
    fn end_document(&mut self) -> Result<()> {
        self.documents += 1;
        self.idx
            .write_all(&self.tokens.to_le_bytes())
            .map_err(|e| DataError::io(&self.idx_tmp, e))
    }

    /// Flush, rename into place and write the metadata (`documents` / `tokens` counted here).
    fn finish(
        mut self,
        tokenizer_sha256: String,
        vocab_size: usize,
        source: String,
    ) -> Result<ShardMeta> {
        self.bin
            .flush()
            .map_err(|e| DataError::io(&self.bin_tmp, e))?;
        self.idx
            .flush()
            .map_err(|e| DataError::io(&self.idx_tmp, e))?;
        let meta = ShardMeta {
            tokenizer_sha256,
            vocab_size,
            documents: self.documents,
            tokens: self.tokens,
            source,
        };
        let (bin, idx) = (stem_with(&self.stem, "bin"), stem_with(&self.stem, "idx"));
        std::fs::rename(&self.bin_tmp, &bin).map_err(|e| DataError::io(&bin, e))?;
        std::fs::rename(&self.idx_tmp, &idx).map_err(|e| DataError::io(&idx, e))?;
        let json = stem_with(&self.stem, "json");
        std::fs::write(
            &json,
            serde_json::to_string_pretty(&meta).unwrap_or_default(),
        )
        .map_err(|e| DataError::io(&json, e))?;
        Ok(meta)
    }
}

/// Encode `texts` with the tokenizer at `tokenizer_path` and write `<stem>.bin/.idx/.json`
/// (each file written to a temp name, then renamed). Returns the metadata.
pub fn write_shard<'a>(
    stem: &Path,
    texts: impl Iterator<Item = &'a str>,
    tokenizer_path: &Path,
    source: &str,
) -> Result<ShardMeta> {
    let tok = Tokenizer::from_file(tokenizer_path)
        .map_err(|e| DataError::file(tokenizer_path, e.to_string()))?;
    let eos = tok.token_to_id(EOS).ok_or_else(|| {
        DataError::file(tokenizer_path, format!("tokenizer has no `{EOS}` token"))
    })?;
    let mut w = ShardWriter::create(stem)?;
    let texts: Vec<&str> = texts.collect();
    let mut bytes = vec![];
    for chunk in texts.chunks(256) {
        let enc = tok
            .encode_batch(chunk.to_vec(), false)
            .map_err(|e| DataError::file(tokenizer_path, e.to_string()))?;
        for e in enc {
            bytes.clear();
            for &id in e.get_ids().iter().chain(std::iter::once(&eos)) {
                bytes.extend_from_slice(&id.to_le_bytes());
            }
            w.tokens(&bytes, e.get_ids().len() as u64 + 1)?;
            w.end_document()?;
        }
    }
    w.finish(
        sha256_file(tokenizer_path)?,
        tok.get_vocab_size(true),
        source.into(),
    )
}

/// Concatenate token shards (made with the same tokenizer and source) into `<stem>`, documents
/// in the given order: the same files `write_shard` gives for all their texts at once.
pub fn concat_shards(stem: &Path, parts: &[PathBuf]) -> Result<ShardMeta> {
    let shards: Vec<TokenShard> = parts
        .iter()
        .map(|p| TokenShard::open(p))
        .collect::<Result<_>>()?;
    let first = shards
        .first()
        .ok_or_else(|| DataError::Other(format!("{}: no shards to concatenate", stem.display())))?;
    if let Some(other) = shards.iter().find(|s| {
        s.meta.tokenizer_sha256 != first.meta.tokenizer_sha256 || s.meta.source != first.meta.source
    }) {
        return Err(DataError::file(
            stem_with(&other.stem, "json"),
            format!(
                "another tokenizer or source than {}",
                stem_with(&first.stem, "json").display()
            ),
        ));
    }
    let mut w = ShardWriter::create(stem)?;
    for s in &shards {
        let mut start = 0;
        for &end in &s.ends {
            w.tokens(&s.bin[start as usize * 4..end as usize * 4], end - start)?;
            w.end_document()?;
            start = end;
        }
    }
    w.finish(
        first.meta.tokenizer_sha256.clone(),
        first.meta.vocab_size,
        first.meta.source.clone(),
    )
}

/// A token shard, memory-mapped and validated.
pub struct TokenShard {
    pub stem: PathBuf,
    pub meta: ShardMeta,
    bin: memmap2::Mmap,
    ends: Vec<u64>,
}

impl TokenShard {
    pub fn open(stem: &Path) -> Result<TokenShard> {
        let (bin_p, idx_p, json_p) = (
            stem_with(stem, "bin"),
            stem_with(stem, "idx"),
            stem_with(stem, "json"),
        );
        let meta: ShardMeta = serde_json::from_str(
            &std::fs::read_to_string(&json_p).map_err(|e| DataError::io(&json_p, e))?,
        )
        .map_err(|e| DataError::file(&json_p, e.to_string()))?;
        let f = std::fs::File::open(&bin_p).map_err(|e| DataError::io(&bin_p, e))?;
        // SAFETY: shards are immutable once renamed into place.
        let bin = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| DataError::io(&bin_p, e))?;
        if bin.len() % 4 != 0 || bin.len() as u64 / 4 != meta.tokens {
            return Err(DataError::file(
                &bin_p,
                format!(
                    "{} bytes, but {} says {} tokens",
                    bin.len(),
                    json_p.display(),
                    meta.tokens
                ),
            ));
        }
        let idx = std::fs::read(&idx_p).map_err(|e| DataError::io(&idx_p, e))?;
        if idx.len() % 8 != 0 {
            return Err(DataError::file(&idx_p, "length is not a multiple of 8"));
        }
        let ends: Vec<u64> = idx
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        if ends.len() as u64 != meta.documents
            || ends.windows(2).any(|w| w[0] >= w[1])
            || ends.last().copied().unwrap_or(0) != meta.tokens
        {
            return Err(DataError::file(
                &idx_p,
                "document offsets are not increasing or do not end at the token count",
            ));
        }
        Ok(TokenShard {
            stem: stem.to_path_buf(),
            meta,
            bin,
            ends,
        })
    }

    /// Check every id is inside the vocabulary (a full scan: run it once after copying shards).
    pub fn check_ids(&self) -> Result<()> {
        match (0..self.meta.tokens)
            .map(|i| self.token(i))
            .find(|&t| t as usize >= self.meta.vocab_size)
        {
            Some(bad) => Err(DataError::file(
                stem_with(&self.stem, "bin"),
                format!(
                    "token id {bad} outside the vocabulary ({})",
                    self.meta.vocab_size
                ),
            )),
            None => Ok(()),
        }
    }

    pub fn len(&self) -> u64 {
        self.meta.tokens
    }

    pub fn is_empty(&self) -> bool {
        self.meta.tokens == 0
    }

    /// Token `i`.
    pub fn token(&self, i: u64) -> u32 {
        let i = i as usize * 4;
        u32::from_le_bytes(self.bin[i..i + 4].try_into().unwrap())
    }

    /// Tokens `[from, from + n)`.
    pub fn tokens(&self, from: u64, n: usize) -> Vec<u32> {
        (from..from + n as u64).map(|i| self.token(i)).collect()
    }

    /// Token ids of document `d` (with its EOS).
    pub fn document(&self, d: usize) -> Vec<u32> {
        let start = if d == 0 { 0 } else { self.ends[d - 1] };
        self.tokens(start, (self.ends[d] - start) as usize)
    }

    pub fn num_documents(&self) -> usize {
        self.ends.len()
    }
}
