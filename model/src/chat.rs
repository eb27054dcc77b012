//! Chat templates: the checkpoint's Jinja template (`chat_template.jinja`, or `chat_template` in
//! tokenizer_config.json) rendered as HF `apply_chat_template(messages, tokenize=False,
//! add_generation_prompt=...)` does (transformers `utils/chat_template_utils.py`: trim_blocks,
//! lstrip_blocks, loop controls, `raise_exception`, `tojson`, `strftime_now`, the tokenizer's
//! special tokens as variables), on minijinja with Python's string methods.

use std::path::{Path, PathBuf};

use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::ModelError;

/// One chat turn (`{"role": ..., "content": ...}`, HF's message format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    pub fn user(content: &str) -> Self {
        Self::new("user", content)
    }
}

/// A checkpoint's chat template with the special tokens it may print.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    /// Where the template came from (errors name it).
    pub path: PathBuf,
    pub source: String,
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token` as tokenizer_config.json gives them.
    pub special_tokens: Vec<(String, String)>,
}

fn token_text(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(str::to_string),
        _ => None,
    }
}

impl ChatTemplate {
    /// The template of an HF model directory, `None` when it has none: `chat_template.jinja`
    /// first (transformers >= 4.43 writes it), else tokenizer_config.json's `chat_template` (a
    /// string, or a list of named templates of which `default` is used).
    pub fn from_dir(dir: &Path) -> Result<Option<Self>, ModelError> {
        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: Json = if cfg_path.exists() {
            let text =
                std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
            serde_json::from_str(&text).map_err(|e| ModelError::ConfigFile {
                path: cfg_path.clone(),
                message: e.to_string(),
            })?
        } else {
            Json::Null
        };
        let special_tokens = ["bos_token", "eos_token", "unk_token", "pad_token"]
            .iter()
            .filter_map(|k| token_text(cfg.get(*k)).map(|t| (k.to_string(), t)))
            .collect();
        let jinja = dir.join("chat_template.jinja");
        let (path, source) = if jinja.exists() {
            (
                jinja.clone(),
                std::fs::read_to_string(&jinja).map_err(|e| ModelError::io(&jinja, e))?,
            )
        } else {
            let bad = |message: String| ModelError::ChatTemplate {
                path: cfg_path.clone(),
                message,
            };
            match cfg.get("chat_template") {
                None | Some(Json::Null) => return Ok(None),
                Some(Json::String(s)) => (cfg_path.clone(), s.clone()),
                Some(Json::Array(named)) => {
                    let default = named
                        .iter()
                        .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                        .and_then(|t| t.get("template"))
                        .and_then(Json::as_str)
                        .ok_or_else(|| {
                            bad("chat_template is a list without a `default` template".into())
                        })?;
                    (cfg_path.clone(), default.to_string())
                }
                Some(other) => {
                    return Err(bad(format!(
                        "chat_template is neither a string nor a list: {other}"
                    )));
                }
            }
        };
        let template = Self {
            path,
            source,
            special_tokens,
        };
        // Compile once here so a syntax error is reported at load, naming the file.
        template.env()?;
        Ok(Some(template))
    }

    fn env(&self) -> Result<Environment<'_>, ModelError> {
        let mut env = Environment::new();
        // HF's Jinja environment: trim_blocks and lstrip_blocks on, no trailing newline kept.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .map_err(|e| self.error(&e))?;
        env.set_syntax(syntax);
        // Printing or iterating a variable dsmath does not provide is an error; testing it
        // (`{% if x is defined %}`, `{% if x %}`) is not.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("raise_exception: {msg}"),
            ))
        });
        env.add_function("strftime_now", |fmt: String| -> Result<Value, Error> {
            Ok(Value::from(strftime_now(&fmt)))
        });
        env.add_filter("tojson", tojson);
        env.add_template("chat", &self.source)
            .map_err(|e| self.error(&e))?;
        Ok(env)
    }

    fn error(&self, e: &Error) -> ModelError {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        ModelError::ChatTemplate {
            path: self.path.clone(),
            message,
        }
    }

    /// The prompt text for `messages`, ending with the assistant header when
    /// `add_generation_prompt` (HF `apply_chat_template(..., tokenize=False)`). `extra` adds
    /// template variables (HF's `**kwargs`, e.g. `date_string`, `enable_thinking`).
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        extra: &[(&str, Json)],
    ) -> Result<String, ModelError> {
        let env = self.env()?;
        let tmpl = env.get_template("chat").map_err(|e| self.error(&e))?;
        let mut ctx = serde_json::Map::new();
        ctx.insert(
            "messages".into(),
            serde_json::to_value(messages).expect("messages serialise"),
        );
        ctx.insert(
            "add_generation_prompt".into(),
            Json::Bool(add_generation_prompt),
        );
        ctx.insert("tools".into(), Json::Null);
        ctx.insert("documents".into(), Json::Null);
        for (k, v) in &self.special_tokens {
            ctx.insert(k.clone(), Json::String(v.clone()));
        }
        for (k, v) in extra {
            ctx.insert(k.to_string(), v.clone());
        }
        tmpl.render(minijinja::value::Serde(&ctx))
            .map_err(|e| self.error(&e))
    }

    /// One user turn (the question) with the assistant header after it.
    pub fn user_prompt(&self, text: &str) -> Result<String, ModelError> {
        self.render(&[Message::user(text)], true, &[])
    }
}

/// Python's `json.dumps(x, ensure_ascii=False, indent=indent)`, as HF's `tojson` filter.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
    let mut out = String::new();
    write_py_json(&json, indent, 0, &mut out);
    Ok(Value::from_safe_string(out))
}

fn write_py_json(v: &Json, indent: Option<usize>, level: usize, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v {
        Json::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                write_py_json(item, indent, level + 1, out);
            }
            newline(out, level);
            out.push(']');
        }
        Json::Object(map) if !map.is_empty() => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                out.push_str(&Json::String(k.clone()).to_string());
                out.push_str(": ");
                write_py_json(item, indent, level + 1, out);
            }
            newline(out, level);
            out.push('}');
        }
        Json::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            // Python prints floats with a fractional part (`1.0`) and repr's shortest digits.
            if f.fract() == 0.0 && f.abs() < 1e16 {
                out.push_str(&format!("{f:.1}"))
            } else {
                out.push_str(&format!("{f}"))
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `strftime_now(fmt)`: the current UTC time formatted with the strftime codes templates use
/// (`%d %b %Y %B %m %y %H %M %S %A %a %j %%`).
fn strftime_now(fmt: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format_time(secs, fmt)
}

fn format_time(secs: i64, fmt: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cumulative[(month - 1) as usize] + day + if leap && month > 2 { 1 } else { 0 };
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let m = MONTHS[(month - 1) as usize];
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('b') => out.push_str(&m[..3]),
            Some('B') => out.push_str(m),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('H') => out.push_str(&format!("{:02}", sod / 3600)),
            Some('M') => out.push_str(&format!("{:02}", sod / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", sod % 60)),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_formats_dates_as_python() {
        // 2024-07-26 12:34:56 UTC, a Friday (Llama 3.1's default date_string is "26 Jul 2024").
        let t = 1_721_997_296;
        assert_eq!(format_time(t, "%d %b %Y"), "26 Jul 2024");
        assert_eq!(
            format_time(t, "%A %B %j %H:%M:%S %%"),
            "Friday July 208 12:34:56 %"
        );
        assert_eq!(format_time(951_782_400, "%Y-%m-%d"), "2000-02-29");
    }

    #[test]
    fn tojson_writes_python_json_dumps() {
        let v: Json = serde_json::from_str(r#"{"a": [1, 2.0, "é"], "b": {}}"#).unwrap();
        let mut s = String::new();
        write_py_json(&v, None, 0, &mut s);
        assert_eq!(s, r#"{"a": [1, 2.0, "é"], "b": {}}"#);
        let mut s = String::new();
        write_py_json(&v, Some(2), 0, &mut s);
        assert_eq!(
            s,
            "{\n  \"a\": [\n    1,\n    2.0,\n    \"é\"\n  ],\n  \"b\": {}\n}"
        );
    }
}
