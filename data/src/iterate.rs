//! The iterative corpus loop (DeepSeekMath §2.1, Figure 2): train the fastText classifier on the
//! seed (positives) against random pages of the pool (negatives), recall math pages, find math
//! domains and their math URL prefixes, add the uncollected pages under them to the seed, repeat.
//! Each iteration's classifier, scores and state are saved under `work/iter-<k>/`; a rerun
//! resumes after the last finished iteration.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classify::{Classifier, ClassifierConfig};
use crate::doc::Document;
use crate::error::{DataError, Result};
use crate::recall::{
    DomainConfig, RecallConfig, auto_prefixes, domain_stats, pages_under, read_annotations, recall,
    words,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeedConfig {
    /// Pool pages under these `host/path/` prefixes are the first positives.
    pub prefixes: Vec<String>,
    /// Extra positive documents (e.g. an OpenWebMath sample), JSONL.
    pub jsonl: Vec<String>,
    /// Negatives drawn from the pool per positive.
    pub negatives_per_positive: f64,
    pub seed: u64,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            prefixes: vec![],
            jsonl: vec![],
            negatives_per_positive: 1.0,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IterateConfig {
    /// The paper ran 4.
    pub iterations: usize,
    pub seed: SeedConfig,
    pub classifier: ClassifierConfig,
    pub recall: RecallConfig,
    pub domains: DomainConfig,
}

impl Default for IterateConfig {
    fn default() -> Self {
        IterateConfig {
            iterations: 4,
            seed: SeedConfig::default(),
            classifier: ClassifierConfig::default(),
            recall: RecallConfig::default(),
            domains: DomainConfig::default(),
        }
    }
}

/// What one iteration did (a line of `iterations.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationStats {
    pub iteration: usize,
    pub positives: usize,
    pub negatives: usize,
    pub collected_pages: usize,
    pub collected_words: u64,
    pub math_domains: Vec<String>,
    pub new_domains: Vec<String>,
    pub prefixes: Vec<String>,
    /// Uncollected pages added to the seed for the next iteration.
    pub new_seed_pages: usize,
    /// |collected ∩ previous| / |previous|.
    pub overlap_with_previous: Option<f64>,
    /// Against page labels, when given.
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    stats: IterationStats,
    positives: Vec<usize>,
    collected: Vec<usize>,
    scores: Vec<f32>,
    math_domains: Vec<String>,
}

/// The result: final scores and collected pages (best first), and per-iteration stats.
pub struct IterateResult {
    pub scores: Vec<f32>,
    pub collected: Vec<usize>,
    pub stats: Vec<IterationStats>,
}

fn mix(a: u64, b: u64) -> u64 {
    let mut x = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Run (or resume) the loop over `pool`. `labels` (url -> is math) only adds precision/recall.
pub fn iterate(
    pool: &[Document],
    external_seed: &[Document],
    cfg: &IterateConfig,
    work: &Path,
    labels: Option<&HashMap<String, bool>>,
    log: &mut dyn FnMut(&IterationStats),
) -> Result<IterateResult> {
    let annotations = match &cfg.domains.annotations {
        Some(p) => read_annotations(Path::new(p))?,
        None => vec![],
    };
    let seed_prefixes: Vec<String> = cfg
        .seed
        .prefixes
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let mut positives: Vec<usize> = pages_under(pool, &seed_prefixes, &HashSet::new());
    if positives.is_empty() && external_seed.is_empty() {
        return Err(DataError::Other(format!(
            "the seed is empty: no pool page is under {:?} and no seed documents were given",
            cfg.seed.prefixes
        )));
    }
    let mut prev_collected: Option<HashSet<usize>> = None;
    let mut prev_domains: HashSet<String> = HashSet::new();
    let mut all_stats = vec![];
    let mut last: Option<State> = None;
    for it in 1..=cfg.iterations {
        let dir = work.join(format!("iter-{it}"));
        let state_path = dir.join("state.json");
        if let Ok(text) = std::fs::read_to_string(&state_path) {
            let st: State = serde_json::from_str(&text)
                .map_err(|e| DataError::file(&state_path, e.to_string()))?;
            positives = st.positives.clone();
            prev_collected = Some(st.collected.iter().copied().collect());
            prev_domains = st.math_domains.iter().cloned().collect();
            log(&st.stats);
            all_stats.push(st.stats.clone());
            last = Some(st);
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        // Negatives: a seeded random sample of pool pages that are neither seed nor collected by
        // the previous iteration (the paper draws them from all of Common Crawl, where math is
        // rare; in a math-heavy pool, collected pages would teach the classifier against math).
        let pos_set: HashSet<usize> = positives.iter().copied().collect();
        let prev = prev_collected.clone().unwrap_or_default();
        let mut cand: Vec<usize> = (0..pool.len())
            .filter(|i| !pos_set.contains(i) && !prev.contains(i))
            .collect();
        cand.sort_by_key(|&i| mix(cfg.seed.seed ^ it as u64, i as u64));
        let n_pos = positives.len() + external_seed.len();
        let n_neg =
            ((n_pos as f64 * cfg.seed.negatives_per_positive).round() as usize).min(cand.len());
        let mut examples: Vec<(bool, &str)> = positives
            .iter()
            .map(|&i| (true, pool[i].text.as_str()))
            .collect();
        examples.extend(external_seed.iter().map(|d| (true, d.text.as_str())));
        examples.extend(
            cand[..n_neg]
                .iter()
                .map(|&i| (false, pool[i].text.as_str())),
        );
        let clf = Classifier::train(&examples, &cfg.classifier)?;
        clf.save(&dir.join("classifier.bin"))?;
        let texts: Vec<&str> = pool.iter().map(|d| d.text.as_str()).collect();
        let scores = clf.score_batch(&texts);
        let collected_idx = recall(pool, &scores, &cfg.recall);
        let collected: HashSet<usize> = collected_idx.iter().copied().collect();
        let domains = domain_stats(pool, &collected);
        let math_domains: HashSet<String> = domains
            .iter()
            .filter(|d| d.pages >= cfg.domains.min_pages && d.share >= cfg.domains.share)
            .map(|d| d.host.clone())
            .collect();
        let mut prefixes: Vec<String> = annotations
            .iter()
            .filter(|p| math_domains.contains(p.split('/').next().unwrap_or("")))
            .cloned()
            .collect();
        prefixes.extend(auto_prefixes(pool, &collected, &math_domains, &cfg.domains));
        prefixes.sort();
        prefixes.dedup();
        let exclude: HashSet<usize> = collected.union(&pos_set).copied().collect();
        let new_seed = pages_under(pool, &prefixes, &exclude);
        let (precision, rec) = match labels {
            Some(l) => {
                let tp = collected
                    .iter()
                    .filter(|&&i| l.get(&pool[i].url) == Some(&true))
                    .count();
                let all_pos = pool.iter().filter(|d| l.get(&d.url) == Some(&true)).count();
                (
                    Some(tp as f64 / collected.len().max(1) as f64),
                    Some(tp as f64 / all_pos.max(1) as f64),
                )
            }
            None => (None, None),
        };
        let mut md: Vec<String> = math_domains.iter().cloned().collect();
        md.sort();
        let stats = IterationStats {
            iteration: it,
            positives: n_pos,
            negatives: n_neg,
            collected_pages: collected.len(),
            collected_words: collected_idx.iter().map(|&i| words(&pool[i])).sum(),
            new_domains: md
                .iter()
                .filter(|h| !prev_domains.contains(*h))
                .cloned()
                .collect(),
            math_domains: md.clone(),
            prefixes,
            new_seed_pages: new_seed.len(),
            overlap_with_previous: prev_collected
                .as_ref()
                .map(|p| p.intersection(&collected).count() as f64 / p.len().max(1) as f64),
            precision,
            recall: rec,
        };
        positives.extend(new_seed);
        let st = State {
            stats: stats.clone(),
            positives: positives.clone(),
            collected: collected_idx,
            scores,
            math_domains: md.clone(),
        };
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_string(&st).unwrap_or_default())
            .map_err(|e| DataError::io(&tmp, e))?;
        std::fs::rename(&tmp, &state_path).map_err(|e| DataError::io(&state_path, e))?;
        log(&stats);
        all_stats.push(stats);
        prev_collected = Some(collected);
        prev_domains = md.into_iter().collect();
        last = Some(st);
    }
    let last = last.ok_or_else(|| DataError::Other("iterations = 0".into()))?;
    Ok(IterateResult {
        scores: last.scores,
        collected: last.collected,
        stats: all_stats,
    })
}
