//! WARC / WET records to corpus documents: HTTP 200 HTML responses through the math-aware
//! extractor, WET `conversion` records as they are; language from `whatlang`; per-file stats.

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use crate::doc::{Document, Provenance, Reject};
use crate::html::html_to_text;
use crate::warc::{WarcReader, decode_body, parse_http};

/// HTML bodies larger than this are skipped (html5ever's tree building is superlinear on
/// pathological nesting; real pages are far smaller).
pub const MAX_HTML_BYTES: usize = 8 << 20;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ExtractStats {
    pub records: usize,
    pub responses: usize,
    pub documents: usize,
    /// Responses that were not HTML (images, PDFs...), or not status 200.
    pub skipped_non_html: usize,
    pub skipped_status: usize,
    /// HTML with no visible text after boilerplate removal.
    pub empty: usize,
    pub rejects: usize,
    pub html_bytes: usize,
    pub text_chars: usize,
    /// Documents with any math (TeX scripts, MathML, LaTeX images, delimiters).
    pub with_math: usize,
}

/// `lang` (ISO 639-3, e.g. `eng`) and detection confidence. CJK pages are told by script first
/// (technical Japanese pages are full of Latin identifiers that mislead trigram models):
/// kana >= 10% of letters is Japanese, Hangul >= 20% Korean, Han >= 20% without kana Chinese.
pub fn language(text: &str) -> (String, f64) {
    let sample: String = text.chars().take(8000).collect();
    let (mut letters, mut kana, mut hangul, mut han) = (0usize, 0usize, 0usize, 0usize);
    for c in sample.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        match c as u32 {
            0x3040..=0x30FF => kana += 1,
            0xAC00..=0xD7AF | 0x1100..=0x11FF => hangul += 1,
            0x4E00..=0x9FFF | 0x3400..=0x4DBF => han += 1,
            _ => {}
        }
    }
    let share = |n: usize| {
        if letters == 0 {
            0.0
        } else {
            n as f64 / letters as f64
        }
    };
    if share(kana) >= 0.10 {
        return ("jpn".into(), share(kana + han).min(1.0));
    }
    if share(hangul) >= 0.20 {
        return ("kor".into(), share(hangul));
    }
    if share(han) >= 0.20 {
        return ("cmn".into(), share(han));
    }
    match whatlang::detect(&sample) {
        Some(info) => (info.lang().code().to_string(), info.confidence()),
        None => (String::new(), 0.0),
    }
}

/// Extract every document of one WARC or WET file.
pub fn extract_file(
    path: &Path,
    source: &str,
) -> crate::Result<(Vec<Document>, Vec<Reject>, ExtractStats)> {
    let file = path.display().to_string();
    let mut stats = ExtractStats::default();
    let mut docs = vec![];
    let mut rejects = vec![];
    for item in WarcReader::open(path)? {
        let rec = match item {
            Ok(r) => r,
            Err(r) => {
                rejects.push(r);
                continue;
            }
        };
        stats.records += 1;
        let reject = |reason: String| Reject {
            file: file.clone(),
            offset: rec.offset,
            reason,
        };
        let (text, mut doc_extra) = match rec.warc_type() {
            "response" => {
                stats.responses += 1;
                let http = match parse_http(&rec.block) {
                    Ok(h) => h,
                    Err(e) => {
                        rejects.push(reject(e));
                        continue;
                    }
                };
                if http.status != 200 {
                    stats.skipped_status += 1;
                    continue;
                }
                let ct = http.header("Content-Type").map(str::to_ascii_lowercase);
                if ct.as_deref().is_some_and(|c| !c.contains("html")) {
                    stats.skipped_non_html += 1;
                    continue;
                }
                if http.body.len() > MAX_HTML_BYTES {
                    rejects.push(reject(format!(
                        "HTML body of {} bytes exceeds {MAX_HTML_BYTES}",
                        http.body.len()
                    )));
                    continue;
                }
                let html = decode_body(http.body, ct.as_deref());
                let e = html_to_text(&html);
                stats.html_bytes += http.body.len();
                if e.math.total() > 0 {
                    stats.with_math += 1;
                }
                (
                    e.text,
                    json!({"title": e.title, "math": e.math, "html_bytes": http.body.len()}),
                )
            }
            "conversion" => (String::from_utf8_lossy(&rec.block).into_owned(), json!({})),
            _ => continue,
        };
        if text.trim().is_empty() {
            stats.empty += 1;
            continue;
        }
        let (lang, conf) = language(&text);
        let url = rec.target_uri().to_string();
        let id = match rec.record_id() {
            "" => format!("{file}@{}", rec.offset),
            r => r
                .trim_start_matches("<urn:uuid:")
                .trim_end_matches('>')
                .to_string(),
        };
        stats.text_chars += text.chars().count();
        let mut d = Document::new(id, url, text);
        d.lang = lang;
        d.source = source.to_string();
        d.provenance = Provenance {
            file: file.clone(),
            offset: rec.offset,
        };
        if let Some(obj) = doc_extra.as_object_mut() {
            for (k, v) in std::mem::take(obj) {
                d.set(&k, v);
            }
        }
        d.set("lang_confidence", conf);
        docs.push(d);
    }
    stats.documents = docs.len();
    stats.rejects = rejects.len();
    Ok((docs, rejects, stats))
}
