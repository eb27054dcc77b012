//! URL normalisation for exact-URL dedup and domain statistics: lower-case scheme and host, http
//! and https are one page, no default port, no fragment, tracking parameters (`utm_*`, `fbclid`,
//! `gclid`, ...) removed and the rest sorted, `index.html` and a trailing slash dropped.

/// Query keys that never change the page.
const TRACKING: &[&str] = &[
    "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "yclid", "_ga", "igshid", "ref_src",
];

/// `(scheme, host, port, path, query)` of an absolute http(s) URL.
fn split(url: &str) -> Option<(String, String, Option<String>, String, String)> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.split('#').next().unwrap_or("");
    let (authority, path_query) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match authority.rsplit_once(':') {
        // `[::1]:8080` has its port after the bracket; a bare `[::1]` has none.
        Some((h, p))
            if p.chars().all(|c| c.is_ascii_digit())
                && (!h.starts_with('[') || h.ends_with(']')) =>
        {
            (h.to_string(), Some(p.to_string()))
        }
        _ => (authority.to_string(), None),
    };
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_query.to_string(), String::new()),
    };
    Some((
        scheme,
        host.to_ascii_lowercase().trim_end_matches('.').to_string(),
        port,
        path,
        query,
    ))
}

/// The host of a URL, lower-cased (`""` if it has none).
pub fn host(url: &str) -> String {
    split(url).map(|x| x.1).unwrap_or_default()
}

/// The canonical form used for exact-URL dedup.
pub fn normalize(url: &str) -> String {
    let Some((scheme, host, port, mut path, query)) = split(url) else {
        return url.trim().to_string();
    };
    let scheme = if scheme == "http" {
        "https".to_string()
    } else {
        scheme
    };
    let port = port.filter(|p| !(p == "80" || p == "443" || p.is_empty()));
    for index in ["index.html", "index.htm", "index.php", "default.aspx"] {
        if path.ends_with(&format!("/{index}")) {
            path.truncate(path.len() - index.len());
        }
    }
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path == "/" {
        path.clear();
    }
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter(|kv| {
            let k = kv.split('=').next().unwrap_or("").to_ascii_lowercase();
            !(k.starts_with("utm_") || TRACKING.contains(&k.as_str()))
        })
        .collect();
    params.sort_unstable();
    let mut out = format!("{scheme}://{host}");
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p);
    }
    out.push_str(&path);
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// The URL's path prefixes at directory boundaries, longest first (`host/a/b/c` -> `host/a/b/`, `host/a/`, `host/`).
pub fn path_prefixes(url: &str) -> Vec<String> {
    let Some((_, host, _, path, _)) = split(url) else {
        return vec![];
    };
    let mut out = vec![];
    let mut p = path.as_str();
    while let Some(i) = p.rfind('/') {
        out.push(format!("{host}{}", &p[..=i]));
        p = &p[..i];
    }
    if out.is_empty() {
        out.push(format!("{host}/"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_url_variants_collapse() {
        // The mini-crawl's planted URL-level duplicates (data/web/SOURCES.md).
        let same = [
            (
                "https://www.postgresql.org/docs/15/sql-select.html?utm_source=newsletter&utm_medium=email&utm_campaign=pg15",
                "https://www.postgresql.org/docs/15/sql-select.html",
            ),
            (
                "https://docs.djangoproject.com/en/3.2/topics/db/queries",
                "https://docs.djangoproject.com/en/3.2/topics/db/queries/",
            ),
            (
                "https://docs.octave.org/v7.3.0/",
                "https://docs.octave.org/v7.3.0/index.html",
            ),
            (
                "http://maxima.sourceforge.io/docs/manual/maxima_toc.html",
                "https://maxima.sourceforge.io/docs/manual/maxima_toc.html",
            ),
            (
                "HTTPS://Example.COM:443/a?b=2&a=1#frag",
                "https://example.com/a?a=1&b=2",
            ),
        ];
        for (a, b) in same {
            assert_eq!(normalize(a), normalize(b), "{a} vs {b}");
        }
        assert_ne!(
            normalize("https://a.org/x?id=1"),
            normalize("https://a.org/x?id=2")
        );
        assert_ne!(
            normalize("https://docs.python.org/3/library/math.html"),
            normalize("https://docs.python.org/3.11/library/math.html")
        );
        assert_eq!(host("https://Docs.Sympy.org:8080/1.11/x"), "docs.sympy.org");
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            path_prefixes("https://a.org/docs/v1/x.html"),
            vec!["a.org/docs/v1/", "a.org/docs/", "a.org/"]
        );
    }
}
