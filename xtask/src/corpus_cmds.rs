//! `cargo xtask corpus <stage>`: the corpus pipeline (DeepSeekMath §2.1) over a run directory.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use dsmath_data::pipeline::{CorpusConfig, Run, Shard};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Stage {
    /// WARC / WET / JSONL -> documents (math-aware HTML to text, language, rejects)
    Extract,
    /// URL, exact and MinHash-LSH near-duplicate removal
    Dedup,
    /// fastText classifier -> recall -> math domains -> seed, repeated
    Iterate,
    /// Drop segments matching benchmark 10-grams
    Decontam,
    /// Train / apply a tokenizer, write token shards
    Tokenize,
    /// Every stage in order (finished ones are skipped), then the report
    All,
    /// Rewrite summary.json, report.md and iterations.svg
    Report,
}

#[derive(Args)]
pub struct CorpusArgs {
    #[arg(value_enum)]
    stage: Stage,
    /// Corpus config (TOML, `[corpus]` section)
    #[arg(long, default_value = "configs/corpus-mini.toml")]
    config: PathBuf,
    /// Run directory (resumes if it exists)
    #[arg(long, default_value = "runs/corpus")]
    out: PathBuf,
    /// This process's share of the stage (extract, dedup, decontam, tokenize), shard < num-shards;
    /// shard processes share --out, and the last to finish merges their outputs into exactly the
    /// one-process result
    #[arg(long, requires = "num_shards")]
    shard: Option<usize>,
    #[arg(long, requires = "shard")]
    num_shards: Option<usize>,
}

pub fn corpus(args: &CorpusArgs) -> anyhow::Result<()> {
    let cfg = CorpusConfig::from_file(&args.config)?;
    let run = Run::open(&args.out, cfg)
        .with_context(|| format!("run directory {}", args.out.display()))?;
    let mut log = |line: &str| eprintln!("{line}");
    if let (Some(shard), Some(of)) = (args.shard, args.num_shards) {
        if !matches!(
            args.stage,
            Stage::Extract | Stage::Dedup | Stage::Decontam | Stage::Tokenize
        ) {
            anyhow::bail!(
                "--shard applies to extract, dedup, decontam and tokenize (not {:?}: run it in one process)",
                args.stage
            );
        }
        let name = format!("{:?}", args.stage).to_lowercase();
        let complete = run.stage_shard(&name, Shard::new(shard, of)?, &mut log)?;
        println!("{name} shard {shard}/{of} done; all shards complete: {complete}");
        return Ok(());
    }
    match args.stage {
        Stage::All => run.all(&mut log)?,
        Stage::Report => {
            run.report()?;
        }
        s => {
            let name = format!("{s:?}").to_lowercase();
            run.stage(&name, &mut log)?;
        }
    }
    println!("corpus run: {}", args.out.display());
    if args.out.join("report.md").exists() {
        println!("report: {}", args.out.join("report.md").display());
    }
    Ok(())
}
