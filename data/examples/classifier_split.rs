//! Writes the mini-crawl classifier split (80/20 by URL hash, manual-level labels) as fastText
//! files `<dir>/train.txt` and `<dir>/test.txt`, for scripts/compare_fasttext.py.
//! Usage: cargo run --release -p dsmath-data --example classifier_split -- DIR

use std::collections::HashMap;
use std::path::Path;

fn main() {
    let out = std::env::args()
        .nth(1)
        .expect("usage: classifier_split DIR");
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let (docs, _, _) =
        dsmath_data::extract::extract_file(&web.join("mini-crawl.warc.gz"), "mini-crawl").unwrap();
    let topic: HashMap<String, String> = std::fs::read_to_string(web.join("mini-crawl.labels.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0].to_string(), c[3].to_string())
        })
        .collect();
    let (mut train, mut test) = (vec![], vec![]);
    for d in &docs {
        let ex = (topic[&d.url] == "math", d.text.as_str());
        if dsmath_data::classify::in_test_split(&d.url) {
            test.push(ex)
        } else {
            train.push(ex)
        }
    }
    std::fs::create_dir_all(&out).unwrap();
    dsmath_data::classify::write_training_file(&Path::new(&out).join("train.txt"), &train, 2048)
        .unwrap();
    dsmath_data::classify::write_training_file(&Path::new(&out).join("test.txt"), &test, 2048)
        .unwrap();
    println!("{} train, {} test -> {out}", train.len(), test.len());
}
