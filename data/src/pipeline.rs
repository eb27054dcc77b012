//! The corpus run (`cargo xtask corpus <stage>`), DeepSeekMath §2.1 end to end in a run
//! directory: extract -> dedup -> iterate (classify, recall, domains) -> decontam -> tokenize.
//! Every stage writes its outputs under `<out>/<stage>/` with a `_done` marker written last; a
//! rerun skips finished stages and resumes unfinished ones (extract per input file, iterate per
//! iteration). `metrics.jsonl`, `summary.json`, `report.md` and `iterations.svg` describe the run.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::decontam::{Decontaminator, benchmark_items};
use crate::dedup::{
    DocRef, MinHashConfig, band_pairs, clusters, filter_shard, keep_first, signature_count,
    text_key, url_key, write_signatures,
};
use crate::doc::{Document, Reject, read_documents, write_jsonl};
use crate::error::{DataError, Result};
use crate::extract::extract_file;
use crate::iterate::{IterateConfig, iterate};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecontamStage {
    pub n: usize,
    pub min_tokens: usize,
    /// Benchmarks to protect (names as in `cargo xtask eval --bench`).
    pub benches: Vec<String>,
}

impl Default for DecontamStage {
    fn default() -> Self {
        DecontamStage {
            n: 10,
            min_tokens: 3,
            benches: [
                "gsm8k",
                "math",
                "math500",
                "cmath",
                "mgsm_zh",
                "gaokao_math_cloze",
                "gaokao_math_qa",
                "svamp",
                "asdiv",
                "mawps",
                "ocw",
                "sat_math",
                "mmlu_stem",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenizeStage {
    /// An existing tokenizer.json; if none, a byte-level BPE is trained on the corpus.
    pub tokenizer: Option<String>,
    pub vocab_size: usize,
    /// Other text the model will see (JSONL lines with a `text` field): part of the BPE
    /// training, and, with `shard = true`, tokenized into `<name>.bin/.idx/.json` beside `math`.
    pub extra: Vec<ExtraText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraText {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub shard: bool,
}

impl Default for TokenizeStage {
    fn default() -> Self {
        TokenizeStage {
            tokenizer: None,
            vocab_size: 8192,
            extra: vec![],
        }
    }
}

/// The `text` of every line of a JSONL file; a line without one is an error naming it.
fn read_texts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut out = vec![];
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| DataError::file(path, format!("line {}: {e}", i + 1)))?;
        let t = v["text"]
            .as_str()
            .ok_or_else(|| DataError::file(path, format!("line {}: no `text` string", i + 1)))?;
        out.push(t.to_string());
    }
    Ok(out)
}

/// The `[corpus]` section of a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorpusConfig {
    /// WARC / WET files (`.warc`, `.warc.gz`, `.wet.gz`) or JSONL documents (`.jsonl[.gz|.zst]`).
    pub inputs: Vec<String>,
    /// Keep only these languages (ISO 639-3, e.g. `eng`); empty keeps all.
    pub languages: Vec<String>,
    pub min_chars: usize,
    /// `url<TAB>...<TAB>topic` labels (the mini-crawl's format) for precision / recall stats.
    pub labels: Option<String>,
    pub minhash: MinHashConfig,
    pub iterate: IterateConfig,
    pub decontam: DecontamStage,
    pub tokenize: TokenizeStage,
}

impl Default for CorpusConfig {
    fn default() -> Self {
        CorpusConfig {
            inputs: vec![],
            languages: vec![],
            min_chars: 200,
            labels: None,
            minhash: MinHashConfig::default(),
            iterate: IterateConfig::default(),
            decontam: DecontamStage::default(),
            tokenize: TokenizeStage::default(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusFile {
    #[serde(default)]
    pub corpus: CorpusConfig,
}

impl CorpusConfig {
    /// Read `[corpus]` from a TOML file; unknown keys are errors naming the key. Relative paths
    /// are taken from the current directory.
    pub fn from_file(path: &Path) -> Result<CorpusConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let f: CorpusFile =
            toml::from_str(&text).map_err(|e| DataError::file(path, e.to_string()))?;
        if f.corpus.inputs.is_empty() {
            return Err(DataError::file(path, "[corpus] inputs is empty"));
        }
        Ok(f.corpus)
    }
}

pub const STAGES: &[&str] = &["extract", "dedup", "iterate", "decontam", "tokenize"];

/// One process's share of a stage (`--shard / --num-shards`): shard `index` of `count`. Shard
/// processes of a stage write into the same run directory, in any order and at the same time;
/// the one that finds every share written merges them, and the result is exactly the
/// one-process result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole stage in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(DataError::Other(format!(
                "--shard {index} --num-shards {count}: need shard < num-shards"
            )));
        }
        Ok(Shard { index, count })
    }

    /// Whether input `i` is this shard's (inputs dealt round-robin: extract, dedup signatures).
    pub fn owns(&self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// This shard's contiguous range of `n` documents (decontam, tokenize): the shards' outputs
    /// concatenated in shard order are the one-process output.
    pub fn range(&self, n: usize) -> Range<usize> {
        n * self.index / self.count..n * (self.index + 1) / self.count
    }
}

/// A corpus run directory.
pub struct Run {
    pub out: PathBuf,
    pub cfg: CorpusConfig,
    start: Instant,
}

fn part(i: usize, n: usize) -> String {
    format!("part-{i:05}-of-{n:05}")
}

/// One stage output file; a damaged line is an error naming it.
fn read_part(f: &Path) -> Result<Vec<Document>> {
    let (docs, rejects) = read_documents(f)?;
    if let Some(r) = rejects.first() {
        return Err(DataError::file(
            f,
            format!("damaged stage output at line {}: {}", r.offset, r.reason),
        ));
    }
    Ok(docs)
}

/// A stage's outputs were started with another `--num-shards`: mixing them would duplicate or
/// lose documents.
fn check_part_count(dir: &Path, count: usize) -> Result<()> {
    let want = format!("-of-{count:05}.jsonl.zst");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("part-") && name.ends_with(".jsonl.zst") && !name.ends_with(&want) {
            return Err(DataError::file(
                e.path(),
                format!(
                    "written with another --num-shards than {count}; rerun with that count or remove {}",
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

fn read_parts(dir: &Path) -> Result<Vec<Vec<Document>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("part-") && n.ends_with(".jsonl.zst"))
        })
        .collect();
    files.sort();
    files.iter().map(|f| read_part(f)).collect()
}

impl Run {
    /// Open (or create) a run directory; the resolved config is saved as `config.toml`.
    pub fn open(out: &Path, cfg: CorpusConfig) -> Result<Run> {
        std::fs::create_dir_all(out).map_err(|e| DataError::io(out, e))?;
        let saved = out.join("config.toml");
        let text = toml::to_string_pretty(&CorpusFile {
            corpus: cfg.clone(),
        })
        .map_err(|e| DataError::Other(e.to_string()))?;
        if let Ok(old) = std::fs::read_to_string(&saved)
            && old != text
        {
            return Err(DataError::file(
                &saved,
                "this run directory was made with a different config; use another --out",
            ));
        }
        std::fs::write(&saved, text).map_err(|e| DataError::io(&saved, e))?;
        Ok(Run {
            out: out.to_path_buf(),
            cfg,
            start: Instant::now(),
        })
    }

    fn done(&self, stage: &str) -> PathBuf {
        self.out.join(stage).join("_done")
    }

    pub fn is_done(&self, stage: &str) -> bool {
        self.done(stage).exists()
    }

    fn mark_done(&self, stage: &str, stats: &Value) -> Result<()> {
        let p = self.done(stage);
        std::fs::write(&p, serde_json::to_string_pretty(stats).unwrap_or_default())
            .map_err(|e| DataError::io(&p, e))?;
        self.metric(stage, stats)
    }

    /// Append `{"stage", "time", ...}` to `metrics.jsonl`.
    fn metric(&self, stage: &str, v: &Value) -> Result<()> {
        let p = self.out.join("metrics.jsonl");
        let mut line = json!({"stage": stage, "time": self.start.elapsed().as_secs_f64()});
        if let (Some(o), Some(src)) = (line.as_object_mut(), v.as_object()) {
            for (k, x) in src {
                o.insert(k.clone(), x.clone());
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| DataError::io(&p, e))?;
        writeln!(f, "{line}").map_err(|e| DataError::io(&p, e))
    }

    /// Stats a finished stage recorded.
    pub fn stage_stats(&self, stage: &str) -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(self.done(stage)).ok()?).ok()
    }

    /// Run one stage in one process (skipped if done). `log` gets one line per step.
    pub fn stage(&self, stage: &str, log: &mut dyn FnMut(&str)) -> Result<()> {
        self.stage_shard(stage, Shard::ALL, log).map(|_| ())
    }

    /// Run one shard of a stage (skipped if the stage is done); returns whether every shard's
    /// share is written, in which case this call also merged them and marked the stage done.
    /// `iterate` runs in one process only (its classifier trains on the whole pool).
    pub fn stage_shard(
        &self,
        stage: &str,
        shard: Shard,
        log: &mut dyn FnMut(&str),
    ) -> Result<bool> {
        if self.is_done(stage) {
            log(&format!("{stage}: already done, skipped"));
            return Ok(true);
        }
        let dir = self.out.join(stage);
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        let stats = match stage {
            "extract" => self.extract(&dir, shard, log)?,
            "dedup" => self.dedup(&dir, shard, log)?,
            "iterate" if shard == Shard::ALL => Some(self.iterate(&dir, log)?),
            "iterate" => {
                return Err(DataError::Other(
                    "iterate runs in one process (its classifier trains on the whole pool); drop --shard"
                        .into(),
                ));
            }
            "decontam" => self.decontam(&dir, shard, log)?,
            "tokenize" => self.tokenize(&dir, shard, log)?,
            other => {
                return Err(DataError::Other(format!(
                    "unknown stage `{other}` (stages: {})",
                    STAGES.join(", ")
                )));
            }
        };
        match stats {
            Some(stats) => self.mark_done(stage, &stats).map(|_| true),
            None => Ok(false),
        }
    }

    /// All stages in order, then the report and the `DONE` marker.
    pub fn all(&self, log: &mut dyn FnMut(&str)) -> Result<()> {
        for s in STAGES {
            self.stage(s, log)?;
        }
        self.report()?;
        std::fs::write(self.out.join("DONE"), "").map_err(|e| DataError::io(&self.out, e))?;
        Ok(())
    }

    /// Extract this shard's inputs (one output part per input file, each with its marker); once
    /// every input's part exists, the stage's stats over all of them.
    fn extract(
        &self,
        dir: &Path,
        shard: Shard,
        log: &mut dyn FnMut(&str),
    ) -> Result<Option<Value>> {
        let mine = self.extract_inputs(dir, &|i| shard.owns(i), log)?;
        if shard == Shard::ALL {
            return Ok(Some(mine));
        }
        let n = self.cfg.inputs.len();
        if !(0..n).all(|i| dir.join("_parts").join(part(i, n)).exists()) {
            return Ok(None);
        }
        self.extract_inputs(dir, &|_| true, log).map(Some) // reads the markers only
    }

    fn extract_inputs(
        &self,
        dir: &Path,
        mine: &dyn Fn(usize) -> bool,
        log: &mut dyn FnMut(&str),
    ) -> Result<Value> {
        let n = self.cfg.inputs.len();
        let mut per_file = vec![];
        let bar = indicatif::ProgressBar::new(n as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "extract {bar:30} {pos}/{len} files [{elapsed} < {eta}] {msg}",
            )
            .unwrap(),
        );
        for (i, input) in self.cfg.inputs.iter().enumerate() {
            if !mine(i) {
                bar.inc(1);
                continue;
            }
            let name = part(i, n);
            let marker = dir.join("_parts").join(&name);
            if let Ok(s) = std::fs::read_to_string(&marker) {
                per_file.push(serde_json::from_str::<Value>(&s).unwrap_or(Value::Null));
                bar.inc(1);
                continue;
            }
            let path = Path::new(input);
            bar.set_message(input.clone());
            let lower = input.to_ascii_lowercase();
            let (docs, rejects, mut stats) = if lower.contains(".jsonl") {
                let (d, r) = read_documents(path)?;
                (d, r, json!({"file": input}))
            } else {
                let (d, r, s) = extract_file(path, input)?;
                (d, r, json!({"file": input, "extract": s}))
            };
            let before = docs.len();
            let kept: Vec<Document> = docs
                .into_iter()
                .filter(|d| d.text.chars().count() >= self.cfg.min_chars)
                .filter(|d| self.cfg.languages.is_empty() || self.cfg.languages.contains(&d.lang))
                .collect();
            stats["documents"] = json!(kept.len());
            stats["filtered_short_or_language"] = json!(before - kept.len());
            stats["rejects"] = json!(rejects.len());
            write_jsonl(&dir.join(format!("{name}.jsonl.zst")), &kept)?;
            write_jsonl::<Reject>(&dir.join("rejects").join(format!("{name}.jsonl")), &rejects)?;
            std::fs::create_dir_all(dir.join("_parts")).map_err(|e| DataError::io(dir, e))?;
            std::fs::write(&marker, stats.to_string()).map_err(|e| DataError::io(&marker, e))?;
            log(&format!(
                "extract: {input}: {} documents, {} rejects",
                kept.len(),
                rejects.len()
            ));
            per_file.push(stats);
            bar.inc(1);
        }
        bar.finish_and_clear();
        let docs: u64 = per_file
            .iter()
            .map(|s| s["documents"].as_u64().unwrap_or(0))
            .sum();
        let rejects: u64 = per_file
            .iter()
            .map(|s| s["rejects"].as_u64().unwrap_or(0))
            .sum();
        Ok(json!({"documents": docs, "rejects": rejects, "files": per_file}))
    }

    /// MinHash signatures of this shard's extract parts (`minhash/sigs-<part>.bin`); once all
    /// exist, URL and exact dedup over the whole crawl (first seen wins, in input order), then
    /// the band, cluster and filter stages over the signatures of the remaining documents.
    fn dedup(&self, dir: &Path, shard: Shard, log: &mut dyn FnMut(&str)) -> Result<Option<Value>> {
        let n = self.cfg.inputs.len();
        let extract = self.out.join("extract");
        let work = dir.join("minhash");
        let sig = |i: usize| work.join(format!("sigs-{i:05}.bin"));
        for i in (0..n).filter(|&i| shard.owns(i) && !sig(i).exists()) {
            let docs = read_part(&extract.join(format!("{}.jsonl.zst", part(i, n))))?;
            let t = Instant::now();
            write_signatures(&work, i as u32, &docs, &self.cfg.minhash)?;
            log(&format!(
                "dedup: signatures of {} ({} documents) in {:.3} s",
                self.cfg.inputs[i],
                docs.len(),
                t.elapsed().as_secs_f64()
            ));
        }
        let sig_files: Vec<PathBuf> = (0..n).map(sig).collect();
        if !sig_files.iter().all(|f| f.exists()) {
            return Ok(None);
        }
        let parts = read_parts(&extract)?;
        if parts.len() != n {
            return Err(DataError::file(
                &extract,
                format!("{} output parts for {n} inputs", parts.len()),
            ));
        }
        for (f, docs) in sig_files.iter().zip(&parts) {
            let k = signature_count(f)?;
            if k != docs.len() as u64 {
                return Err(DataError::file(
                    f,
                    format!(
                        "signatures of {k} documents, but its extract part has {}; remove the file and rerun dedup",
                        docs.len()
                    ),
                ));
            }
        }
        let n_in: usize = parts.iter().map(Vec::len).sum();
        let placed: Vec<(DocRef, Document)> = parts
            .into_iter()
            .enumerate()
            .flat_map(|(s, docs)| {
                docs.into_iter()
                    .enumerate()
                    .map(move |(i, d)| ((s as u32, i as u32), d))
            })
            .collect();
        let all: HashSet<DocRef> = placed.iter().map(|(r, _)| *r).collect();
        let (placed, by_url) = keep_first(placed, |(_, d)| d, url_key);
        let (placed, by_text) = keep_first(placed, |(_, d)| d, text_key);
        let alive: HashSet<DocRef> = placed.iter().map(|(r, _)| *r).collect();
        let gone: HashSet<DocRef> = all.difference(&alive).copied().collect();
        let mut pairs = vec![];
        for b in 0..self.cfg.minhash.bands {
            pairs.extend(band_pairs(&work, &sig_files, b, &self.cfg.minhash, &gone)?);
        }
        let root = clusters(&work, &pairs)?;
        let ids: HashMap<DocRef, String> = placed.iter().map(|(r, d)| (*r, d.id.clone())).collect();
        let mut by_part: Vec<Vec<(DocRef, Document)>> = (0..n).map(|_| vec![]).collect();
        for (r, d) in placed {
            by_part[r.0 as usize].push((r, d));
        }
        let mut kept = 0;
        let mut near = vec![];
        for (i, docs) in by_part.into_iter().enumerate() {
            let (k, r) = filter_shard(docs, &root, &ids);
            write_jsonl(&dir.join(format!("{}.jsonl.zst", part(i, n))), &k)?;
            kept += k.len();
            near.extend(r);
        }
        let removed: Vec<Value> = by_url
            .iter()
            .map(|r| json!({"id": r.0, "dup_of": r.1, "kind": "url"}))
            .chain(
                by_text
                    .iter()
                    .map(|r| json!({"id": r.0, "dup_of": r.1, "kind": "exact"})),
            )
            .chain(
                near.iter()
                    .map(|r| json!({"id": r.0, "dup_of": r.1, "kind": "minhash"})),
            )
            .collect();
        write_jsonl(&dir.join("removed.jsonl"), &removed)?;
        log(&format!(
            "dedup: {n_in} -> {kept} documents ({} url, {} exact, {} near duplicates)",
            by_url.len(),
            by_text.len(),
            near.len()
        ));
        Ok(Some(
            json!({"documents_in": n_in, "documents": kept, "url_duplicates": by_url.len(), "exact_duplicates": by_text.len(), "near_duplicates": near.len()}),
        ))
    }

    fn labels(&self) -> Result<Option<HashMap<String, bool>>> {
        let Some(p) = &self.cfg.labels else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(p).map_err(|e| DataError::io(p, e))?;
        let header: Vec<&str> = text.lines().next().unwrap_or("").split('\t').collect();
        let col = header
            .iter()
            .position(|h| *h == "topic")
            .ok_or_else(|| DataError::file(p, "no `topic` column"))?;
        Ok(Some(
            text.lines()
                .skip(1)
                .filter_map(|l| {
                    let c: Vec<&str> = l.split('\t').collect();
                    Some((c.first()?.to_string(), *c.get(col)? == "math"))
                })
                .collect(),
        ))
    }

    fn iterate(&self, dir: &Path, log: &mut dyn FnMut(&str)) -> Result<Value> {
        let pool: Vec<Document> = read_parts(&self.out.join("dedup"))?
            .into_iter()
            .flatten()
            .collect();
        let mut seed = vec![];
        for f in &self.cfg.iterate.seed.jsonl {
            let (docs, rejects) = read_documents(Path::new(f))?;
            if let Some(r) = rejects.first() {
                return Err(DataError::file(
                    f,
                    format!("line {}: {}", r.offset, r.reason),
                ));
            }
            seed.extend(docs);
        }
        let labels = self.labels()?;
        let mut lines = vec![];
        let res = iterate(
            &pool,
            &seed,
            &self.cfg.iterate,
            dir,
            labels.as_ref(),
            &mut |s| {
                lines.push(s.clone());
            },
        )?;
        for s in &lines {
            let pr = match (s.precision, s.recall) {
                (Some(p), Some(r)) => format!(", precision {p:.3}, recall {r:.3}"),
                _ => String::new(),
            };
            log(&format!(
                "iterate {}: {} seed pages, {} collected ({} words), {} math domains (+{}){pr}",
                s.iteration,
                s.positives,
                s.collected_pages,
                s.collected_words,
                s.math_domains.len(),
                s.new_domains.len()
            ));
            self.metric("iterate", &serde_json::to_value(s).unwrap_or(Value::Null))?;
        }
        write_jsonl(&dir.join("iterations.jsonl"), &lines)?;
        let mut collected: Vec<Document> = res
            .collected
            .iter()
            .map(|&i| {
                let mut d = pool[i].clone();
                d.set("score", res.scores[i] as f64);
                d
            })
            .collect();
        // Keep crawl order in the output (deterministic, and what provenance suggests).
        let pos: HashMap<&str, usize> = pool
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.as_str(), i))
            .collect();
        collected.sort_by_key(|d| pos[d.id.as_str()]);
        write_jsonl(&dir.join(format!("{}.jsonl.zst", part(0, 1))), &collected)?;
        let last = lines.last().cloned();
        Ok(
            json!({"pool": pool.len(), "documents": collected.len(), "iterations": lines.len(), "last": last}),
        )
    }

    /// Benchmark decontamination of this shard's range of the collected pages, written as
    /// `part-<shard>-of-<count>` with its removals; once every shard's part exists, the removals
    /// in order in `removals.jsonl` and the summed stats.
    fn decontam(
        &self,
        dir: &Path,
        shard: Shard,
        log: &mut dyn FnMut(&str),
    ) -> Result<Option<Value>> {
        check_part_count(dir, shard.count)?;
        let parts = dir.join("_parts");
        let marker = |k: usize| parts.join(format!("{}.json", part(k, shard.count)));
        let removals_of = |k: usize| parts.join(format!("removals-{}.jsonl", part(k, shard.count)));
        if !marker(shard.index).exists() {
            let docs: Vec<Document> = read_parts(&self.out.join("iterate"))?
                .into_iter()
                .flatten()
                .collect();
            let range = shard.range(docs.len());
            let benches: Vec<dsmath_eval::bench::Benchmark> = self
                .cfg
                .decontam
                .benches
                .iter()
                .map(|b| {
                    dsmath_eval::bench::Benchmark::from_name(b)
                        .map_err(|e| DataError::Other(e.to_string()))
                })
                .collect::<Result<_>>()?;
            let items = benchmark_items(&benches)?;
            let d = Decontaminator::new(
                items,
                crate::decontam::DecontamConfig {
                    n: self.cfg.decontam.n,
                    min_tokens: self.cfg.decontam.min_tokens,
                },
            );
            let mut removals = vec![];
            let n_in = range.len();
            let kept: Vec<Document> = docs
                .into_iter()
                .skip(range.start)
                .take(n_in)
                .filter_map(|doc| d.clean(doc, &mut removals))
                .collect();
            let name = part(shard.index, shard.count);
            write_jsonl(&dir.join(format!("{name}.jsonl.zst")), &kept)?;
            write_jsonl(&removals_of(shard.index), &removals)?;
            let pages = removals.iter().filter(|r| r.segment.is_none()).count();
            let stats = json!({"documents_in": n_in, "documents": kept.len(), "segments_removed": removals.len() - pages, "pages_dropped": pages, "benchmark_texts": d.num_items()});
            let m = marker(shard.index);
            std::fs::write(&m, stats.to_string()).map_err(|e| DataError::io(&m, e))?;
            if shard != Shard::ALL {
                log(&format!(
                    "decontam: shard {name}: {n_in} -> {} documents",
                    kept.len()
                ));
            }
        }
        if !(0..shard.count).all(|k| marker(k).exists()) {
            return Ok(None);
        }
        let mut removals: Vec<crate::decontam::Removal> = vec![];
        let get = |k: &str, v: &Value| v[k].as_u64().unwrap_or(0);
        let (mut n_in, mut kept, mut segments, mut pages, mut texts) = (0, 0, 0, 0, 0);
        for k in 0..shard.count {
            let m = marker(k);
            let v: Value = serde_json::from_str(
                &std::fs::read_to_string(&m).map_err(|e| DataError::io(&m, e))?,
            )
            .map_err(|e| DataError::file(&m, e.to_string()))?;
            n_in += get("documents_in", &v);
            kept += get("documents", &v);
            segments += get("segments_removed", &v);
            pages += get("pages_dropped", &v);
            texts = get("benchmark_texts", &v);
            removals.extend(crate::doc::read_jsonl::<crate::decontam::Removal>(
                &removals_of(k),
            )?);
        }
        write_jsonl(&dir.join("removals.jsonl"), &removals)?;
        log(&format!(
            "decontam: {texts} benchmark texts; {segments} segments removed, {pages} pages dropped; {n_in} -> {kept} documents"
        ));
        Ok(Some(
            json!({"documents_in": n_in, "documents": kept, "segments_removed": segments, "pages_dropped": pages, "benchmark_texts": texts}),
        ))
    }

    /// The tokenizer (the configured one, or a byte-level BPE trained on the corpus and the extra
    /// texts, the same in every shard process), then this shard's range of the documents as a
    /// token shard under `_parts/`; once every shard's exists, they are concatenated into
    /// `math.bin/.idx/.json` (one process writes `math` directly), and the extra texts follow.
    fn tokenize(
        &self,
        dir: &Path,
        shard: Shard,
        log: &mut dyn FnMut(&str),
    ) -> Result<Option<Value>> {
        let docs: Vec<Document> = read_parts(&self.out.join("decontam"))?
            .into_iter()
            .flatten()
            .collect();
        let extra: Vec<(&ExtraText, Vec<String>)> = self
            .cfg
            .tokenize
            .extra
            .iter()
            .map(|e| Ok((e, read_texts(Path::new(&e.path))?)))
            .collect::<Result<_>>()?;
        let tok_path = match &self.cfg.tokenize.tokenizer {
            Some(p) => PathBuf::from(p),
            None => {
                let p = dir.join("tokenizer.json");
                if !p.exists() {
                    let texts = docs
                        .iter()
                        .map(|d| d.text.as_str())
                        .chain(extra.iter().flat_map(|(_, t)| t.iter().map(String::as_str)));
                    let tok = crate::shards::train_bpe(texts, self.cfg.tokenize.vocab_size)?;
                    let tmp = dir.join(format!("tokenizer.json.tmp-{}", std::process::id()));
                    tok.save(&tmp, false)
                        .map_err(|e| DataError::file(&tmp, e.to_string()))?;
                    std::fs::rename(&tmp, &p).map_err(|e| DataError::io(&p, e))?;
                }
                p
            }
        };
        let math = dir.join("math");
        let meta = if shard == Shard::ALL {
            crate::shards::write_shard(
                &math,
                docs.iter().map(|d| d.text.as_str()),
                &tok_path,
                "math-corpus",
            )?
        } else {
            let stem = |k: usize| {
                dir.join("_parts")
                    .join(format!("math-{}", part(k, shard.count)))
            };
            let done = |k: usize| PathBuf::from(format!("{}.json", stem(k).display())).exists();
            if !done(shard.index) {
                let m = crate::shards::write_shard(
                    &stem(shard.index),
                    docs[shard.range(docs.len())]
                        .iter()
                        .map(|d| d.text.as_str()),
                    &tok_path,
                    "math-corpus",
                )?;
                log(&format!(
                    "tokenize: shard {}: {} documents -> {} tokens",
                    part(shard.index, shard.count),
                    m.documents,
                    m.tokens
                ));
            }
            if !(0..shard.count).all(done) {
                return Ok(None);
            }
            let stems: Vec<PathBuf> = (0..shard.count).map(stem).collect();
            crate::shards::concat_shards(&math, &stems)?
        };
        log(&format!(
            "tokenize: {} documents -> {} tokens ({})",
            meta.documents,
            meta.tokens,
            tok_path.display()
        ));
        let mut shards = serde_json::Map::new();
        for (e, texts) in extra.iter().filter(|(e, _)| e.shard) {
            let m = crate::shards::write_shard(
                &dir.join(&e.name),
                texts.iter().map(String::as_str),
                &tok_path,
                &e.name,
            )?;
            log(&format!(
                "tokenize: {}: {} documents -> {} tokens",
                e.path, m.documents, m.tokens
            ));
            shards.insert(
                e.name.clone(),
                json!({"documents": m.documents, "tokens": m.tokens}),
            );
        }
        Ok(Some(
            json!({"documents": meta.documents, "tokens": meta.tokens, "vocab_size": meta.vocab_size, "tokenizer": tok_path, "extra": shards}),
        ))
    }

    /// `summary.json`, `report.md` and `iterations.svg` from the stages' recorded stats.
    pub fn report(&self) -> Result<Value> {
        let mut summary = json!({});
        for s in STAGES {
            summary[*s] = self.stage_stats(s).unwrap_or(Value::Null);
        }
        let p = self.out.join("summary.json");
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&summary).unwrap_or_default(),
        )
        .map_err(|e| DataError::io(&p, e))?;
        let iters: Vec<crate::iterate::IterationStats> =
            crate::doc::read_jsonl(&self.out.join("iterate").join("iterations.jsonl"))
                .unwrap_or_default();
        let mut md =
            String::from("# Corpus run\n\n| stage | documents | notes |\n|---|---:|---|\n");
        let g = |s: &str, k: &str| summary[s][k].as_u64().unwrap_or(0);
        md.push_str(&format!(
            "| extract | {} | {} rejects |\n",
            g("extract", "documents"),
            g("extract", "rejects")
        ));
        md.push_str(&format!(
            "| dedup | {} | {} url, {} exact, {} near (MinHash {}x{}) duplicates |\n",
            g("dedup", "documents"),
            g("dedup", "url_duplicates"),
            g("dedup", "exact_duplicates"),
            g("dedup", "near_duplicates"),
            self.cfg.minhash.bands,
            self.cfg.minhash.rows
        ));
        md.push_str(&format!(
            "| iterate (recall) | {} | of {} pages, {} iterations |\n",
            g("iterate", "documents"),
            g("iterate", "pool"),
            g("iterate", "iterations")
        ));
        md.push_str(&format!(
            "| decontam | {} | {} segments removed, {} pages dropped |\n",
            g("decontam", "documents"),
            g("decontam", "segments_removed"),
            g("decontam", "pages_dropped")
        ));
        md.push_str(&format!(
            "| tokenize | {} | {} tokens, vocab {} |\n",
            g("tokenize", "documents"),
            g("tokenize", "tokens"),
            g("tokenize", "vocab_size")
        ));
        if !iters.is_empty() {
            md.push_str("\n## Iterations\n\n| iteration | seed pages | collected | words | math domains | new domains | new seed pages | overlap with previous | precision | recall |\n|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n");
            let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
            for s in &iters {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    s.iteration,
                    s.positives,
                    s.collected_pages,
                    s.collected_words,
                    s.math_domains.len(),
                    s.new_domains.join(", "),
                    s.new_seed_pages,
                    f(s.overlap_with_previous),
                    f(s.precision),
                    f(s.recall)
                ));
            }
            md.push_str("\n![iterations](iterations.svg)\n");
            plot_iterations(&self.out.join("iterations.svg"), &iters)?;
        }
        let p = self.out.join("report.md");
        std::fs::write(&p, md).map_err(|e| DataError::io(&p, e))?;
        Ok(summary)
    }
}

/// Collected pages (and precision / recall when labelled) per iteration.
fn plot_iterations(path: &Path, iters: &[crate::iterate::IterationStats]) -> Result<()> {
    use plotters::prelude::*;
    let e = |x: &dyn std::fmt::Display| DataError::file(path, x.to_string());
    let root = SVGBackend::new(path, (640, 360)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let n = iters.len() as f64;
    let max_pages = iters.iter().map(|s| s.collected_pages).max().unwrap_or(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("corpus iterations", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .right_y_label_area_size(40)
        .build_cartesian_2d(0.5..n + 0.5, 0.0..max_pages)
        .map_err(|x| e(&x))?
        .set_secondary_coord(0.5..n + 0.5, 0.0..1.0);
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("collected pages")
        .x_labels(iters.len())
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .configure_secondary_axes()
        .y_desc("precision / recall")
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(LineSeries::new(
            iters
                .iter()
                .map(|s| (s.iteration as f64, s.collected_pages as f64)),
            BLUE.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label("collected pages")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
    if iters.iter().all(|s| s.precision.is_some()) {
        chart
            .draw_secondary_series(LineSeries::new(
                iters
                    .iter()
                    .map(|s| (s.iteration as f64, s.precision.unwrap_or(0.0))),
                GREEN.stroke_width(2),
            ))
            .map_err(|x| e(&x))?
            .label("precision")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], GREEN));
        chart
            .draw_secondary_series(LineSeries::new(
                iters
                    .iter()
                    .map(|s| (s.iteration as f64, s.recall.unwrap_or(0.0))),
                RED.stroke_width(2),
            ))
            .map_err(|x| e(&x))?
            .label("recall")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
