//! Corpus documents as JSONL (DESIGN.md "Corpus documents"): `{"id", "url", "text", "lang",
//! "source", "provenance": {"file", "offset"}, ...stage fields}`, read from `.jsonl`, `.jsonl.gz`
//! or `.jsonl.zst`, written atomically (temp file, then rename); bad lines go to a rejects file.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{DataError, Result};

/// Where a document came from: the input file and the byte offset of its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Provenance {
    pub file: String,
    pub offset: u64,
}

/// One corpus document. Fields added by stages live in `extra` and are never dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    #[serde(default)]
    pub url: String,
    pub text: String,
    #[serde(default)]
    pub lang: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub provenance: Provenance,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Document {
    pub fn new(id: impl Into<String>, url: impl Into<String>, text: impl Into<String>) -> Self {
        Document {
            id: id.into(),
            url: url.into(),
            text: text.into(),
            lang: String::new(),
            source: String::new(),
            provenance: Provenance::default(),
            extra: Map::new(),
        }
    }

    /// Set a stage field (`score`, `domain`, `minhash_cluster`, ...).
    pub fn set(&mut self, key: &str, v: impl Into<Value>) {
        self.extra.insert(key.to_string(), v.into());
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.extra.get(key).and_then(Value::as_f64)
    }
}

/// A rejected input: file, byte offset or line, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reject {
    pub file: String,
    pub offset: u64,
    pub reason: String,
}

/// Open a possibly compressed file for reading by its extension (`.gz`, `.zst`, else plain).
pub fn open_read(path: &Path) -> Result<Box<dyn BufRead>> {
    let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let name = path.to_string_lossy();
    let inner: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
    } else if name.ends_with(".zst") {
        Box::new(zstd::Decoder::new(f).map_err(|e| DataError::io(path, e))?)
    } else {
        Box::new(f)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, inner)))
}

/// Every line of a JSONL file parsed as a document; bad lines become rejects (`offset` is the
/// 1-based line number). A read error (truncated gzip / zstd) ends the file with a reject.
pub fn read_documents(path: &Path) -> Result<(Vec<Document>, Vec<Reject>)> {
    let mut docs = vec![];
    let mut rejects = vec![];
    let file = path.display().to_string();
    let mut reader = open_read(path)?;
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                rejects.push(Reject {
                    file: file.clone(),
                    offset: line + 1,
                    reason: format!("read error after line {line}: {e}"),
                });
                break;
            }
        }
        line += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                rejects.push(Reject {
                    file: file.clone(),
                    offset: line,
                    reason: format!("invalid UTF-8: {e}"),
                });
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Document>(text) {
            Ok(d) => docs.push(d),
            Err(e) => rejects.push(Reject {
                file: file.clone(),
                offset: line,
                reason: format!("not a document: {e}"),
            }),
        }
    }
    Ok((docs, rejects))
}

/// Writes JSONL to `<path>.tmp` (zstd when `path` ends in `.zst`, gzip for `.gz`) and renames on `finish`.
pub struct JsonlWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Box<dyn Write>,
    pub count: usize,
}

impl JsonlWriter {
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        }
        let tmp = PathBuf::from(format!("{}.tmp", path.display()));
        let f = BufWriter::with_capacity(
            1 << 16,
            std::fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?,
        );
        let name = path.to_string_lossy();
        let out: Box<dyn Write> = if name.ends_with(".zst") {
            Box::new(
                zstd::Encoder::new(f, 3)
                    .map_err(|e| DataError::io(&tmp, e))?
                    .auto_finish(),
            )
        } else if name.ends_with(".gz") {
            Box::new(flate2::write::GzEncoder::new(
                f,
                flate2::Compression::default(),
            ))
        } else {
            Box::new(f)
        };
        Ok(JsonlWriter {
            path: path.to_path_buf(),
            tmp,
            out,
            count: 0,
        })
    }

    pub fn write<T: Serialize>(&mut self, item: &T) -> Result<()> {
        serde_json::to_writer(&mut self.out, item)
            .map_err(|e| DataError::file(&self.tmp, e.to_string()))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| DataError::io(&self.tmp, e))?;
        self.count += 1;
        Ok(())
    }

    /// Flush, close and move into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.out.flush().map_err(|e| DataError::io(&self.tmp, e))?;
        drop(self.out);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| DataError::io(&self.path, e))?;
        Ok(self.path)
    }
}

/// Write all `items` to `path` atomically.
pub fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let mut w = JsonlWriter::create(path)?;
    for it in items {
        w.write(it)?;
    }
    w.finish().map(|_| ())
}

/// Read any JSONL file into values of `T`; the first bad line is an error naming file and line.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let mut out = vec![];
    let reader = open_read(path)?;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| DataError::Line {
            path: path.into(),
            line: i + 1,
            message: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| DataError::Line {
            path: path.into(),
            line: i + 1,
            message: e.to_string(),
        })?);
    }
    Ok(out)
}
