//! Recall and domain discovery (DeepSeekMath §2.1, Figure 2): score deduplicated pages with the
//! classifier, keep the top by threshold or token budget; count per-domain shares of collected
//! pages; domains above 10% are math domains; pages under annotated (or automatically found)
//! URL path prefixes of those domains that were not collected join the seed for the next
//! iteration.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::doc::Document;
use crate::error::{DataError, Result};
use crate::url::{host, path_prefixes};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecallConfig {
    /// Keep pages with P(math) at least this.
    pub threshold: f32,
    /// If > 0, keep at most this many words, best-scored first.
    pub word_budget: u64,
}

impl Default for RecallConfig {
    fn default() -> Self {
        RecallConfig {
            threshold: 0.5,
            word_budget: 0,
        }
    }
}

/// Words of a document (the budget's unit; tokens are ~1.3 words for English BPE).
pub fn words(d: &Document) -> u64 {
    d.text.split_whitespace().count() as u64
}

/// Indices of recalled documents, best first, given their scores.
pub fn recall(docs: &[Document], scores: &[f32], cfg: &RecallConfig) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..docs.len())
        .filter(|&i| scores[i] >= cfg.threshold)
        .collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    if cfg.word_budget > 0 {
        let mut used = 0;
        idx.retain(|&i| {
            let w = words(&docs[i]);
            if used + w > cfg.word_budget {
                return false;
            }
            used += w;
            true
        });
    }
    idx
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainConfig {
    /// A domain is a math domain when this share of its pages was collected (the paper: 10%).
    pub share: f64,
    /// File of annotated math URL path prefixes (`host/path/`, one per line, `#` comments).
    pub annotations: Option<String>,
    /// Inside math domains, also take path prefixes whose collected share is at least this
    /// (0 = only the annotations).
    pub auto_prefix_share: f64,
    /// Minimum pages under an automatic prefix.
    pub auto_prefix_min_pages: usize,
    /// Hosts with fewer pages in the pool are never math domains (one lucky page is not 10%).
    pub min_pages: usize,
}

impl Default for DomainConfig {
    fn default() -> Self {
        DomainConfig {
            share: 0.10,
            annotations: None,
            auto_prefix_share: 0.5,
            auto_prefix_min_pages: 5,
            min_pages: 5,
        }
    }
}

/// Per-domain counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainStat {
    pub host: String,
    pub pages: usize,
    pub collected: usize,
    pub share: f64,
}

pub fn domain_stats(docs: &[Document], collected: &HashSet<usize>) -> Vec<DomainStat> {
    let mut m: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, d) in docs.iter().enumerate() {
        let e = m.entry(host(&d.url)).or_default();
        e.0 += 1;
        e.1 += collected.contains(&i) as usize;
    }
    let mut v: Vec<DomainStat> = m
        .into_iter()
        .map(|(host, (pages, c))| DomainStat {
            host,
            pages,
            collected: c,
            share: c as f64 / pages as f64,
        })
        .collect();
    v.sort_by(|a, b| b.collected.cmp(&a.collected).then(a.host.cmp(&b.host)));
    v
}

/// Read an annotations file: `host/path/` prefixes (a scheme, if written, is dropped).
pub fn read_annotations(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let l = l.split_once("://").map_or(l, |x| x.1);
        if !l.contains('/') {
            return Err(DataError::Line {
                path: path.into(),
                line: i + 1,
                message: format!("`{l}` is not a host/path prefix"),
            });
        }
        out.push(l.to_ascii_lowercase());
    }
    Ok(out)
}

/// Automatic prefixes: in math domains, the path prefixes (any depth) with enough pages of
/// which at least `share` were collected; the shortest such prefix is kept.
pub fn auto_prefixes(
    docs: &[Document],
    collected: &HashSet<usize>,
    math_domains: &HashSet<String>,
    cfg: &DomainConfig,
) -> Vec<String> {
    if cfg.auto_prefix_share <= 0.0 {
        return vec![];
    }
    let mut count: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, d) in docs.iter().enumerate() {
        if !math_domains.contains(&host(&d.url)) {
            continue;
        }
        for p in path_prefixes(&d.url) {
            let e = count.entry(p).or_default();
            e.0 += 1;
            e.1 += collected.contains(&i) as usize;
        }
    }
    let good: Vec<String> = count
        .iter()
        .filter(|(_, (n, c))| {
            *n >= cfg.auto_prefix_min_pages && *c as f64 >= cfg.auto_prefix_share * *n as f64
        })
        .map(|(p, _)| p.clone())
        .collect();
    // Keep the shortest: drop prefixes under another good prefix.
    good.iter()
        .filter(|p| !good.iter().any(|q| q != *p && p.starts_with(q.as_str())))
        .cloned()
        .collect()
}

/// `host/path` of a URL, lower-cased, for prefix matching.
pub fn url_key(url: &str) -> String {
    let h = host(url);
    let rest = url.split_once("://").map_or(url, |x| x.1);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    format!("{h}{}", path.split(['?', '#']).next().unwrap_or(""))
}

/// Pages under `prefixes` that are not collected and not already seeds.
pub fn pages_under(docs: &[Document], prefixes: &[String], exclude: &HashSet<usize>) -> Vec<usize> {
    (0..docs.len())
        .filter(|i| !exclude.contains(i))
        .filter(|&i| {
            let k = url_key(&docs[i].url).to_ascii_lowercase();
            prefixes.iter().any(|p| k.starts_with(p.as_str()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(url: &str, words: usize) -> Document {
        Document::new(url, url, "w ".repeat(words))
    }

    #[test]
    fn recall_by_threshold_and_budget() {
        let docs = vec![
            doc("https://a/1", 10),
            doc("https://a/2", 10),
            doc("https://a/3", 10),
        ];
        let scores = [0.9, 0.4, 0.7];
        assert_eq!(recall(&docs, &scores, &RecallConfig::default()), vec![0, 2]);
        assert_eq!(
            recall(
                &docs,
                &scores,
                &RecallConfig {
                    threshold: 0.0,
                    word_budget: 25
                }
            ),
            vec![0, 2]
        );
    }

    #[test]
    fn domains_and_prefixes() {
        let docs: Vec<Document> = (0..10)
            .map(|i| {
                doc(
                    &format!(
                        "https://m.org/{}/p{i}.html",
                        if i < 6 { "math" } else { "blog" }
                    ),
                    5,
                )
            })
            .chain((0..10).map(|i| doc(&format!("https://o.org/x/p{i}"), 5)))
            .collect();
        let collected: HashSet<usize> = [0, 1, 2, 3, 10].into_iter().collect();
        let st = domain_stats(&docs, &collected);
        let math: HashSet<String> = st
            .iter()
            .filter(|s| s.share >= 0.3)
            .map(|s| s.host.clone())
            .collect();
        assert_eq!(math, HashSet::from(["m.org".to_string()]));
        let auto = auto_prefixes(&docs, &collected, &math, &DomainConfig::default());
        assert_eq!(auto, vec!["m.org/math/".to_string()]);
        assert_eq!(pages_under(&docs, &auto, &collected), vec![4, 5]);
    }
}
