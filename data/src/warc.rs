//! Streaming WARC / WET reader (ISO 28500, as Common Crawl writes it): plain or multi-member
//! gzip (one member per record). A corrupt or truncated record is skipped and reported with its
//! byte offset; reading resumes at the next gzip member or `WARC/` header, so the rest of the
//! file is still read.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::doc::Reject;
use crate::error::{DataError, Result};

/// One WARC record. `offset` is the byte offset of its gzip member (or of the record in a plain file).
#[derive(Debug, Clone)]
pub struct WarcRecord {
    pub offset: u64,
    pub headers: Vec<(String, String)>,
    pub block: Vec<u8>,
}

impl WarcRecord {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn warc_type(&self) -> &str {
        self.header("WARC-Type").unwrap_or("")
    }
    /// `WARC-Target-URI`, without the angle brackets wget writes.
    pub fn target_uri(&self) -> &str {
        self.header("WARC-Target-URI")
            .unwrap_or("")
            .trim_start_matches('<')
            .trim_end_matches('>')
    }
    pub fn record_id(&self) -> &str {
        self.header("WARC-Record-ID").unwrap_or("")
    }
}

/// Parse one record at `data[pos..]`; returns it and the position after it.
fn parse_record(
    data: &[u8],
    mut pos: usize,
    offset: u64,
) -> std::result::Result<(WarcRecord, usize), String> {
    while pos < data.len() && (data[pos] == b'\r' || data[pos] == b'\n') {
        pos += 1;
    }
    if !data[pos..].starts_with(b"WARC/") {
        return Err("expected a `WARC/` version line".into());
    }
    let mut headers = vec![];
    let mut content_length: Option<usize> = None;
    let mut first = true;
    loop {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated record header")?
            + pos;
        let line = std::str::from_utf8(&data[pos..end])
            .map_err(|_| "header line is not UTF-8")?
            .trim_end_matches('\r');
        pos = end + 1;
        if first {
            first = false;
            continue;
        }
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').ok_or_else(|| {
            format!(
                "malformed header line `{}`",
                line.chars().take(80).collect::<String>()
            )
        })?;
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        if k.eq_ignore_ascii_case("Content-Length") {
            content_length = Some(v.parse().map_err(|_| format!("bad Content-Length `{v}`"))?);
        }
        headers.push((k, v));
    }
    let len = content_length.ok_or("record has no Content-Length")?;
    if data.len() - pos < len {
        return Err(format!(
            "truncated record: Content-Length {len} but {} bytes left",
            data.len() - pos
        ));
    }
    let block = data[pos..pos + len].to_vec();
    Ok((
        WarcRecord {
            offset,
            headers,
            block,
        },
        pos + len,
    ))
}

/// Streaming reader over a `.warc`, `.warc.gz`, `.wet` or `.wet.gz` file (memory-mapped).
pub struct WarcReader {
    path: PathBuf,
    map: memmap2::Mmap,
    gzip: bool,
    pos: usize,
    pending: VecDeque<std::result::Result<WarcRecord, Reject>>,
}

impl WarcReader {
    pub fn open(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        // SAFETY: the file is opened read-only; the pipeline does not modify its inputs.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| DataError::io(path, e))?;
        let gzip = map.starts_with(&[0x1f, 0x8b]);
        Ok(WarcReader {
            path: path.to_path_buf(),
            map,
            gzip,
            pos: 0,
            pending: VecDeque::new(),
        })
    }

    fn reject(&self, offset: u64, reason: String) -> Reject {
        Reject {
            file: self.path.display().to_string(),
            offset,
            reason,
        }
    }

    /// Next gzip member start at or after `from` (magic 1f 8b 08).
    fn next_member(&self, from: usize) -> usize {
        let m = &self.map[..];
        (from..m.len().saturating_sub(2))
            .find(|&i| m[i] == 0x1f && m[i + 1] == 0x8b && m[i + 2] == 0x08)
            .unwrap_or(m.len())
    }

    fn next_warc_line(&self, from: usize) -> usize {
        let m = &self.map[..];
        (from..m.len())
            .find(|&i| (i == 0 || m[i - 1] == b'\n') && m[i..].starts_with(b"WARC/"))
            .unwrap_or(m.len())
    }

    /// Decode one gzip member into records (queued in `pending`).
    fn fill_gzip(&mut self) {
        let start = self.pos;
        let mut slice: &[u8] = &self.map[start..];
        let before = slice.len();
        let mut dec = flate2::bufread::GzDecoder::new(&mut slice);
        let mut data = Vec::new();
        let res = dec.read_to_end(&mut data);
        drop(dec);
        let consumed = before - slice.len();
        if let Err(e) = res {
            let r = self.reject(
                start as u64,
                format!("corrupt or truncated gzip member: {e}"),
            );
            self.pending.push_back(Err(r));
            self.pos = self.next_member(start + 1);
            return;
        }
        self.pos = start + consumed.max(1);
        let mut p = 0;
        while p < data.len() {
            if data[p..].iter().all(|b| b.is_ascii_whitespace()) {
                break;
            }
            match parse_record(&data, p, start as u64) {
                Ok((rec, next)) => {
                    self.pending.push_back(Ok(rec));
                    p = next;
                }
                Err(e) => {
                    let r = self.reject(start as u64, e);
                    self.pending.push_back(Err(r));
                    break; // the rest of this member is unusable; the next member starts clean
                }
            }
        }
    }

    fn fill_plain(&mut self) {
        let start = self.pos;
        match parse_record(&self.map, start, start as u64) {
            Ok((mut rec, next)) => {
                let skipped = self.map[start..]
                    .iter()
                    .take_while(|b| **b == b'\r' || **b == b'\n')
                    .count();
                rec.offset = (start + skipped) as u64;
                self.pending.push_back(Ok(rec));
                self.pos = next;
            }
            Err(e) => {
                let r = self.reject(start as u64, e);
                self.pending.push_back(Err(r));
                self.pos = self.next_warc_line(start + 1);
            }
        }
    }
}

impl Iterator for WarcReader {
    type Item = std::result::Result<WarcRecord, Reject>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(x) = self.pending.pop_front() {
                return Some(x);
            }
            if self.pos >= self.map.len()
                || self.map[self.pos..].iter().all(|b| b.is_ascii_whitespace())
            {
                return None;
            }
            if self.gzip {
                self.fill_gzip()
            } else {
                self.fill_plain()
            }
        }
    }
}

/// An HTTP response block split into status, headers and body.
pub struct HttpResponse<'a> {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl HttpResponse<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parse the HTTP message inside a `response` record's block.
pub fn parse_http(block: &[u8]) -> std::result::Result<HttpResponse<'_>, String> {
    let (head_end, body_start) = match block.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (i, i + 4),
        None => match block.windows(2).position(|w| w == b"\n\n") {
            Some(i) => (i, i + 2),
            None => return Err("HTTP response without a header/body separator".into()),
        },
    };
    let head = String::from_utf8_lossy(&block[..head_end]);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "bad HTTP status line `{}`",
                status_line.chars().take(60).collect::<String>()
            )
        })?;
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: &block[body_start..],
    })
}

/// Decode an HTML body to text: charset from the Content-Type header, else from a `<meta>` in
/// the first 2 KiB, else UTF-8, falling back to windows-1252 (what browsers do).
pub fn decode_body(body: &[u8], content_type: Option<&str>) -> String {
    let label = content_type
        .and_then(|ct| {
            ct.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix("charset=")
                    .map(|c| c.trim_matches('"').to_string())
            })
        })
        .or_else(|| sniff_meta_charset(&body[..body.len().min(2048)]));
    if let Some(enc) = label.and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes())) {
        return enc.decode(body).0.into_owned();
    }
    match std::str::from_utf8(body) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(body).0.into_owned(),
    }
}

fn sniff_meta_charset(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let i = text.find("charset=")? + "charset=".len();
    let rest = text[i..].trim_start_matches(['"', '\'']);
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(uri: &str, body: &str) -> Vec<u8> {
        let block =
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}");
        format!("WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {uri}\r\nContent-Length: {}\r\n\r\n{block}\r\n\r\n", block.len()).into_bytes()
    }

    fn gz(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn corrupt_member_is_rejected_and_the_rest_is_read() {
        let (a, b, c) = (
            gz(&rec("http://a/", "<p>a</p>")),
            gz(&rec("http://b/", "<p>b</p>")),
            gz(&rec("http://c/", "<p>c</p>")),
        );
        let mut bad = b.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        bad[mid + 1] ^= 0xff;
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), [a.clone(), bad, c.clone()].concat()).unwrap();
        let out: Vec<_> = WarcReader::open(file.path()).unwrap().collect();
        let uris: Vec<String> = out
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| r.target_uri().to_string())
            .collect();
        assert_eq!(uris, vec!["http://a/", "http://c/"]);
        let rejects: Vec<&Reject> = out.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].offset, a.len() as u64);
        // Truncated last member.
        let cut = [a.clone(), c[..c.len() - 7].to_vec()].concat();
        std::fs::write(file.path(), cut).unwrap();
        let out: Vec<_> = WarcReader::open(file.path()).unwrap().collect();
        assert!(out[0].is_ok());
        assert!(
            out[1].as_ref().unwrap_err().reason.contains("truncated"),
            "{:?}",
            out[1]
        );
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn plain_warc_resyncs_after_a_bad_record() {
        let mut bad = rec("http://b/", "<p>b</p>");
        let s = String::from_utf8(bad.clone())
            .unwrap()
            .replace("Content-Length: ", "Content-Length: x");
        bad = s.into_bytes();
        let data = [rec("http://a/", "x"), bad, rec("http://c/", "y")].concat();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), data).unwrap();
        let out: Vec<_> = WarcReader::open(file.path()).unwrap().collect();
        let ok: Vec<String> = out
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| r.target_uri().to_string())
            .collect();
        assert_eq!(ok, vec!["http://a/", "http://c/"]);
        assert!(out.iter().any(|r| {
            r.as_ref()
                .is_err_and(|e| e.reason.contains("Content-Length"))
        }));
    }

    #[test]
    fn charset_detection() {
        assert_eq!(
            decode_body(b"caf\xe9", Some("text/html; charset=ISO-8859-1")),
            "café"
        );
        assert_eq!(
            decode_body("<meta charset=\"utf-8\">café".as_bytes(), None),
            "<meta charset=\"utf-8\">café"
        );
        assert_eq!(decode_body(b"caf\xe9", None), "café");
    }
}
