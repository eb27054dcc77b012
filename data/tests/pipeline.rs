//! The corpus run end to end on the shipped crawl: every stage's artefacts, resume after an
//! interruption, the report's numbers equal the stages' outputs, config errors name the key.

use std::path::{Path, PathBuf};

use dsmath_data::doc::read_documents;
use dsmath_data::pipeline::{CorpusConfig, Run, STAGES, Shard};
use dsmath_data::shards::TokenShard;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn config() -> CorpusConfig {
    let mut cfg = CorpusConfig::from_file(&root().join("configs/corpus-mini.toml")).unwrap();
    let abs = |p: &str| root().join(p).display().to_string();
    cfg.inputs = cfg.inputs.iter().map(|p| abs(p)).collect();
    cfg.labels = cfg.labels.as_deref().map(abs);
    cfg.iterate.domains.annotations = cfg.iterate.domains.annotations.as_deref().map(abs);
    cfg.iterate.iterations = 3;
    cfg.tokenize.vocab_size = 1024;
    cfg
}

#[test]
fn corpus_run_resumes_and_reports_what_the_stages_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut lines = vec![];
    let run = Run::open(&out, config()).unwrap();
    run.stage("extract", &mut |l| lines.push(l.to_string()))
        .unwrap();
    run.stage("dedup", &mut |l| lines.push(l.to_string()))
        .unwrap();
    run.stage("iterate", &mut |l| lines.push(l.to_string()))
        .unwrap();
    // Interrupt: pretend iteration 3 and the stage's end never happened.
    std::fs::remove_dir_all(out.join("iterate/iter-3")).unwrap();
    std::fs::remove_file(out.join("iterate/_done")).unwrap();
    let first_iterations: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("iterate "))
        .cloned()
        .collect();
    let run = Run::open(&out, config()).unwrap();
    let mut again = vec![];
    run.all(&mut |l| again.push(l.to_string())).unwrap();
    assert!(
        again.iter().any(|l| l == "extract: already done, skipped")
            && again.iter().any(|l| l == "dedup: already done, skipped")
    );
    let second_iterations: Vec<String> = again
        .iter()
        .filter(|l| l.starts_with("iterate "))
        .cloned()
        .collect();
    assert_eq!(
        first_iterations, second_iterations,
        "resumed iterations reproduce the interrupted run"
    );
    assert!(out.join("DONE").exists());

    // Numbers in the summary are the ones on disk.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let (corpus, rejects) =
        read_documents(&out.join("decontam/part-00000-of-00001.jsonl.zst")).unwrap();
    assert!(rejects.is_empty());
    assert_eq!(
        summary["decontam"]["documents"].as_u64(),
        Some(corpus.len() as u64)
    );
    assert!(corpus.len() > 500, "{}", corpus.len());
    assert!(corpus.iter().all(|d| d.get_f64("score").unwrap() >= 0.5
        && !d.url.is_empty()
        && d.provenance.offset > 0));
    let shard = TokenShard::open(&out.join("tokenize/math")).unwrap();
    assert_eq!(summary["tokenize"]["tokens"].as_u64(), Some(shard.len()));
    assert_eq!(shard.num_documents(), corpus.len());
    let iters = summary["iterate"]["last"].clone();
    assert!(
        iters["precision"].as_f64().unwrap() > 0.9 && iters["recall"].as_f64().unwrap() > 0.8,
        "{iters}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains(&format!("| decontam | {} |", corpus.len())),
        "{report}"
    );
    assert!(
        std::fs::read_to_string(out.join("iterations.svg"))
            .unwrap()
            .contains("<svg")
    );
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(
        metrics
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["stage"].is_string())
    );

    // A different config on the same directory is refused.
    let mut other = config();
    other.min_chars = 1;
    assert!(
        Run::open(&out, other)
            .err()
            .unwrap()
            .to_string()
            .contains("different config")
    );
}

/// A stage's outputs as bytes (the run directory's path written as `<run>`), the documents of
/// its parts concatenated in order.
fn outputs(run: &Path, stage: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(run.join(stage))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut out = vec![];
    let mut parts = vec![];
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("part-") {
            // Parts differ in number between runs; their documents in order must not.
            parts.extend(read_documents(&f).unwrap().0);
        } else if name.ends_with(".bin") || name.ends_with(".idx") {
            out.push((name, std::fs::read(&f).unwrap()));
        } else {
            let text = std::fs::read_to_string(&f).unwrap();
            let text = text.replace(&run.display().to_string(), "<run>");
            out.push((name, text.into_bytes()));
        }
    }
    out.push(("parts".into(), serde_json::to_vec(&parts).unwrap()));
    out
}

#[test]
fn every_sharded_stage_gives_the_one_process_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.iterate.iterations = 1;
    let one = dir.path().join("one");
    let run = Run::open(&one, cfg.clone()).unwrap();
    for s in STAGES {
        run.stage(s, &mut |_| {}).unwrap();
    }
    // Shard processes, each opening the run directory itself, finishing in reverse order.
    let many = dir.path().join("many");
    for stage in STAGES {
        if *stage == "iterate" {
            let err = Run::open(&many, cfg.clone())
                .unwrap()
                .stage_shard(stage, Shard::new(0, 2).unwrap(), &mut |_| {})
                .unwrap_err();
            assert!(err.to_string().contains("one process"), "{err}");
            Run::open(&many, cfg.clone())
                .unwrap()
                .stage(stage, &mut |_| {})
                .unwrap();
            continue;
        }
        let count = if *stage == "extract" || *stage == "dedup" {
            2
        } else {
            3
        };
        for k in (0..count).rev() {
            let complete = Run::open(&many, cfg.clone())
                .unwrap()
                .stage_shard(stage, Shard::new(k, count).unwrap(), &mut |_| {})
                .unwrap();
            assert_eq!(complete, k == 0, "{stage} shard {k}");
        }
        let (a, b) = (outputs(&one, stage), outputs(&many, stage));
        assert_eq!(
            a.iter().map(|x| &x.0).collect::<Vec<_>>(),
            b.iter().map(|x| &x.0).collect::<Vec<_>>(),
            "{stage}"
        );
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(
                x == y,
                "{stage}/{name} differs between 1 and {count} shards"
            );
        }
    }
    let summary = |d: &Path| {
        let s = Run::open(d, cfg.clone()).unwrap().report().unwrap();
        s.to_string().replace(&d.display().to_string(), "<run>")
    };
    assert_eq!(summary(&one), summary(&many));
    let shard = TokenShard::open(&many.join("tokenize/math")).unwrap();
    assert!(shard.num_documents() > 100, "{}", shard.num_documents());
    // Another shard count on a started stage is refused rather than mixed.
    let skipped = Run::open(&many, cfg.clone()).unwrap().stage_shard(
        "extract",
        Shard::new(0, 2).unwrap(),
        &mut |_| {},
    );
    assert!(skipped.unwrap(), "a finished stage is skipped");
    std::fs::remove_file(many.join("decontam/_done")).unwrap();
    let err = Run::open(&many, cfg.clone())
        .unwrap()
        .stage_shard("decontam", Shard::new(0, 2).unwrap(), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("another --num-shards"), "{err}");
    // A signature file that does not match its extract part (another version's, say) is named.
    std::fs::remove_file(many.join("dedup/_done")).unwrap();
    dsmath_data::dedup::write_signatures(
        &many.join("dedup/minhash"),
        0,
        &[dsmath_data::Document::new("x", "", "one short text")],
        &cfg.minhash,
    )
    .unwrap();
    let err = Run::open(&many, cfg)
        .unwrap()
        .stage("dedup", &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sigs-00000.bin") && err.contains("signatures of 1 documents"),
        "{err}"
    );
}

#[test]
fn unknown_config_keys_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "[corpus]\ninputs = [\"x.warc.gz\"]\n[corpus.iterate.classifier]\ndims = 3\n",
    )
    .unwrap();
    let err = CorpusConfig::from_file(&p).unwrap_err().to_string();
    assert!(err.contains("dims") && err.contains("c.toml"), "{err}");
}
