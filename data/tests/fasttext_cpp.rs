//! A model trained by the C++ fastText (PyPI fasttext-numpy2, scripts/compare_fasttext.py) loads
//! in dsmath's classifier and gives fastText's own probabilities.

use std::path::Path;

use dsmath_data::classify::Classifier;

#[test]
fn cpp_trained_model_loads_and_predicts_like_fasttext() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let clf = Classifier::load(&dir.join("fasttext_cpp_small.bin"), 100_000).unwrap();
    let expect: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("fasttext_cpp_small.json")).unwrap(),
    )
    .unwrap();
    let rows = expect["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), 40);
    let mut worst = 0f64;
    for r in rows {
        let p = clf.score_line(r["text"].as_str().unwrap()) as f64;
        worst = worst.max((p - r["math"].as_f64().unwrap()).abs());
    }
    assert!(worst < 1e-4, "max |p_rust - p_fasttext| = {worst}");
    // A mixture of both labels, so the comparison is not vacuous.
    let positives = rows
        .iter()
        .filter(|r| r["math"].as_f64().unwrap() >= 0.5)
        .count();
    assert!(positives > 3 && positives < 37, "{positives}");
}
