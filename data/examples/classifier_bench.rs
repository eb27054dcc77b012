//! Train and test dsmath's classifier (the `fasttext` crate) on fastText-format files and print
//! accuracy and speed as JSON, for scripts/compare_fasttext.py.
//! Usage: classifier_bench TRAIN TEST DIM EPOCH LR BUCKET THREADS [SAVE.bin]

use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

use dsmath_data::classify::{Classifier, ClassifierConfig, MATH};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let cfg = ClassifierConfig {
        dim: a[3].parse().unwrap(),
        epoch: a[4].parse().unwrap(),
        lr: a[5].parse().unwrap(),
        bucket: a[6].parse().unwrap(),
        threads: a[7].parse().unwrap(),
        ..Default::default()
    };
    let words: usize = std::fs::read_to_string(&a[1])
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().count() - 1)
        .sum();
    let t = Instant::now();
    let clf = Classifier::train_file(Path::new(&a[1]), &cfg).unwrap();
    let train_s = t.elapsed().as_secs_f64();
    let test: Vec<(bool, String)> = std::io::BufReader::new(std::fs::File::open(&a[2]).unwrap())
        .lines()
        .map(|l| {
            let l = l.unwrap();
            let (label, text) = l.split_once(' ').unwrap();
            (label == MATH, text.to_string())
        })
        .collect();
    let t = Instant::now();
    let scores: Vec<f32> = test.iter().map(|(_, x)| clf.score_line(x)).collect();
    let predict_s = t.elapsed().as_secs_f64();
    let right = scores
        .iter()
        .zip(&test)
        .filter(|(s, (m, _))| (**s >= 0.5) == *m)
        .count();
    if let Some(p) = a.get(8) {
        clf.save(Path::new(p)).unwrap();
    }
    println!(
        "{}",
        serde_json::json!({
            "accuracy": right as f64 / test.len() as f64,
            "train_seconds": train_s,
            "train_words_per_s": (words * cfg.epoch as usize) as f64 / train_s,
            "predict_docs_per_s": test.len() as f64 / predict_s,
            "scores": scores,
        })
    );
}
