//! Training curves from `metrics.jsonl` (so a finished run can be re-plotted): `loss.svg`
//! (training and held-out loss) and `lr.svg`.

use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

use crate::error::TrainError;

fn read(out: &Path) -> Vec<Value> {
    read_jsonl(&out.join("metrics.jsonl"))
}

/// The JSON objects of a JSONL log (`metrics.jsonl`, `iterations.jsonl`); unreadable lines and a
/// missing file give nothing.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Mean of `key` over `rows`.
pub fn mean_of(rows: &[Value], key: &str) -> f64 {
    rows.iter().filter_map(|v| v[key].as_f64()).sum::<f64>() / rows.len().max(1) as f64
}

/// Mean of `key` over the first and over the last quarter of `rows` (at least one row each).
pub fn quarter_means(rows: &[Value], key: &str) -> (f64, f64) {
    let q = (rows.len() / 4).max(1);
    (
        mean_of(&rows[..q.min(rows.len())], key),
        mean_of(&rows[rows.len().saturating_sub(q)..], key),
    )
}

/// A line chart of named series of (x, y) points.
pub fn line_chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[(&str, Vec<(f64, f64)>, RGBColor)],
) -> Result<(), TrainError> {
    let e = |x: &dyn std::fmt::Display| TrainError::Io(path.into(), x.to_string());
    let pts: Vec<&(f64, f64)> = series
        .iter()
        .flat_map(|s| s.1.iter())
        .filter(|p| p.1.is_finite())
        .collect();
    if pts.is_empty() {
        return Ok(());
    }
    let (x0, x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let (y0, y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    let pad = ((y1 - y0) * 0.05).max(1e-12);
    let root = SVGBackend::new(path, (720, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(y_desc)
        .draw()
        .map_err(|x| e(&x))?;
    for (name, pts, color) in series {
        let c = *color;
        chart
            .draw_series(LineSeries::new(
                pts.iter().copied().filter(|p| p.1.is_finite()),
                c.stroke_width(2),
            ))
            .map_err(|x| e(&x))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], c));
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

/// `loss.svg` and `lr.svg` next to the checkpoints.
pub fn training_curves(out: &Path) -> Result<(), TrainError> {
    let m = read(out);
    let get = |k: &str| -> Vec<(f64, f64)> {
        m.iter()
            .filter_map(|v| Some((v["step"].as_f64()?, v.get(k)?.as_f64()?)))
            .collect()
    };
    line_chart(
        &out.join("loss.svg"),
        "loss",
        "loss",
        &[
            ("train", get("loss"), RGBColor(40, 90, 200)),
            ("held-out", get("heldout_loss"), RGBColor(220, 60, 40)),
        ],
    )?;
    line_chart(
        &out.join("lr.svg"),
        "learning rate",
        "lr",
        &[("lr", get("lr"), RGBColor(40, 150, 80))],
    )
}
