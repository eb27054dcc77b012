//! BPE training, token shards (format, validation, bad files) and the mixture sampler's weights
//! and exact resume, on real benchmark text.

use std::path::Path;

use dsmath_data::mixture::{Mixture, Source};
use dsmath_data::shards::{EOS, TokenShard, train_bpe, write_shard};

fn gsm8k_texts() -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval/data/gsm8k/train.jsonl");
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .take(2000)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}\n{}",
                v["question"].as_str().unwrap(),
                v["answer"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn bpe_shards_round_trip_and_mixture_resumes_exactly() {
    let texts = gsm8k_texts();
    let dir = tempfile::tempdir().unwrap();
    let tok = train_bpe(texts.iter().map(String::as_str), 1000).unwrap();
    assert_eq!(tok.token_to_id(EOS), Some(0));
    assert!(tok.get_vocab_size(true) <= 1000 && tok.get_vocab_size(true) > 500);
    let tp = dir.path().join("tokenizer.json");
    tok.save(&tp, false).unwrap();
    // Two sources: questions+answers split in halves.
    let a = write_shard(
        &dir.path().join("a"),
        texts[..1000].iter().map(String::as_str),
        &tp,
        "gsm8k-a",
    )
    .unwrap();
    write_shard(
        &dir.path().join("b"),
        texts[1000..].iter().map(String::as_str),
        &tp,
        "gsm8k-b",
    )
    .unwrap();
    assert_eq!(a.documents, 1000);
    let sa = TokenShard::open(&dir.path().join("a")).unwrap();
    sa.check_ids().unwrap();
    let doc3 = sa.document(3);
    assert_eq!(*doc3.last().unwrap(), 0, "each document ends with EOS");
    assert_eq!(
        tok.decode(&doc3[..doc3.len() - 1], false).unwrap(),
        texts[3],
        "lossless byte-level round trip"
    );

    let open = |w: [f64; 2]| {
        let s = ["a", "b"]
            .iter()
            .zip(w)
            .map(|(n, w)| Source {
                name: n.to_string(),
                shard: TokenShard::open(&dir.path().join(n)).unwrap(),
                weight: w,
            })
            .collect();
        Mixture::new(s, 7).unwrap()
    };
    let mut m = open([0.8, 0.2]);
    let draws: Vec<(Vec<u32>, usize)> = (0..500).map(|_| m.next_sequence(64)).collect();
    let share_a = draws.iter().filter(|d| d.1 == 0).count() as f64 / 500.0;
    assert!((share_a - 0.8).abs() < 0.05, "{share_a}");
    // Save the cursor after 200 draws, continue in a fresh sampler: identical stream.
    let mut m1 = open([0.8, 0.2]);
    for _ in 0..200 {
        m1.next_sequence(64);
    }
    let saved = serde_json::to_string(m1.cursor()).unwrap();
    let mut m2 = open([0.8, 0.2]);
    m2.restore(serde_json::from_str(&saved).unwrap()).unwrap();
    let rest: Vec<(Vec<u32>, usize)> = (0..300).map(|_| m2.next_sequence(64)).collect();
    assert_eq!(rest, draws[200..].to_vec());
    // Sequences are contiguous slices of their source.
    assert_eq!(
        draws[0].0,
        TokenShard::open(&dir.path().join(["a", "b"][draws[0].1]))
            .unwrap()
            .tokens(0, 64)
    );
}

#[test]
fn damaged_shards_are_refused_with_the_file_named() {
    let texts = gsm8k_texts();
    let dir = tempfile::tempdir().unwrap();
    let tok = train_bpe(texts.iter().map(String::as_str).take(300), 600).unwrap();
    let tp = dir.path().join("tokenizer.json");
    tok.save(&tp, false).unwrap();
    write_shard(
        &dir.path().join("s"),
        texts[..50].iter().map(String::as_str),
        &tp,
        "x",
    )
    .unwrap();
    let bin = dir.path().join("s.bin");
    let bytes = std::fs::read(&bin).unwrap();
    std::fs::write(&bin, &bytes[..bytes.len() - 6]).unwrap();
    let err = TokenShard::open(&dir.path().join("s"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("s.bin"), "{err}");
    let mut bad = bytes.clone();
    bad[0..4].copy_from_slice(&99999u32.to_le_bytes());
    std::fs::write(&bin, &bad).unwrap();
    let err = TokenShard::open(&dir.path().join("s"))
        .unwrap()
        .check_ids()
        .unwrap_err()
        .to_string();
    assert!(err.contains("99999"), "{err}");
}
