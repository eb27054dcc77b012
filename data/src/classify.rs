//! The math-page classifier (DeepSeekMath §2.1): fastText supervised classification with the
//! paper's settings (word n-grams up to 3, minCount 3, dim 256, lr 0.1, 3 epochs), through the
//! pure-Rust `fasttext` crate, which reads and writes fastText's own `.bin` format (models
//! trained by the C++ fastText load too; `.ftz` quantized models are not used: a third party
//! reports wrong quantized inference). Batch scoring is spread over threads.

use std::io::Write;
use std::path::Path;

use fasttext::FastText;
use fasttext::args::{Args, LossName, ModelName};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

pub const MATH: &str = "__label__math";
pub const OTHER: &str = "__label__other";

/// fastText training settings; defaults are the paper's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    pub dim: i32,
    pub lr: f64,
    pub word_ngrams: i32,
    pub min_count: i32,
    pub epoch: i32,
    /// Hash buckets for word n-grams (fastText's default 2M; fewer for small runs: memory is
    /// `(vocab + bucket) * dim * 4` bytes).
    pub bucket: i32,
    /// Training threads (0: all cores). Only 1 is reproducible (Hogwild SGD races otherwise).
    pub threads: i32,
    pub seed: i32,
    /// Tokens of a document used for training and scoring.
    pub max_tokens: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            dim: 256,
            lr: 0.1,
            word_ngrams: 3,
            min_count: 3,
            epoch: 3,
            bucket: 2_000_000,
            threads: 0,
            seed: 0,
            max_tokens: 2048,
        }
    }
}

fn cores() -> i32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i32)
        .unwrap_or(1)
}

/// fastText input text: lower-case, symbols and punctuation split into their own tokens (so
/// `$x^2$` gives the features `$ x ^ 2 $`), one line, at most `max_tokens` tokens.
pub fn preprocess(text: &str, max_tokens: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_tokens * 8));
    let mut tokens = 0;
    let mut in_word = false;
    for c in text.chars() {
        if tokens >= max_tokens {
            break;
        }
        if c.is_alphanumeric() || c == '_' {
            if !in_word {
                if !out.is_empty() {
                    out.push(' ');
                }
                tokens += 1;
                in_word = true;
            }
            out.extend(c.to_lowercase());
        } else {
            in_word = false;
            if !c.is_whitespace() && !c.is_control() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push(c);
                tokens += 1;
            }
        }
    }
    out
}

/// The held-out 20% of a labelled crawl: a page is in the test split when the FNV-1a hash of
/// its URL is divisible by 5 (deterministic, and independent of crawl order). Used by the tests
/// and by scripts/compare_fasttext.py's split, so both evaluate on the same pages.
pub fn in_test_split(url: &str) -> bool {
    crate::dedup::fnv1a(url.as_bytes(), crate::dedup::FNV_OFFSET).is_multiple_of(5)
}

/// A trained classifier.
pub struct Classifier {
    pub model: FastText,
    pub max_tokens: usize,
}

/// Write `(is_math, text)` examples as a fastText training file.
pub fn write_training_file(
    path: &Path,
    examples: &[(bool, &str)],
    max_tokens: usize,
) -> Result<()> {
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| DataError::io(path, e))?);
    for (math, text) in examples {
        let line = preprocess(text, max_tokens);
        if line.is_empty() {
            continue;
        }
        writeln!(f, "{} {line}", if *math { MATH } else { OTHER })
            .map_err(|e| DataError::io(path, e))?;
    }
    f.flush().map_err(|e| DataError::io(path, e))
}

impl Classifier {
    /// Train on a fastText-format file (`__label__math text...` lines).
    pub fn train_file(path: &Path, cfg: &ClassifierConfig) -> Result<Self> {
        let mut args = Args::default();
        args.apply_supervised_defaults();
        args.input = path.to_path_buf();
        args.model = ModelName::Supervised;
        args.loss = LossName::Softmax;
        args.dim = cfg.dim;
        args.lr = cfg.lr;
        args.word_ngrams = cfg.word_ngrams;
        args.min_count = cfg.min_count;
        args.epoch = cfg.epoch;
        args.bucket = if cfg.word_ngrams <= 1 { 0 } else { cfg.bucket };
        args.thread = if cfg.threads > 0 {
            cfg.threads
        } else {
            cores()
        };
        args.seed = cfg.seed;
        args.verbose = 0;
        let model = FastText::train(args)
            .map_err(|e| DataError::file(path, format!("fastText training: {e}")))?;
        Ok(Classifier {
            model,
            max_tokens: cfg.max_tokens,
        })
    }

    /// Train on `(is_math, text)` examples (via a temporary training file).
    pub fn train(examples: &[(bool, &str)], cfg: &ClassifierConfig) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(|e| DataError::Other(format!("temp dir: {e}")))?;
        let path = dir.path().join("train.txt");
        write_training_file(&path, examples, cfg.max_tokens)?;
        Self::train_file(&path, cfg)
    }

    /// Load a fastText `.bin` (from dsmath or the C++ fastText).
    pub fn load(path: &Path, max_tokens: usize) -> Result<Self> {
        let model = FastText::load_model(path)
            .map_err(|e| DataError::file(path, format!("not a fastText model: {e}")))?;
        let (labels, _) = model.get_labels();
        if !labels.iter().any(|l| l == MATH) {
            return Err(DataError::file(
                path,
                format!("model has no `{MATH}` label (labels: {labels:?})"),
            ));
        }
        Ok(Classifier { model, max_tokens })
    }

    /// Save in fastText's `.bin` format, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("bin.tmp");
        self.model
            .save_model(&tmp)
            .map_err(|e| DataError::file(&tmp, e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
    }

    /// P(math) of a raw document.
    pub fn score(&self, text: &str) -> f32 {
        self.score_line(&preprocess(text, self.max_tokens))
    }

    /// P(math) of an already preprocessed line.
    pub fn score_line(&self, line: &str) -> f32 {
        // As the C++ `predict` reads a line: the newline is an EOS token that takes part in the
        // word n-grams (the crate's `predict` appends EOS after the n-grams: up to 5e-3 off).
        let (mut words, mut labels) = (Vec::new(), Vec::new());
        self.model.dict().get_line_from_str(
            &format!("{line} {}", fasttext::dictionary::EOS),
            &mut words,
            &mut labels,
        );
        if words.is_empty() {
            return 0.0;
        }
        let preds = self.model.predict_on_words(&words, 2, 0.0);
        match preds.iter().find(|p| p.label == MATH) {
            Some(p) => p.prob,
            None => preds
                .iter()
                .find(|p| p.label == OTHER)
                .map_or(0.0, |p| 1.0 - p.prob),
        }
    }

    /// P(math) of many documents, on all cores.
    pub fn score_batch(&self, texts: &[&str]) -> Vec<f32> {
        let n = cores().max(1) as usize;
        let chunk = texts.len().div_ceil(n).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = texts
                .chunks(chunk)
                .map(|c| s.spawn(move || c.iter().map(|t| self.score(t)).collect::<Vec<f32>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocessing_splits_symbols() {
        assert_eq!(
            preprocess("Let $x^2 = 4$, so X=2.", 100),
            "let $ x ^ 2 = 4 $ , so x = 2 ."
        );
        assert_eq!(preprocess("a b c d", 2), "a b");
    }
}
