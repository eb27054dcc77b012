//! Answer extraction from a completion, in DeepSeekMath's order (evaluation/data_processing/
//! answer_extraction.py): `final answer is $...$. I hope`, every `\boxed{}` / `\fbox{}` (brace
//! matched), `The answer is`, `答案是`, the last ```output block; then, for models that write
//! neither, `final answer is X` / `Final Answer: X` without "I hope", and the last LaTeX math span
//! (`$...$`, `$$...$$`, `\(...\)`, `\[...\]`, with pandoc's rules for a single `$` so currency is
//! not math) unless a number follows it; the last number last. Then first-line and
//! trailing-punctuation cleanup (a `\begin{...}` environment is kept whole across lines).

/// Byte index of the `}` that closes the `{` at byte `open` of `s` (iterative, no recursion).
pub fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &c) in s.as_bytes().iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Contents of every `\boxed{...}` and `\fbox{...}` in order, braces matched (unbalanced tails are
/// skipped). `\boxed 5` (no braces) yields `5`. Linear time, no recursion.
pub fn boxed_answers(text: &str) -> Vec<String> {
    let mut out = vec![];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let skip = if rest.starts_with("\\boxed") {
            6
        } else if rest.starts_with("\\fbox") {
            5
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let mut j = i + skip;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'{' {
            let end = matching_brace(text, j);
            match end {
                Some(k) => {
                    out.push(text[j + 1..k].to_string());
                    i = k + 1;
                }
                None => break,
            }
        } else if j > i + skip {
            // `\boxed 5`: up to the next space or `$`.
            let end = text[j..]
                .find([' ', '$', '\n'])
                .map_or(text.len(), |e| j + e);
            out.push(text[j..end].to_string());
            i = end;
        } else {
            i += skip;
        }
    }
    out
}

/// The text of the last ```output ... ``` block (tool-integrated solutions), if any.
pub fn last_program_output(text: &str) -> Option<String> {
    let tail = text.rsplit_once("```output")?.1;
    let body = tail.split("```").next().unwrap_or(tail);
    let body = body.trim();
    (!body.is_empty()).then(|| body.to_string())
}

/// The last number in the text (thousands separators removed), DeepSeekMath's final fallback.
pub fn last_number(text: &str) -> Option<String> {
    let t = text.replace(',', "");
    let b = t.as_bytes();
    let mut last: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() || (b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()) {
            let start = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
            let mut j = i;
            let mut dot = false;
            while j < b.len()
                && (b[j].is_ascii_digit()
                    || (b[j] == b'.' && !dot && j + 1 < b.len() && b[j + 1].is_ascii_digit()))
            {
                dot |= b[j] == b'.';
                j += 1;
            }
            last = Some((start, j));
            i = j;
        } else {
            i += 1;
        }
    }
    last.map(|(s, e)| t[s..e].to_string())
}

/// How an answer was found (kept in the verdict file for auditing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    FinalAnswerIs,
    Boxed,
    TheAnswerIs,
    ChineseAnswer,
    ProgramOutput,
    /// `final answer is X` or `Final Answer: X` without DeepSeekMath's "I hope".
    FinalAnswer,
    /// The last `$...$` / `$$...$$` / `\(...\)` / `\[...\]` span, no number after it.
    MathSpan,
    LastNumber,
    None,
}

/// All candidate answers (DeepSeekMath's `exhaust=True`), cleaned; the last is the answer.
pub fn extract_all(completion: &str) -> (Vec<String>, Source) {
    let (raw, source): (Vec<String>, Source) = if let Some(rest) =
        completion.split_once("final answer is $").map(|x| x.1)
        && rest.contains("$. I hope")
    {
        (
            vec![rest.split_once("$. I hope").unwrap().0.trim().to_string()],
            Source::FinalAnswerIs,
        )
    } else if completion.contains("\\boxed") || completion.contains("\\fbox") {
        (boxed_answers(completion), Source::Boxed)
    } else if let Some((_, rest)) = completion.rsplit_once("he answer is") {
        (vec![answer_after_phrase(rest)], Source::TheAnswerIs)
    } else if let Some((_, rest)) = completion.split_once("答案是") {
        (
            vec![rest.trim().trim_start_matches(['：', ':']).to_string()],
            Source::ChineseAnswer,
        )
    } else if let Some(out) = last_program_output(completion) {
        (vec![out], Source::ProgramOutput)
    } else if let Some(rest) = after_final_answer(completion) {
        (vec![answer_after_phrase(rest)], Source::FinalAnswer)
    } else if let Some(span) = last_math_span(completion)
        && !span.content.trim().is_empty()
        && last_number(&completion[span.end..]).is_none()
    {
        (vec![span.content.to_string()], Source::MathSpan)
    } else if let Some(n) = last_number(completion) {
        (vec![n], Source::LastNumber)
    } else {
        (vec![], Source::None)
    };
    let cleaned = raw.iter().map(|a| clean(a)).collect();
    (cleaned, source)
}

/// The final answer of a completion ("" when nothing was found) and where it came from.
pub fn extract_answer(completion: &str) -> (String, Source) {
    let (all, source) = extract_all(completion);
    (all.last().cloned().unwrap_or_default(), source)
}

/// The text after the last `final answer is` / `final answer:` (any case, markdown bold and
/// colons skipped).
fn after_final_answer(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let (pos, len) = ["final answer is", "final answer:", "final answer**:"]
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, p.len())))
        .max()?;
    // `to_ascii_lowercase` keeps byte offsets, so `pos + len` is a char boundary of `text`.
    Some(&text[pos + len..])
}

/// What follows "the answer is": the math span it starts with when it starts with one
/// (`$\frac{1}{2}$ hours.` -> `\frac{1}{2}`), else the text up to the end of the line.
fn answer_after_phrase(rest: &str) -> String {
    let rest = rest.trim_start_matches([' ', ':', '*', '\t']);
    if let Some(span) = math_spans(rest).into_iter().next()
        && span.start == 0
    {
        return span.content.to_string();
    }
    rest.trim().to_string()
}

/// One LaTeX math span of a text: its content and the byte range of the whole span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MathSpan<'a> {
    pub content: &'a str,
    pub start: usize,
    pub end: usize,
}

/// The math spans of a text in order: `$$...$$`, `\[...\]`, `\(...\)` and `$...$`; `\$` is a
/// dollar sign and no span crosses a blank line. Single dollars pair up as in TeX (each one
/// opens or closes) when that reads the whole text as math: an even count and no span that
/// contains prose and none closes right before a digit (`$5 and then $6` would pair into "5 and
/// then "). Otherwise they follow pandoc's
/// rules, which tell prices from math: the opening `$` has a non-space character right after
/// it, the closing one a non-space character right before it and no digit right after it.
/// Linear time.
pub fn math_spans(text: &str) -> Vec<MathSpan<'_>> {
    scan_spans(text, true).unwrap_or_else(|| scan_spans(text, false).unwrap_or_default())
}

/// Two words of plain letters in a row, outside `\text{...}`: a sentence, not math.
fn has_prose(span: &str) -> bool {
    let mut words = 0;
    let b = span.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"\\text") || b[i..].starts_with(b"\\mbox") {
            // Skip the command and its argument.
            let open = span[i..].find('{').map(|k| i + k);
            match open.and_then(|o| matching_brace(span, o)) {
                Some(close) => {
                    i = close + 1;
                    words = 0;
                    continue;
                }
                None => return false,
            }
        }
        if b[i] == b'\\' {
            // A command name is not a word.
            i += 1;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            words = 0;
            continue;
        }
        if b[i].is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            words = if i - start >= 2 { words + 1 } else { 0 };
            if words >= 2 {
                return true;
            }
            continue;
        }
        if !b[i].is_ascii_whitespace() && b[i] != b',' {
            words = 0;
        }
        i += 1;
    }
    false
}

/// One pass over the text; `tex`: single dollars pair up in order (`None` when that leaves one
/// open or makes a span of prose), else pandoc's rules.
fn scan_spans(text: &str, tex: bool) -> Option<Vec<MathSpan<'_>>> {
    let b = text.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    let mut no_close_before = 0;
    while i < b.len() {
        let rest = &text[i..];
        let pair = if rest.starts_with("\\$") {
            i += 2;
            continue;
        } else if rest.starts_with("$$") {
            Some(("$$", "$$"))
        } else if rest.starts_with("\\[") {
            Some(("\\[", "\\]"))
        } else if rest.starts_with("\\(") {
            Some(("\\(", "\\)"))
        } else {
            None
        };
        if let Some((open, close)) = pair {
            let body = &text[i + open.len()..];
            match body.find(close) {
                Some(k) if !body[..k].contains("\n\n") => {
                    let end = i + open.len() + k + close.len();
                    out.push(MathSpan {
                        content: &body[..k],
                        start: i,
                        end,
                    });
                    i = end;
                }
                _ => i += open.len(),
            }
            continue;
        }
        if tex && b[i] == b'$' {
            let close = text[i + 1..]
                .match_indices('$')
                .map(|(k, _)| i + 1 + k)
                .find(|&k| b[k - 1] != b'\\')?;
            let content = &text[i + 1..close];
            // A `$` right before a digit opens a price (`$5 and $6`), whatever came before.
            let price = b.get(close + 1).is_some_and(u8::is_ascii_digit);
            if b.get(close + 1) == Some(&b'$')
                || price
                || content.contains("\n\n")
                || has_prose(content)
            {
                return None;
            }
            out.push(MathSpan {
                content,
                start: i,
                end: close + 1,
            });
            i = close + 1;
            continue;
        }
        if b[i] == b'$'
            && i >= no_close_before
            && b.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace())
        {
            match closing_dollar(text, i + 1) {
                Ok(j) => {
                    out.push(MathSpan {
                        content: &text[i + 1..j],
                        start: i,
                        end: j + 1,
                    });
                    i = j + 1;
                    continue;
                }
                // No `$` opening before `barrier` can close either: the candidates it would
                // scan were all refused for reasons that do not depend on the opening.
                Err(barrier) => no_close_before = barrier,
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    Some(out)
}

/// Byte index of the `$` closing a single-dollar span whose content starts at `from`, or
/// `Err(barrier)`: where the search stopped (a blank line, a `$$`, the end of the text).
fn closing_dollar(text: &str, from: usize) -> Result<usize, usize> {
    let b = text.as_bytes();
    let mut j = from;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 1, // `\$` inside math is a dollar sign, not the end
            b'\n' if b.get(j + 1) == Some(&b'\n') => return Err(j),
            b'$' if b.get(j + 1) == Some(&b'$') => return Err(j), // a `$$` display opens
            b'$' => {
                let before_ok = j > from && !b[j - 1].is_ascii_whitespace();
                let after_ok = !b.get(j + 1).is_some_and(u8::is_ascii_digit);
                if before_ok && after_ok {
                    return Ok(j);
                }
            }
            _ => {}
        }
        j += 1;
    }
    Err(b.len())
}

/// The last math span of a text.
pub fn last_math_span(text: &str) -> Option<MathSpan<'_>> {
    math_spans(text).pop()
}

/// DeepSeekMath's cleanup: first line, no leading ':' and no trailing '.', '/', '。'. A
/// `\begin{...}` left open on the first line (a matrix written over several lines) extends the
/// answer to its `\end{...}`.
fn clean(ans: &str) -> String {
    let ans = ans.trim();
    let first = ans.lines().next().unwrap_or("");
    let first = if first.matches("\\begin{").count() > first.matches("\\end{").count() {
        whole_environment(ans).unwrap_or(first)
    } else {
        first
    };
    first
        .trim_start_matches(':')
        .trim_end_matches(['.', '/', '。'])
        .trim()
        .trim_end_matches('$')
        .trim_start_matches('$')
        .trim()
        .to_string()
}

/// `ans` up to the line that closes its last open `\begin{...}`.
fn whole_environment(ans: &str) -> Option<&str> {
    let mut depth = 0i64;
    let mut end = 0;
    for line in ans.split_inclusive('\n') {
        depth += line.matches("\\begin{").count() as i64 - line.matches("\\end{").count() as i64;
        end += line.len();
        if depth <= 0 {
            return Some(ans[..end].trim_end());
        }
    }
    None
}

/// GSM8K gold: the text after `####`, thousands separators removed.
pub fn gsm8k_gold(answer: &str) -> Option<String> {
    let (_, tail) = answer.rsplit_once("####")?;
    let g = tail.trim().replace(',', "");
    (!g.is_empty()).then_some(g)
}

/// MATH gold: the last `\boxed{}` of the reference solution.
pub fn math_gold(solution: &str) -> Option<String> {
    boxed_answers(solution).pop()
}

/// A multiple-choice letter from a completion (`The answer is (B)`, `\boxed{C}`, `answer: D`).
pub fn choice_letter(completion: &str, n_options: usize) -> Option<char> {
    let last = b'A' + n_options.clamp(1, 26) as u8 - 1;
    let ok = |c: char| c.is_ascii_uppercase() && (c as u8) <= last;
    let (ans, _) = extract_answer(completion);
    let cands = ans.trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace() || c == '$');
    let mut chars = cands.chars();
    if let (Some(c), None) = (chars.next().map(|c| c.to_ascii_uppercase()), chars.next())
        && ok(c)
    {
        return Some(c);
    }
    // "(C)" or "C)" or "C." at the start of the extracted text.
    let up = cands.to_ascii_uppercase();
    let c = up.chars().next()?;
    if ok(c) && up[1..].starts_with([')', '.', ':', ' ']) {
        return Some(c);
    }
    None
}

/// The option letters a completion chose, sorted (`"B"`, or `"ACD"` for multi-answer items):
/// a single letter via [`choice_letter`], else an extracted answer made only of letters.
pub fn choice_answer(completion: &str, n_options: usize) -> String {
    if let Some(c) = choice_letter(completion, n_options) {
        return c.to_string();
    }
    let (ans, _) = extract_answer(completion);
    let last = (b'A' + n_options.clamp(1, 26) as u8 - 1) as char;
    let cleaned = ans
        .replace(['(', ')', ',', ' ', '$', '和', '、'], "")
        .to_ascii_uppercase();
    if cleaned.is_empty() || !cleaned.chars().all(|c| ('A'..=last).contains(&c)) {
        return String::new();
    }
    let mut v: Vec<char> = cleaned.chars().collect();
    v.sort_unstable();
    v.dedup();
    v.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_with_nested_braces_and_fbox() {
        assert_eq!(
            boxed_answers(r"so \boxed{\frac{1}{2}} and \fbox{3}"),
            vec![r"\frac{1}{2}", "3"]
        );
        assert_eq!(boxed_answers(r"\boxed 5 is it"), vec!["5"]);
        assert_eq!(boxed_answers(r"\boxed{unclosed {"), Vec::<String>::new());
    }

    #[test]
    fn deepseekmath_order() {
        assert_eq!(
            extract_answer("The final answer is $\\frac{1}{2}$. I hope it is correct. \\boxed{3}")
                .0,
            "\\frac{1}{2}"
        );
        assert_eq!(extract_answer("x \\boxed{2} then \\boxed{4}.").0, "4");
        assert_eq!(extract_answer("So the answer is 42.\nDone").0, "42");
        assert_eq!(extract_answer("所以答案是：18。").0, "18");
        assert_eq!(
            extract_answer("```python\nprint(3)\n```\n```output\n3.5\n```\nok").0,
            "3.5"
        );
        assert_eq!(
            extract_answer("she pays 1,234 dollars then -7.5 more").0,
            "-7.5"
        );
        assert_eq!(extract_answer("no digits here").1, Source::None);
    }

    #[test]
    fn without_boxed_the_last_math_span_or_final_answer() {
        let cases = [
            (
                "Therefore $x \\geq 5$ is the solution.",
                "x \\geq 5",
                Source::MathSpan,
            ),
            (
                "The final answer is $\\frac{10}{9}$.",
                "\\frac{10}{9}",
                Source::FinalAnswer,
            ),
            (
                "so it is $-\\frac{10}{9}$",
                "-\\frac{10}{9}",
                Source::MathSpan,
            ),
            ("Final Answer: 42", "42", Source::FinalAnswer),
            (
                "**Final Answer**: $\\frac{1}{2}$",
                "\\frac{1}{2}",
                Source::FinalAnswer,
            ),
            ("We get \\[x = 3\\] at last", "x = 3", Source::MathSpan),
            ("hence \\(y=2\\).", "y=2", Source::MathSpan),
            ("$$\\sqrt{2}$$", "\\sqrt{2}", Source::MathSpan),
            // The answer phrase keeps only the span it starts with.
            (
                "The answer is $\\frac{1}{2}$ hours.",
                "\\frac{1}{2}",
                Source::TheAnswerIs,
            ),
            // Currency is not math: pandoc's rules for a single `$`.
            (
                "She pays $5 and then $6, 11 dollars in all.",
                "11",
                Source::LastNumber,
            ),
            ("It costs $18/day, so $18*2=$36", "36", Source::LastNumber),
            // A number after the last span is the answer the text ends on.
            (
                "Let $x$ be the apples. Then 5+6 = 11.",
                "11",
                Source::LastNumber,
            ),
        ];
        for (text, want, source) in cases {
            assert_eq!(extract_answer(text), (want.to_string(), source), "{text}");
        }
    }

    #[test]
    fn a_matrix_over_several_lines_is_kept_whole() {
        let text = "The answer is $\\begin{pmatrix} 1 \\\\\n 2 \\end{pmatrix}$.\nDone.";
        assert_eq!(
            extract_answer(text).0,
            "\\begin{pmatrix} 1 \\\\\n 2 \\end{pmatrix}"
        );
    }

    #[test]
    fn math_spans_follow_pandoc() {
        let spans = |t| {
            math_spans(t)
                .into_iter()
                .map(|s| s.content)
                .collect::<Vec<_>>()
        };
        // Dollars pair up as in TeX where that reads as math ...
        assert_eq!(spans("a $x$ b $ y$ c $z $ d"), vec!["x", " y", "z "]);
        assert_eq!(
            spans("is $ 130\\cdot 20=26$. The difference is $10$."),
            vec![" 130\\cdot 20=26", "10"]
        );
        // ... and by pandoc's rules where it does not: an odd count, or prose in a span.
        assert_eq!(spans("a $x$ b $5 and $6 c"), vec!["x"]);
        assert_eq!(spans("$x$ costs $5 and then $6 more"), vec!["x"]);
        assert_eq!(
            spans("$x \\text{ and then } y$"),
            vec!["x \\text{ and then } y"]
        );
        assert_eq!(spans("\\$5 and $\\$6$"), vec!["\\$6"]);
        assert_eq!(spans("$a\n\nb$"), Vec::<&str>::new());
        assert_eq!(spans("$1 each, $2 each"), Vec::<&str>::new());
        // Many unclosed dollars stay linear.
        let many = "$1 ".repeat(20_000);
        let t = std::time::Instant::now();
        assert!(math_spans(&many).is_empty());
        assert!(t.elapsed().as_secs() < 2);
    }

    #[test]
    fn gold_answers() {
        assert_eq!(gsm8k_gold("blah\n#### 1,200").as_deref(), Some("1200"));
        assert_eq!(
            math_gold(r"thus $\boxed{\dfrac{3}{4}}$.").as_deref(),
            Some(r"\dfrac{3}{4}")
        );
    }

    #[test]
    fn choice_letters() {
        assert_eq!(choice_letter("The answer is (B).", 4), Some('B'));
        assert_eq!(choice_letter("so \\boxed{C}", 4), Some('C'));
        assert_eq!(choice_letter("The answer is E", 4), None);
        assert_eq!(choice_letter("The answer is D) 12", 4), Some('D'));
        assert_eq!(choice_answer("所以答案是 D, A", 4), "AD");
        assert_eq!(choice_answer("The answer is (C)", 4), "C");
        assert_eq!(choice_answer("The answer is 42", 4), "");
    }
}
