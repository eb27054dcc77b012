//! Answer extraction from a completion, in DeepSeekMath's order (evaluation/data_processing/
//! answer_extraction.py): `final answer is $...$. I hope`, every `\boxed{}` / `\fbox{}` (brace
//! matched), `The answer is`, `答案是`, the last ```output block, the last number; then first-line
//! and trailing-punctuation cleanup.

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
        (vec![rest.trim().to_string()], Source::TheAnswerIs)
    } else if let Some((_, rest)) = completion.split_once("答案是") {
        (
            vec![rest.trim().trim_start_matches(['：', ':']).to_string()],
            Source::ChineseAnswer,
        )
    } else if let Some(out) = last_program_output(completion) {
        (vec![out], Source::ProgramOutput)
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

/// DeepSeekMath's cleanup: first line, no leading ':' and no trailing '.', '/', '。'.
fn clean(ans: &str) -> String {
    let first = ans.trim().lines().next().unwrap_or("");
    first
        .trim_start_matches(':')
        .trim_end_matches(['.', '/', '。'])
        .trim()
        .trim_end_matches('$')
        .trim_start_matches('$')
        .trim()
        .to_string()
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
