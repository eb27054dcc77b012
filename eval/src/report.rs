//! Evaluation report: per-benchmark accuracy with per-level / per-subject breakdowns, written as
//! `samples.jsonl` (every completion and verdict), `report.json`, `report.md` and a bar chart
//! `accuracy.svg` (plotters).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::run::{BenchRun, Mode, percent};

/// Accuracy over a group of problems.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    pub name: String,
    pub n: usize,
    pub correct: usize,
    pub accuracy: f64,
}

/// One benchmark's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub bench: &'static str,
    pub prompt: &'static str,
    pub mode: String,
    pub problems: usize,
    pub samples: usize,
    /// Greedy accuracy, maj@k accuracy, or pass@k, in percent.
    pub accuracy: f64,
    /// Mean accuracy of single samples (pass@1), in percent.
    pub pass_at_1: f64,
    /// Share of completions with no extractable answer, in percent.
    pub no_answer: f64,
    /// Programs run, and how many did not end with exit status 0.
    pub executions: usize,
    pub failed_executions: usize,
    pub by_level: Vec<Group>,
    pub by_subject: Vec<Group>,
}

fn groups(
    run: &BenchRun,
    key: impl Fn(&crate::run::ProblemRecord) -> Option<String>,
) -> Vec<Group> {
    let mut m: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for p in &run.problems {
        if let Some(k) = key(p) {
            let e = m.entry(k).or_default();
            e.0 += 1;
            e.1 += p.correct as usize;
        }
    }
    m.into_iter()
        .map(|(name, (n, c))| Group {
            name,
            n,
            correct: c,
            accuracy: percent(c, n),
        })
        .collect()
}

pub fn summarize(run: &BenchRun) -> Summary {
    let samples = run.samples.len();
    let correct = run.samples.iter().filter(|s| s.correct).count();
    let executions: usize = run.samples.iter().map(|s| s.executions.len()).sum();
    let failed = run
        .samples
        .iter()
        .flat_map(|s| &s.executions)
        .filter(|e| e.outcome != crate::sandbox::Outcome::Ok)
        .count();
    Summary {
        bench: run.bench,
        prompt: run.prompt.name(),
        mode: run.mode.name(),
        problems: run.problems.len(),
        samples,
        accuracy: run.accuracy(),
        pass_at_1: percent(correct, samples),
        no_answer: percent(
            run.samples
                .iter()
                .filter(|s| s.extracted.is_empty())
                .count(),
            samples,
        ),
        executions,
        failed_executions: failed,
        by_level: groups(run, |p| p.level.clone()),
        by_subject: groups(run, |p| p.subject.clone()),
    }
}

/// The metric's column title: `greedy`, `maj@k`, `pass@k`.
fn metric_name(mode: Mode) -> String {
    match mode {
        Mode::Greedy => "greedy acc".into(),
        m => m.name(),
    }
}

/// Markdown: one overview table, then breakdowns per benchmark.
pub fn markdown(title: &str, runs: &[BenchRun], notes: &[String]) -> String {
    let mut md = format!("# {title}\n\n");
    for n in notes {
        md.push_str(&format!("- {n}\n"));
    }
    if !notes.is_empty() {
        md.push('\n');
    }
    md.push_str("| benchmark | prompt | metric | accuracy (%) | pass@1 (%) | problems | samples | no answer (%) | programs (failed) |\n");
    md.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    for r in runs {
        let s = summarize(r);
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {} | {} | {:.1} | {} ({}) |\n",
            s.bench,
            s.prompt,
            metric_name(r.mode),
            s.accuracy,
            s.pass_at_1,
            s.problems,
            s.samples,
            s.no_answer,
            s.executions,
            s.failed_executions
        ));
    }
    md.push_str("\n![accuracy](accuracy.svg)\n");
    for r in runs {
        let s = summarize(r);
        for (what, gs) in [("level", &s.by_level), ("subject", &s.by_subject)] {
            if gs.is_empty() {
                continue;
            }
            md.push_str(&format!("\n## {} by {what}\n\n| {what} | problems | correct | accuracy (%) |\n|---|---:|---:|---:|\n", s.bench));
            for g in gs {
                md.push_str(&format!(
                    "| {} | {} | {} | {:.1} |\n",
                    g.name, g.n, g.correct, g.accuracy
                ));
            }
        }
    }
    md
}

/// Horizontal-label bar chart of accuracy per benchmark.
pub fn bar_chart(path: &Path, title: &str, bars: &[(String, f64)]) -> Result<(), String> {
    let width = (160 + 90 * bars.len() as u32).max(480);
    let root = SVGBackend::new(path, (width, 400)).into_drawing_area();
    let e = |x: &dyn std::fmt::Display| format!("{}: {x}", path.display());
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((0..bars.len()).into_segmented(), 0.0..100.0)
        .map_err(|x| e(&x))?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("accuracy (%)")
        .x_labels(bars.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, acc))| {
            let mut r = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), *acc),
                ],
                RGBColor(70, 110, 190).filled(),
            );
            r.set_margin(0, 0, 12, 12);
            r
        }))
        .map_err(|x| e(&x))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, acc))| {
            Text::new(
                format!("{acc:.1}"),
                (SegmentValue::CenterOf(i), (acc + 3.0).min(97.0)),
                ("sans-serif", 14).into_font(),
            )
        }))
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Write `samples.jsonl`, `report.json`, `report.md`, `accuracy.svg` into `dir`.
pub fn write(
    dir: &Path,
    title: &str,
    runs: &[BenchRun],
    notes: &[String],
    meta: serde_json::Value,
) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let sp = dir.join("samples.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&sp).map_err(|e| io(&sp, e))?);
    for r in runs {
        for s in &r.samples {
            serde_json::to_writer(&mut f, s).map_err(|e| format!("{}: {e}", sp.display()))?;
            f.write_all(b"\n").map_err(|e| io(&sp, e))?;
        }
    }
    f.flush().map_err(|e| io(&sp, e))?;
    let summaries: Vec<Summary> = runs.iter().map(summarize).collect();
    let json = serde_json::json!({"meta": meta, "notes": notes, "results": summaries});
    let jp = dir.join("report.json");
    std::fs::write(&jp, serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| io(&jp, e))?;
    let mp = dir.join("report.md");
    std::fs::write(&mp, markdown(title, runs, notes)).map_err(|e| io(&mp, e))?;
    let bars: Vec<(String, f64)> = summaries
        .iter()
        .map(|s| (format!("{} {}", s.bench, s.mode), s.accuracy))
        .collect();
    bar_chart(&dir.join("accuracy.svg"), title, &bars)
}
