//! Benchmark decontamination (DeepSeekMath §2.1): a text segment (a line) containing any
//! 10-gram that also occurs in a benchmark question or answer is removed; benchmark texts of 3-9
//! grams are matched exactly and drop the whole page. Every removal is reported with the
//! benchmark item it matched. Tokens are lower-cased words, and single CJK characters (so
//! CMATH / MGSM-zh / Gaokao match without a segmenter).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::dedup::{FNV_OFFSET, fnv1a};
use crate::doc::Document;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecontamConfig {
    /// n of the n-gram match (the paper: 10).
    pub n: usize,
    /// Shorter benchmark texts with at least this many tokens must match exactly (the paper: 3).
    pub min_tokens: usize,
}

impl Default for DecontamConfig {
    fn default() -> Self {
        DecontamConfig {
            n: 10,
            min_tokens: 3,
        }
    }
}

/// One benchmark text to protect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchItem {
    pub bench: String,
    pub id: String,
    /// `question` or `solution`.
    pub field: String,
    pub text: String,
}

/// What was removed and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removal {
    pub doc: String,
    pub url: String,
    /// Removed line index, or `null` when the whole page was dropped.
    pub segment: Option<usize>,
    pub bench: String,
    pub item: String,
    pub field: String,
    /// The matching n-gram (or short text).
    pub matched: String,
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x3040..=0x30FF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

/// Lower-cased word tokens; each CJK character is a token of its own.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    for c in text.chars() {
        if is_cjk(c) {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(c.to_string());
        } else if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn hash(ts: &[String]) -> u64 {
    ts.iter()
        .fold(FNV_OFFSET, |h, t| fnv1a(b"\x1f", fnv1a(t.as_bytes(), h)))
}

/// The n-gram index of the benchmark texts.
pub struct Decontaminator {
    cfg: DecontamConfig,
    items: Vec<BenchItem>,
    /// n-gram hash -> first item containing it.
    grams: HashMap<u64, usize>,
    /// Short texts: (length, hash of the whole token sequence) -> item.
    short: HashMap<(usize, u64), usize>,
    short_lengths: Vec<usize>,
}

impl Decontaminator {
    pub fn new(items: Vec<BenchItem>, cfg: DecontamConfig) -> Self {
        let mut grams = HashMap::new();
        let mut short = HashMap::new();
        for (i, it) in items.iter().enumerate() {
            let t = tokens(&it.text);
            if t.len() >= cfg.n {
                for w in t.windows(cfg.n) {
                    grams.entry(hash(w)).or_insert(i);
                }
            } else if t.len() >= cfg.min_tokens {
                short.entry((t.len(), hash(&t))).or_insert(i);
            }
        }
        let mut short_lengths: Vec<usize> = short.keys().map(|k| k.0).collect();
        short_lengths.sort_unstable();
        short_lengths.dedup();
        Decontaminator {
            cfg,
            items,
            grams,
            short,
            short_lengths,
        }
    }

    pub fn num_items(&self) -> usize {
        self.items.len()
    }

    /// Clean one document: `None` if the page is dropped; removals are appended.
    pub fn clean(&self, mut doc: Document, removals: &mut Vec<Removal>) -> Option<Document> {
        let all = tokens(&doc.text);
        for &len in &self.short_lengths {
            for w in all.windows(len) {
                if let Some(&i) = self.short.get(&(len, hash(w))) {
                    removals.push(self.removal(&doc, None, i, w.join(" ")));
                    return None;
                }
            }
        }
        let mut kept = vec![];
        let mut removed = 0;
        for (s, line) in doc.text.lines().enumerate() {
            let t = tokens(line);
            let hit = t
                .windows(self.cfg.n)
                .find_map(|w| self.grams.get(&hash(w)).map(|&i| (i, w.join(" "))));
            match hit {
                Some((i, m)) => {
                    removals.push(self.removal(&doc, Some(s), i, m));
                    removed += 1;
                }
                None => kept.push(line),
            }
        }
        if removed > 0 {
            doc.text = kept.join("\n");
            doc.set("decontam", serde_json::json!({"segments_removed": removed}));
            if doc.text.trim().is_empty() {
                return None;
            }
        }
        Some(doc)
    }

    fn removal(
        &self,
        doc: &Document,
        segment: Option<usize>,
        item: usize,
        matched: String,
    ) -> Removal {
        let it = &self.items[item];
        Removal {
            doc: doc.id.clone(),
            url: doc.url.clone(),
            segment,
            bench: it.bench.clone(),
            item: it.id.clone(),
            field: it.field.clone(),
            matched,
        }
    }
}

/// The questions and worked solutions (GSM8K answers, MATH solutions) of `benches`.
pub fn benchmark_items(benches: &[dsmath_eval::bench::Benchmark]) -> crate::Result<Vec<BenchItem>> {
    let mut out = vec![];
    for b in benches {
        let problems = b
            .load_default()
            .map_err(|e| crate::DataError::Other(e.to_string()))?;
        for p in problems {
            let mut push = |field: &str, text: &str| {
                out.push(BenchItem {
                    bench: b.name().into(),
                    id: p.id.clone(),
                    field: field.into(),
                    text: text.to_string(),
                })
            };
            // Final answers alone ("\\frac{1}{2}", "x = 3") are not benchmark text: matching
            // them would drop every page that states a common result. Worked answers are.
            push("question", &p.question);
            if let Some(s) = &p.solution {
                push("solution", s);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str) -> BenchItem {
        BenchItem {
            bench: "b".into(),
            id: "1".into(),
            field: "question".into(),
            text: text.into(),
        }
    }

    #[test]
    fn ten_gram_removes_only_its_line_and_short_text_drops_the_page() {
        let d = Decontaminator::new(
            vec![
                item(
                    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
                ),
                item("x + y = 7"),
            ],
            DecontamConfig::default(),
        );
        let mut rm = vec![];
        let doc = Document::new(
            "d",
            "u",
            "Intro line.\nNATALIA sold clips to 48 of her friends in april and more\nOutro.",
        );
        let out = d.clean(doc, &mut rm).unwrap();
        assert_eq!(out.text, "Intro line.\nOutro.");
        assert_eq!(rm[0].segment, Some(1));
        assert_eq!(
            rm[0].matched,
            "natalia sold clips to 48 of her friends in april"
        );
        // Nine matching tokens are not enough.
        let doc = Document::new("e", "u", "sold clips to 48 of her friends in april");
        assert!(d.clean(doc, &mut rm).is_some());
        // A 5-token benchmark text matched exactly drops the page.
        let doc = Document::new("f", "u", "We know that x+y=7 here.");
        assert!(d.clean(doc, &mut rm).is_none());
        assert_eq!(rm.last().unwrap().segment, None);
    }

    #[test]
    fn cjk_characters_are_tokens() {
        assert_eq!(
            tokens("小明有5个苹果 and X"),
            vec!["小", "明", "有", "5", "个", "苹", "果", "and", "x"]
        );
    }
}
