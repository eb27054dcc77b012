//! The corpus stages on the shipped real crawl (`data/web/`, see SOURCES.md): extraction,
//! URL / exact / MinHash dedup against the planted duplicates and the labels file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dsmath_data::dedup::{MinHashConfig, exact_dedup, jaccard, near_dedup, shingles, url_dedup};
use dsmath_data::extract::{ExtractStats, extract_file};
use dsmath_data::{Document, Reject};

fn web(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(name)
}

/// (url, topic, dup_of, dup_type) rows of the labels file.
fn labels() -> Vec<(String, String, String, String)> {
    std::fs::read_to_string(web("mini-crawl.labels.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].into(),
                c[3].into(),
                c.get(4).copied().unwrap_or("").into(),
                c.get(5).copied().unwrap_or("").into(),
            )
        })
        .collect()
}

fn crawl() -> &'static (Vec<Document>, Vec<Reject>, ExtractStats) {
    static C: OnceLock<(Vec<Document>, Vec<Reject>, ExtractStats)> = OnceLock::new();
    C.get_or_init(|| extract_file(&web("mini-crawl.warc.gz"), "mini-crawl").unwrap())
}

#[test]
fn extracts_every_page_of_the_mini_crawl() {
    let (docs, rejects, stats) = crawl();
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!((stats.records, stats.responses), (4615, 2307));
    assert_eq!(docs.len() + stats.empty, 2307);
    assert!(docs.len() >= 2300, "{stats:?}");
    let urls: Vec<&str> = docs.iter().map(|d| d.url.as_str()).collect();
    let want: Vec<String> = labels().into_iter().map(|l| l.0).collect();
    assert!(urls.iter().all(|u| want.iter().any(|w| w == u)));
    // Language: French and Japanese Apache translations are told apart from English.
    let lang = |prefix: &str| {
        docs.iter()
            .filter(|d| d.url.starts_with(prefix))
            .map(|d| d.lang.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        lang("https://httpd.apache.org/docs/2.4/fr/")
            .iter()
            .filter(|l| *l == "fra")
            .count()
            >= 12
    );
    assert!(
        lang("https://httpd.apache.org/docs/2.4/ja/")
            .iter()
            .filter(|l| *l == "jpn")
            .count()
            >= 8
    );
    // Math survives as LaTeX: MathJax / Sphinx pages keep `\(..\)` and `$..$`, far more often
    // on the math manuals than on the others.
    let topic: HashMap<String, String> = labels().into_iter().map(|l| (l.0, l.1)).collect();
    let has_math = |d: &&Document| {
        ["tex_scripts", "mathml", "latex_images", "delimiters"]
            .iter()
            .any(|k| d.extra["math"][k].as_u64().unwrap_or(0) > 0)
    };
    let share = |t: &str| {
        let of: Vec<&Document> = docs.iter().filter(|d| topic[&d.url] == t).collect();
        of.iter().filter(|d| has_math(d)).count() as f64 / of.len() as f64
    };
    let (math_share, other_share) = (share("math"), share("other"));
    assert!(
        math_share > 0.15 && math_share > 3.0 * other_share,
        "pages with math: math {math_share:.2}, other {other_share:.2}"
    );
    let arb = docs
        .iter()
        .find(|d| d.url == "https://arblib.org/acb_dirichlet.html")
        .unwrap();
    assert!(
        arb.text.contains("\\(\\chi\\)") || arb.text.contains("\\(s\\)"),
        "{}",
        &arb.text[..600.min(arb.text.len())]
    );
    // Boilerplate is gone: SymPy's 1,000-word navigation sidebar does not reach the text.
    let sympy = docs
        .iter()
        .find(|d| d.url == "https://docs.sympy.org/1.11/modules/utilities/timeutils.html")
        .unwrap();
    assert!(sympy.text.len() < 6000, "{} chars", sympy.text.len());
}

#[test]
fn the_cc_samples_extract_with_provenance() {
    for f in ["cc-sample-0000.warc.gz", "cc-sample-0001.warc.gz"] {
        let (docs, rejects, stats) = extract_file(&web(f), "cc").unwrap();
        assert!(rejects.is_empty(), "{rejects:?}");
        assert_eq!(
            stats.responses,
            if f.ends_with("0.warc.gz") { 22 } else { 15 }
        );
        assert!(docs.len() >= stats.responses - 3, "{stats:?}");
        assert!(
            docs.iter()
                .all(|d| d.provenance.file.ends_with(f) && !d.url.starts_with('<'))
        );
    }
}

#[test]
fn dedup_removes_every_planted_duplicate() {
    let (docs, _, _) = crawl();
    let planted: Vec<(String, String, String)> = labels()
        .into_iter()
        .filter(|l| !l.3.is_empty())
        .map(|l| (l.0, l.2, l.3))
        .collect();
    assert_eq!(planted.len(), 15);
    let id_of: HashMap<String, String> =
        docs.iter().map(|d| (d.url.clone(), d.id.clone())).collect();
    let (kept, by_url) = url_dedup(docs.clone());
    let (kept, by_text) = exact_dedup(kept);
    let exact_removed: HashSet<String> =
        by_url.iter().chain(&by_text).map(|r| r.0.clone()).collect();
    for (url, _, ty) in planted.iter().filter(|p| p.2 == "exact") {
        assert!(
            exact_removed.contains(&id_of[url]),
            "exact duplicate kept: {url} ({ty})"
        );
    }
    assert_eq!(
        exact_removed.len(),
        8,
        "only the planted exact duplicates go"
    );
    // Near-dedup over two shards.
    let half = kept.len() / 2;
    let shards = vec![kept[..half].to_vec(), kept[half..].to_vec()];
    let dir = tempfile::tempdir().unwrap();
    let (out, near) = near_dedup(shards.clone(), &MinHashConfig::default(), dir.path()).unwrap();
    let (_, again) = near_dedup(shards, &MinHashConfig::default(), dir.path()).unwrap();
    assert_eq!(near, again, "deterministic");
    let near_removed: HashMap<String, String> = near.iter().cloned().collect();
    for (url, original, _) in planted.iter().filter(|p| p.2 == "near") {
        assert_eq!(
            near_removed.get(&id_of[url]),
            Some(&id_of[original]),
            "near duplicate {url} not merged into {original}"
        );
    }
    // The crawl's unplanted raw-text near-duplicates (SymPy sidebars) are mostly not duplicates
    // of the extracted main text.
    let unplanted: Vec<(String, String)> =
        std::fs::read_to_string(web("mini-crawl.near-dups-unplanted.tsv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                (c[0].to_string(), c[1].to_string())
            })
            .collect();
    let flagged = unplanted
        .iter()
        .filter(|(a, b)| {
            near_removed.contains_key(&id_of[a]) || near_removed.contains_key(&id_of[b])
        })
        .count();
    let text: HashMap<&str, &str> = docs
        .iter()
        .map(|d| (d.url.as_str(), d.text.as_str()))
        .collect();
    let still_similar = unplanted
        .iter()
        .filter(|(a, b)| {
            jaccard(
                &shingles(text[a.as_str()], 5),
                &shingles(text[b.as_str()], 5),
            ) >= 0.8
        })
        .count();
    eprintln!(
        "unplanted raw-text pairs: {}; J5 >= 0.8 after extraction: {still_similar}; pages flagged: {flagged}",
        unplanted.len()
    );
    assert!(
        still_similar <= 10,
        "{still_similar} of {} unplanted pairs still similar after extraction",
        unplanted.len()
    );
    let total: usize = out.iter().map(Vec::len).sum();
    assert_eq!(total + near.len() + exact_removed.len(), docs.len());
    // Beyond the planted ones, LSH also merges pages of the crawl's own near-identical pairs
    // (J5 0.6-0.99: generated API pages); how many varies with the hash seed (14 to 21 removals
    // over seeds 1-8, 21 at the default seed 1).
    assert!(
        near.len() <= 7 + flagged + 12,
        "{} near-duplicates removed",
        near.len()
    );
}

/// Pages split 80/20 by a hash of the URL: deterministic, and independent of crawl order.
fn split_examples() -> (Vec<(bool, String)>, Vec<(bool, String)>) {
    let (docs, _, _) = crawl();
    let topic: HashMap<String, String> = labels().into_iter().map(|l| (l.0, l.1)).collect();
    let mut train = vec![];
    let mut test = vec![];
    for d in docs {
        let ex = (topic[&d.url] == "math", d.text.clone());
        if dsmath_data::classify::in_test_split(&d.url) {
            test.push(ex)
        } else {
            train.push(ex)
        }
    }
    (train, test)
}

#[test]
fn classifier_separates_math_manuals_from_the_rest() {
    use dsmath_data::classify::{Classifier, ClassifierConfig};
    let (train, test) = split_examples();
    // The paper's 3 epochs at lr 0.1 need its 1M documents; on 1,820 pages both this crate and
    // the C++ fastText stay at the majority class (scripts/compare_fasttext.py), so: 10 epochs, lr 0.5.
    let cfg = ClassifierConfig {
        bucket: 200_000,
        dim: 64,
        epoch: 10,
        lr: 0.5,
        ..Default::default()
    };
    let ex: Vec<(bool, &str)> = train.iter().map(|(m, t)| (*m, t.as_str())).collect();
    let clf = Classifier::train(&ex, &cfg).unwrap();
    let texts: Vec<&str> = test.iter().map(|t| t.1.as_str()).collect();
    let scores = clf.score_batch(&texts);
    let right = scores
        .iter()
        .zip(&test)
        .filter(|(s, (m, _))| (**s >= 0.5) == *m)
        .count();
    let acc = right as f64 / test.len() as f64;
    eprintln!(
        "classifier: {} train, {} test, accuracy {acc:.4}",
        train.len(),
        test.len()
    );
    assert!(acc >= 0.95, "accuracy {acc}");
    // Save / load round trip in fastText's .bin format gives the same scores.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("math.bin");
    clf.save(&p).unwrap();
    let back = Classifier::load(&p, cfg.max_tokens).unwrap();
    assert_eq!(back.score_batch(&texts[..20]), scores[..20].to_vec());
    assert!(Classifier::load(&web("SOURCES.md"), 10).is_err());
}

#[test]
fn iterations_discover_math_domains_from_a_small_seed() {
    use dsmath_data::classify::ClassifierConfig;
    use dsmath_data::iterate::{IterateConfig, SeedConfig, iterate};
    use dsmath_data::recall::DomainConfig;
    let (docs, _, _) = crawl();
    let (pool, _) = exact_dedup(url_dedup(docs.clone()).0);
    let labels: HashMap<String, bool> =
        labels().into_iter().map(|l| (l.0, l.1 == "math")).collect();
    let cfg = IterateConfig {
        iterations: 3,
        seed: SeedConfig {
            prefixes: vec![
                "maxima.sourceforge.io/docs/manual/".into(),
                "www.fftw.org/fftw3_doc/".into(),
            ],
            ..Default::default()
        },
        classifier: ClassifierConfig {
            dim: 32,
            epoch: 5,
            lr: 1.0,
            bucket: 100_000,
            threads: 1,
            ..Default::default()
        }, // one thread: reproducible
        domains: DomainConfig {
            annotations: Some(web("math-prefixes.txt").display().to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut seen = vec![];
    let res = iterate(&pool, &[], &cfg, dir.path(), Some(&labels), &mut |s| {
        seen.push(s.clone())
    })
    .unwrap();
    for s in &res.stats {
        eprintln!(
            "iter {}: {} positives, {} collected, P {:.3} R {:.3}, math domains {:?}, new seed {}",
            s.iteration,
            s.positives,
            s.collected_pages,
            s.precision.unwrap(),
            s.recall.unwrap(),
            s.math_domains,
            s.new_seed_pages
        );
    }
    let (first, last) = (&res.stats[0], &res.stats[2]);
    assert!(
        last.positives > first.positives,
        "the seed grows from discovered domains"
    );
    assert!(last.recall.unwrap() >= first.recall.unwrap());
    assert!(
        last.recall.unwrap() >= 0.8 && last.precision.unwrap() >= 0.9,
        "{last:?}"
    );
    assert!(last.math_domains.contains(&"docs.sympy.org".to_string()));
    assert!(
        !last
            .math_domains
            .contains(&"www.postgresql.org".to_string())
    );
    // Resuming reads the saved iterations and gives the same result.
    let again = iterate(&pool, &[], &cfg, dir.path(), Some(&labels), &mut |_| {}).unwrap();
    assert_eq!((again.collected, again.stats), (res.collected, res.stats));
    assert_eq!(seen.len(), 3);
}
