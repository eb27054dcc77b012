//! Deduplication (DeepSeekMath §2.1; staged like datatrove's minhash): exact URL dedup on
//! normalised URLs, exact text dedup, and MinHash-LSH near-dedup on word 5-grams with 14 bands
//! x 8 rows. The near-dedup runs in four stages that can run on different machines, meeting
//! through files: per-shard signatures -> per-band buckets -> union-find clusters -> per-shard
//! filter. The first document (lowest shard, then index) of a cluster is kept; results are
//! deterministic.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::doc::Document;
use crate::error::{DataError, Result};

/// Keep the first item of each key (items without a key are always kept); returns
/// `(kept, [(removed id, kept id)])`. `doc` reaches the document inside an item.
pub fn keep_first<T, K: std::hash::Hash + Eq>(
    items: Vec<T>,
    doc: impl Fn(&T) -> &Document,
    key: impl Fn(&Document) -> Option<K>,
) -> (Vec<T>, Vec<(String, String)>) {
    let mut seen: HashMap<K, String> = HashMap::new();
    let mut kept = vec![];
    let mut removed = vec![];
    for it in items {
        let d = doc(&it);
        match key(d) {
            Some(k) => match seen.get(&k) {
                Some(first) => removed.push((d.id.clone(), first.clone())),
                None => {
                    seen.insert(k, d.id.clone());
                    kept.push(it);
                }
            },
            None => kept.push(it),
        }
    }
    (kept, removed)
}

/// The URL dedup key: the normalised URL (none for a document without a URL).
pub fn url_key(d: &Document) -> Option<String> {
    (!d.url.is_empty()).then(|| crate::url::normalize(&d.url))
}

/// The exact dedup key: SHA-256 of the whitespace-normalised text.
pub fn text_key(d: &Document) -> Option<[u8; 32]> {
    let mut h = Sha256::new();
    for w in d.text.split_whitespace() {
        h.update(w.as_bytes());
        h.update(b" ");
    }
    Some(h.finalize().into())
}

/// Keep the first document of each normalised URL; returns `(kept, [(removed id, kept id)])`.
pub fn url_dedup(docs: Vec<Document>) -> (Vec<Document>, Vec<(String, String)>) {
    keep_first(docs, |d| d, url_key)
}

/// Keep the first document of each text (whitespace-normalised, SHA-256).
pub fn exact_dedup(docs: Vec<Document>) -> (Vec<Document>, Vec<(String, String)>) {
    keep_first(docs, |d| d, text_key)
}

/// MinHash-LSH settings (DeepSeekMath / datatrove defaults: 5-grams, 14 bands x 8 rows).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinHashConfig {
    pub ngram: usize,
    pub bands: usize,
    pub rows: usize,
    pub seed: u64,
}

impl Default for MinHashConfig {
    fn default() -> Self {
        MinHashConfig {
            ngram: 5,
            bands: 14,
            rows: 8,
            seed: 1,
        }
    }
}

impl MinHashConfig {
    pub fn num_hashes(&self) -> usize {
        self.bands * self.rows
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `h` (start from [`FNV_OFFSET`]).
pub fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// FNV-1a hashes of the lower-cased words of `text` (`\w+` runs: alphanumerics and `_`, the
/// mini-crawl's J5 definition), without a string per word.
fn word_hashes(text: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity(text.len() / 6);
    let mut h: Option<u64> = None;
    let mut utf8 = [0u8; 4];
    for c in text.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() || c == '_' {
                let x = h.unwrap_or(FNV_OFFSET) ^ c.to_ascii_lowercase() as u64;
                h = Some(x.wrapping_mul(0x100_0000_01b3));
            } else if let Some(x) = h.take() {
                out.push(x);
            }
        } else if c.is_alphanumeric() {
            let mut x = h.unwrap_or(FNV_OFFSET);
            for l in c.to_lowercase() {
                x = fnv1a(l.encode_utf8(&mut utf8).as_bytes(), x);
            }
            h = Some(x);
        } else if let Some(x) = h.take() {
            out.push(x);
        }
    }
    out.extend(h);
    out
}

/// Hashes of the word n-grams of `text`, sorted and distinct (one shingle for texts shorter
/// than n words): each window's word hashes combined in order.
pub fn shingle_hashes(text: &str, n: usize) -> Vec<u64> {
    let w = word_hashes(text);
    let hash = |ws: &[u64]| {
        ws.iter().fold(FNV_OFFSET, |h, &x| {
            (h.rotate_left(23) ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        })
    };
    let mut out: Vec<u64> = if w.len() < n {
        if w.is_empty() { vec![] } else { vec![hash(&w)] }
    } else {
        w.windows(n).map(hash).collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Hashes of the word n-grams of `text` (one shingle for texts shorter than n words).
pub fn shingles(text: &str, n: usize) -> HashSet<u64> {
    shingle_hashes(text, n).into_iter().collect()
}

/// Jaccard similarity of two shingle sets.
pub fn jaccard(a: &HashSet<u64>, b: &HashSet<u64>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    a.intersection(b).count() as f64 / a.union(b).count() as f64
}

/// The MinHash signature: for each of `bands * rows` hash functions, the minimum over the
/// shingles (`u64::MAX` everywhere for a text without words). Hash function `i` is
/// Dietzfelbinger's multiply-add-shift `((a_i x + b_i) mod 2^64) >> 32` (2-independent) over the
/// 32-bit key `x` of a shingle, with `a_i`, `b_i` drawn from `seed`: one multiply and one add per
/// shingle and function.
pub fn signature(text: &str, cfg: &MinHashConfig) -> Vec<u64> {
    let sh = shingle_hashes(text, cfg.ngram);
    let k = cfg.num_hashes();
    if sh.is_empty() {
        return vec![u64::MAX; k];
    }
    let draw = |i: u64| splitmix64(cfg.seed.wrapping_mul(1_000_003).wrapping_add(i));
    let a: Vec<u64> = (0..k as u64).map(|i| draw(2 * i)).collect();
    let b: Vec<u64> = (0..k as u64).map(|i| draw(2 * i + 1)).collect();
    let mut sig = vec![u32::MAX; k];
    for &s in &sh {
        let x = splitmix64(s) >> 32;
        for ((m, &a), &b) in sig.iter_mut().zip(&a).zip(&b) {
            *m = (*m).min((a.wrapping_mul(x).wrapping_add(b) >> 32) as u32);
        }
    }
    sig.into_iter().map(u64::from).collect()
}

/// A document's place: (shard, index within the shard).
pub type DocRef = (u32, u32);

const SIG_MAGIC: &[u8; 8] = b"DSMHSIG1";

fn io(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |e| DataError::io(path, e)
}

/// Stage 1: signatures of one shard, written to `dir/sigs-<shard>.bin`.
pub fn write_signatures(
    dir: &Path,
    shard: u32,
    docs: &[Document],
    cfg: &MinHashConfig,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(format!("sigs-{shard:05}.bin"));
    let tmp = path.with_extension("bin.tmp");
    let mut w = BufWriter::new(std::fs::File::create(&tmp).map_err(io(&tmp))?);
    let k = cfg.num_hashes() as u32;
    w.write_all(SIG_MAGIC).map_err(io(&tmp))?;
    w.write_all(&shard.to_le_bytes()).map_err(io(&tmp))?;
    w.write_all(&k.to_le_bytes()).map_err(io(&tmp))?;
    w.write_all(&(docs.len() as u64).to_le_bytes())
        .map_err(io(&tmp))?;
    for d in docs {
        for v in signature(&d.text, cfg) {
            w.write_all(&v.to_le_bytes()).map_err(io(&tmp))?;
        }
    }
    w.flush().map_err(io(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}

/// The number of signatures a signature file holds (its header only).
pub fn signature_count(path: &Path) -> Result<u64> {
    let mut r = std::fs::File::open(path).map_err(io(path))?;
    let mut head = [0u8; 24];
    r.read_exact(&mut head).map_err(io(path))?;
    if &head[..8] != SIG_MAGIC {
        return Err(DataError::file(path, "not a dsmath MinHash signature file"));
    }
    Ok(u64::from_le_bytes(head[16..24].try_into().unwrap()))
}

/// Read a signature file: (shard, signatures).
pub fn read_signatures(path: &Path, cfg: &MinHashConfig) -> Result<(u32, Vec<Vec<u64>>)> {
    let mut r = BufReader::new(std::fs::File::open(path).map_err(io(path))?);
    let mut head = [0u8; 24];
    r.read_exact(&mut head).map_err(io(path))?;
    if &head[..8] != SIG_MAGIC {
        return Err(DataError::file(path, "not a dsmath MinHash signature file"));
    }
    let shard = u32::from_le_bytes(head[8..12].try_into().unwrap());
    let k = u32::from_le_bytes(head[12..16].try_into().unwrap()) as usize;
    if k != cfg.num_hashes() {
        return Err(DataError::file(
            path,
            format!(
                "{k} hashes per signature, config wants {}",
                cfg.num_hashes()
            ),
        ));
    }
    let n = u64::from_le_bytes(head[16..24].try_into().unwrap()) as usize;
    let mut buf = vec![0u8; k * 8];
    let mut sigs = Vec::with_capacity(n);
    for i in 0..n {
        r.read_exact(&mut buf)
            .map_err(|e| DataError::file(path, format!("signature {i} of {n}: {e}")))?;
        sigs.push(
            buf.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        );
    }
    Ok((shard, sigs))
}

/// Stage 2: for one band, the duplicate pairs `(first in bucket, other)` over all shards,
/// written to `dir/pairs-band-<b>.jsonl`. Documents in `gone` (removed by an earlier stage, such
/// as URL or exact dedup) take no part.
pub fn band_pairs(
    dir: &Path,
    sig_files: &[PathBuf],
    band: usize,
    cfg: &MinHashConfig,
    gone: &HashSet<DocRef>,
) -> Result<Vec<(DocRef, DocRef)>> {
    let mut keys: Vec<(u64, DocRef)> = vec![];
    for f in sig_files {
        let (shard, sigs) = read_signatures(f, cfg)?;
        for (i, s) in sigs.iter().enumerate() {
            if s.iter().all(|&v| v == u64::MAX) || gone.contains(&(shard, i as u32)) {
                continue; // no shingles (never a near-duplicate), or already removed
            }
            let rows = &s[band * cfg.rows..(band + 1) * cfg.rows];
            let key = rows.iter().fold(band as u64, |h, &v| splitmix64(h ^ v));
            keys.push((key, (shard, i as u32)));
        }
    }
    keys.sort_unstable();
    let mut pairs = vec![];
    for group in keys.chunk_by(|a, b| a.0 == b.0) {
        for other in &group[1..] {
            pairs.push((group[0].1, other.1));
        }
    }
    let path = dir.join(format!("pairs-band-{band:02}.jsonl"));
    crate::doc::write_jsonl(&path, &pairs)?;
    Ok(pairs)
}

/// Stage 3: union-find over all pairs; every document in a cluster maps to its root (the
/// smallest `DocRef`). Written to `dir/clusters.jsonl` as `[member, root]`.
pub fn clusters(dir: &Path, pairs: &[(DocRef, DocRef)]) -> Result<HashMap<DocRef, DocRef>> {
    let mut parent: HashMap<DocRef, DocRef> = HashMap::new();
    fn find(p: &mut HashMap<DocRef, DocRef>, x: DocRef) -> DocRef {
        let mut r = x;
        while let Some(&q) = p.get(&r) {
            if q == r {
                break;
            }
            r = q;
        }
        let mut y = x;
        while let Some(&q) = p.get(&y) {
            if q == r {
                break;
            }
            p.insert(y, r);
            y = q;
        }
        r
    }
    for &(a, b) in pairs {
        parent.entry(a).or_insert(a);
        parent.entry(b).or_insert(b);
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            parent.insert(hi, lo);
        }
    }
    let members: Vec<DocRef> = parent.keys().copied().collect();
    let mut root = HashMap::new();
    for m in members {
        let r = find(&mut parent, m);
        root.insert(m, r);
    }
    let mut rows: Vec<(DocRef, DocRef)> = root.iter().map(|(a, b)| (*a, *b)).collect();
    rows.sort_unstable();
    crate::doc::write_jsonl(&dir.join("clusters.jsonl"), &rows)?;
    Ok(root)
}

/// Stage 4: drop the non-root members of clusters from one shard's documents (each with its
/// place in the signature files); kept roots of clusters get `minhash_cluster` = their cluster
/// size. Returns `(kept, [(removed id, kept id)])`.
pub fn filter_shard(
    docs: impl IntoIterator<Item = (DocRef, Document)>,
    root: &HashMap<DocRef, DocRef>,
    ids: &HashMap<DocRef, String>,
) -> (Vec<Document>, Vec<(String, String)>) {
    let mut size: HashMap<DocRef, usize> = HashMap::new();
    for r in root.values() {
        *size.entry(*r).or_default() += 1;
    }
    let mut kept = vec![];
    let mut removed = vec![];
    for (me, mut d) in docs {
        match root.get(&me) {
            Some(r) if *r != me => {
                removed.push((d.id.clone(), ids.get(r).cloned().unwrap_or_default()))
            }
            Some(r) => {
                d.set("minhash_cluster", size[r]);
                kept.push(d)
            }
            None => kept.push(d),
        }
    }
    (kept, removed)
}

/// All four stages in one process, through files in `work` (the same code path a cluster runs).
pub fn near_dedup(
    shards: Vec<Vec<Document>>,
    cfg: &MinHashConfig,
    work: &Path,
) -> Result<(Vec<Vec<Document>>, Vec<(String, String)>)> {
    let mut files = vec![];
    for (s, docs) in shards.iter().enumerate() {
        files.push(write_signatures(work, s as u32, docs, cfg)?);
    }
    let mut pairs = vec![];
    for b in 0..cfg.bands {
        pairs.extend(band_pairs(work, &files, b, cfg, &HashSet::new())?);
    }
    let root = clusters(work, &pairs)?;
    let ids: HashMap<DocRef, String> = shards
        .iter()
        .enumerate()
        .flat_map(|(s, d)| {
            d.iter()
                .enumerate()
                .map(move |(i, x)| ((s as u32, i as u32), x.id.clone()))
        })
        .collect();
    let mut out = vec![];
    let mut removed = vec![];
    for (s, docs) in shards.into_iter().enumerate() {
        let placed = docs
            .into_iter()
            .enumerate()
            .map(|(i, d)| ((s as u32, i as u32), d));
        let (k, r) = filter_shard(placed, &root, &ids);
        out.push(k);
        removed.extend(r);
    }
    Ok((out, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_agreement_estimates_jaccard() {
        let base: String = (0..400).map(|i| format!("w{} ", i % 397)).collect();
        let edited = base
            .replacen("w10 ", "changed ", 1)
            .replacen("w200 ", "other ", 1);
        let cfg = MinHashConfig {
            bands: 32,
            rows: 8,
            ..Default::default()
        };
        let (a, b) = (signature(&base, &cfg), signature(&edited, &cfg));
        let agree = a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64;
        let j = jaccard(&shingles(&base, 5), &shingles(&edited, 5));
        assert!((agree - j).abs() < 0.08, "estimate {agree} vs {j}");
    }

    #[test]
    fn stages_find_near_duplicates_across_shards_deterministically() {
        let text: String = (0..300).map(|i| format!("token{i} ")).collect();
        let near = text.replacen("token150 ", "", 1);
        let other: String = (0..300).map(|i| format!("word{i} ")).collect();
        let shards = vec![
            vec![
                Document::new("a", "", text.clone()),
                Document::new("b", "", other),
            ],
            vec![
                Document::new("c", "", near),
                Document::new("d", "", "short"),
            ],
        ];
        let dir = tempfile::tempdir().unwrap();
        let (out, removed) = near_dedup(shards, &MinHashConfig::default(), dir.path()).unwrap();
        assert_eq!(removed, vec![("c".to_string(), "a".to_string())]);
        assert_eq!(out[0].len() + out[1].len(), 3);
        assert_eq!(out[0][0].extra["minhash_cluster"], 2);
    }
}
