#!/usr/bin/env python3
"""Answers written the way models write them, with expected verdicts, cross-checked with
math-verify (HF's grader, PyPI): eval/tests/fixtures/answer_forms.jsonl.

    pip install math-verify
    python3 scripts/make_answer_forms.py

Rows are of two kinds. `pair`: an extracted answer `pred` against `gold` (dsmath: `is_equiv`,
math-verify: `verify(parse("$gold$"), parse("$pred$"))`). `completion`: a whole completion
against `gold` (dsmath: extraction + equivalence with the MATH rules, math-verify:
`verify(parse("$gold$"), parse(completion))`, its own extraction). Sources:

- `hand`: written here for each class of the grader issue (relations, equation chains, number
  formats, mixed numbers, e-notation, repeating decimals, matrices, constants and sets,
  extraction without `\\boxed{}`), the expected verdict by construction;
- `math-solution:<idx>`: MATH test reference solutions with `\\boxed{X}` replaced by `X`, so the
  answer is the last math span of real text (expected: equal to the gold);
- `smollm2:<bench>:<id>`: completions of SmolLM2-135M-Instruct (the real checkpoint, greedy,
  `cargo xtask eval --model runs/smollm2 --bench gsm8k,math500 --limit 40 --max-new-tokens 320
  --batch 20`, copied into eval/tests/fixtures/smollm2_completions.jsonl). The model gets 0 / 40
  and 1 / 40 right by the old grader; reading all 80, none is right (the one "right" answer
  restated `(\\sqrt{7}+\\sqrt{5})^6` for its floor 13535), so every one is expected wrong: a
  check that real output gives no false positive.

Every row where math-verify disagrees with `expected` carries a `note` (per row, or per rule in
MV_NOTES); the script fails when one has none. `eval/tests/answer_pairs.rs` checks dsmath's
verdict on every row.
"""
import json
import re
import sys
from pathlib import Path

from math_verify import parse, verify

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "eval/tests/fixtures/answer_forms.jsonl"
SMOL = ROOT / "eval/tests/fixtures/smollm2_completions.jsonl"

# (pred, gold, expected, rule)
PAIRS = [
    # relations
    ("x \\geq 5", "x >= 5", True, "relation-geq"),
    ("x \\geq 5", "5 \\leq x", True, "relation-flip"),
    ("x \\ge 5", "x \\geq 5", True, "relation-geq"),
    ("x >= 5", "5 <= x", True, "relation-flip"),
    ("x \\geq 5", "x > 5", False, "relation-strictness"),
    ("x \\geq 5", "x \\leq 5", False, "relation-direction"),
    ("x \\neq 3", "x != 3", True, "relation-neq"),
    ("x \\ne 3", "x \\neq 3", True, "relation-neq"),
    ("x \\neq 3", "x = 3", False, "relation-neq"),
    ("x \\lt 3", "x < 3", True, "relation-lt-gt"),
    ("x \\gt 3", "3 < x", True, "relation-lt-gt"),
    ("y \\gt -2", "y > -2", True, "relation-lt-gt"),
    ("-x > -1", "x < 1", True, "relation-scaled"),
    ("-x > -1", "x > 1", False, "relation-scaled"),
    ("2x \\leq 6", "x \\leq 3", True, "relation-scaled"),
    ("-2x \\leq 6", "x \\leq -3", False, "relation-scaled"),
    ("-2x \\leq 6", "x \\geq -3", True, "relation-scaled"),
    ("3x - 6 > 0", "x > 2", True, "relation-scaled"),
    ("x + 1 < 2x", "x > 1", True, "relation-scaled"),
    ("2x = 10", "x = 5", True, "equation-scaled"),
    ("2x = 10", "x = 6", False, "equation-scaled"),
    ("x \\geq 5", "[5, \\infty)", True, "relation-interval"),
    ("x > 5", "[5, \\infty)", False, "relation-interval"),
    ("x > 5", "(5, \\infty)", True, "relation-interval"),
    ("x < -2", "(-\\infty, -2)", True, "relation-interval"),
    ("1 < x \\leq 3", "(1, 3]", True, "relation-interval"),
    ("1 \\leq x \\leq 3", "[1, 3]", True, "relation-interval"),
    ("1 < x < 3", "[1, 3]", False, "relation-interval"),
    ("-1 \\le x < 4", "[-1,4)", True, "relation-interval"),
    ("3 > x > 1", "(1, 3)", True, "relation-interval"),
    ("x \\geq \\frac{1}{2}", "[0.5, \\infty)", True, "relation-interval"),
    ("5 \\leq x", "x \\geq 5", True, "relation-flip"),
    ("a \\leq b", "b \\geq a", True, "relation-flip"),
    ("x^2 \\geq 4", "x^2 \\geq 4", True, "relation-same"),
    # equation chains and approximations
    ("x = 5+5+1 = 11", "11", True, "chain"),
    ("x = 5+5+1 = 12", "11", False, "chain"),
    ("5+5+1 = 11", "11", True, "chain"),
    ("2 \\cdot 3 + 4 = 10", "10", True, "chain"),
    ("x = 3 \\cdot 4 = 12", "x = 12", True, "chain"),
    ("x = 2^3 = 8", "8", True, "chain"),
    ("x = 2^3 = 8", "9", False, "chain"),
    ("A = \\pi r^2 = 25\\pi", "25\\pi", True, "chain"),
    ("P = 2(3+4) = 14", "14", True, "chain"),
    ("x \\approx 11", "11", True, "approx"),
    ("x \\approx 11.0", "11", True, "approx"),
    ("x \\approx 12", "11", False, "approx"),
    ("x = 1/3 \\approx 0.33", "\\frac{1}{3}", True, "approx"),
    ("x = \\frac{1}{3} \\approx 0.333", "\\frac{1}{3}", True, "approx"),
    ("x \\approx 0.33", "\\frac{1}{3}", False, "approx"),
    ("\\sqrt{2} \\approx 1.414", "\\sqrt{2}", True, "approx"),
    ("\\pi \\approx 3.14159", "\\pi", True, "approx"),
    ("t \\approx 2.5", "2.5", True, "approx"),
    ("t \\approx 2.5", "2.6", False, "approx"),
    ("x ≈ 7", "7", True, "approx"),
    # number formats
    ("1 000", "1000", True, "number-space-thousands"),
    ("12 500", "12500", True, "number-space-thousands"),
    ("1\\,000\\,000", "1000000", True, "number-space-thousands"),
    ("1 000", "100", False, "number-space-thousands"),
    ("2,74", "2.74", True, "decimal-comma"),
    ("1000,99", "1000.99", True, "decimal-comma"),
    ("0,5", "\\frac{1}{2}", True, "decimal-comma"),
    ("-3,25", "-3.25", True, "decimal-comma"),
    ("2,74", "2.75", False, "decimal-comma"),
    ("1,5", "1", False, "list-not-member"),
    ("1,-2", "1,-3", False, "list-element"),
    ("1, 2", "2, 1", True, "list-unordered"),
    ("1,000", "1000", True, "thousands"),
    ("28 percent", "28\\%", True, "percent-word"),
    ("28 pct", "28\\%", True, "percent-word"),
    ("28 per cent", "28\\%", True, "percent-word"),
    ("28 percent", "28", True, "percent-word"),
    ("28 percent", "0.28", True, "percent-word"),
    ("28 percent", "29\\%", False, "percent-word"),
    ("12.5 percent", "12.5\\%", True, "percent-word"),
    ("5\\textnormal{ cm}", "5", True, "unit-textnormal"),
    ("5 \\textnormal{cm}^2", "5", True, "unit-textnormal"),
    ("\\textbf{12}", "12", True, "unit-textbf"),
    ("12\\textbf{ apples}", "12", True, "unit-textbf"),
    ("12\\textit{ meters}", "12", True, "unit-textit"),
    ("\\textnormal{(C)}", "C", True, "letter-textnormal"),
    ("12 apples", "12", True, "unit-word"),
    ("18 dollars per hour", "18", True, "unit-word"),
    ("7 ways", "7", True, "unit-word"),
    ("7 ways", "8", False, "unit-word"),
    ("5 and 6", "5", False, "list-not-member"),
    ("3 or 4", "3", False, "list-not-member"),
    ("2.5 million", "2500000", True, "scale-word"),
    ("3 thousand", "3000", True, "scale-word"),
    ("1.2 billion", "1200000000", True, "scale-word"),
    ("0.0833333333333333", "\\frac{1}{12}", True, "long-decimal"),
    ("0.3333333333", "\\frac{1}{3}", True, "long-decimal"),
    ("0.6666666666666666", "\\frac{2}{3}", True, "long-decimal"),
    ("1.4142135623730951", "\\sqrt{2}", True, "long-decimal"),
    ("0.14285714285714285", "\\frac{1}{7}", True, "long-decimal"),
    ("0.083", "\\frac{1}{12}", False, "short-decimal"),
    ("4.6667", "\\frac{14}{3}", False, "short-decimal"),
    ("0.33", "\\frac{1}{3}", False, "short-decimal"),
    ("0.0833333333333333", "\\frac{1}{11}", False, "long-decimal"),
    ("0.125", "\\frac{1}{8}", True, "exact-decimal"),
    # mixed numbers, e-notation, repeating decimals
    ("3\\frac{1}{2}", "\\frac{7}{2}", True, "mixed-number"),
    ("3 \\frac{1}{2}", "3.5", True, "mixed-number"),
    ("-3\\frac{1}{2}", "-\\frac{7}{2}", True, "mixed-number"),
    ("2\\frac{3}{4}", "\\frac{11}{4}", True, "mixed-number"),
    ("2\\frac{3}{4}", "\\frac{3}{2}", False, "mixed-number"),
    ("1\\dfrac{1}{3}", "\\frac{4}{3}", True, "mixed-number"),
    ("10\\frac{1}{2}", "10.5", True, "mixed-number"),
    ("2\\frac{\\sqrt{3}}{3}", "\\frac{2\\sqrt{3}}{3}", True, "not-mixed-product"),
    ("2\\frac{x}{3}", "\\frac{2x}{3}", True, "not-mixed-product"),
    ("6.02e23", "6.02\\times10^{23}", True, "e-notation"),
    ("6.02e23", "6.02 \\times 10^{22}", False, "e-notation"),
    ("1e-5", "0.00001", True, "e-notation"),
    ("1E6", "1000000", True, "e-notation"),
    ("3.5e+2", "350", True, "e-notation"),
    ("2.5e-3", "\\frac{1}{400}", True, "e-notation"),
    ("1.5e", "\\frac{3e}{2}", True, "e-constant"),
    ("2e", "2e", True, "e-constant"),
    ("1.\\overline{6}", "\\frac{5}{3}", True, "repeating-decimal"),
    ("0.\\overline{3}", "\\frac{1}{3}", True, "repeating-decimal"),
    ("0.\\overline{142857}", "\\frac{1}{7}", True, "repeating-decimal"),
    ("0.1\\overline{6}", "\\frac{1}{6}", True, "repeating-decimal"),
    ("0.1\\overline{36}", "\\frac{3}{22}", True, "repeating-decimal"),
    ("2.\\overline{45}", "\\frac{27}{11}", True, "repeating-decimal"),
    ("0.\\overline{3}", "0.3", False, "repeating-decimal"),
    ("0.\\overline{6}", "\\frac{1}{3}", False, "repeating-decimal"),
    # matrices
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True, "matrix-space"),
    ("\\begin{pmatrix} 1 & 2 \\\\\n 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True, "matrix-linebreak"),
    ("\\begin{pmatrix}\n1 \\\\\n-2\n\\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", True, "matrix-linebreak"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", False, "matrix-linebreak"),
    ("\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True, "matrix-array"),
    ("\\left[\\begin{array}{c} 5 \\\\ -1 \\end{array}\\right]", "\\begin{pmatrix} 5 \\\\ -1 \\end{pmatrix}", True, "matrix-array"),
    ("\\left(\\begin{array}{cc} 0 & 1 \\\\ 1 & 0 \\end{array}\\right)", "\\begin{bmatrix}0&1\\\\1&0\\end{bmatrix}", True, "matrix-array"),
    ("\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]", "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}", False, "matrix-array"),
    ("\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True, "matrix-bmatrix"),
    ("\\begin{bmatrix} \\frac{1}{2} \\\\ 0.25 \\end{bmatrix}", "\\begin{pmatrix} 0.5 \\\\ \\frac{1}{4} \\end{pmatrix}", True, "matrix-bmatrix"),
    ("the matrix is \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True, "matrix-sentence"),
    ("So $\\mathbf{v} = \\begin{pmatrix} 3 \\\\ 1 \\end{pmatrix}$ works", "\\begin{pmatrix}3\\\\1\\end{pmatrix}", True, "matrix-sentence"),
    ("the matrix is \\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False, "matrix-sentence"),
    ("2\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False, "matrix-scaled"),
    ("\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", False, "matrix-shape"),
    # constants and sets
    ("\\ln e", "1", True, "constant-ln"),
    ("\\ln e^2", "2", True, "constant-ln"),
    ("\\ln 1", "0", True, "constant-ln"),
    ("\\ln e", "e", False, "constant-ln"),
    ("e^{i\\pi}", "-1", True, "complex"),
    ("e^{i\\pi}", "1", False, "complex"),
    ("i^2", "-1", True, "complex"),
    ("(1+i)^2", "2i", True, "complex"),
    ("\\frac{1}{i}", "-i", True, "complex"),
    ("3+4i", "4i+3", True, "complex"),
    ("3+4i", "4+3i", False, "complex"),
    ("\\sqrt{-4}", "2i", True, "complex"),
    ("\\mathbb{R}", "(-\\infty, \\infty)", True, "set-reals"),
    ("(-\\infty,\\infty)", "\\mathbb{R}", True, "set-reals"),
    ("\\text{all real numbers}", "(-\\infty,\\infty)", True, "set-reals"),
    ("\\mathbb{R}", "(0, \\infty)", False, "set-reals"),
    ("\\left( 5 \\right)", "5", True, "redundant-parens"),
    ("\\left(\\frac{1}{2}\\right)", "0.5", True, "redundant-parens"),
    ("(-3)", "-3", True, "redundant-parens"),
    ("\\left( 5 \\right)", "6", False, "redundant-parens"),
    ("\\left(\\frac{1}{2}, 3\\right)", "(0.5, 3)", True, "tuple-leading-command"),
    ("(\\sqrt{2}, 1)", "(1, \\sqrt{2})", False, "tuple-order"),
    ("\\{\\}", "\\emptyset", True, "set-empty"),
    ("\\varnothing", "\\emptyset", True, "set-empty"),
]

# (completion, gold, expected, rule)
COMPLETIONS = [
    ("Therefore $x \\geq 5$ is the solution.", "[5,\\infty)", True, "extract-math-span"),
    ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5", True, "extract-math-span"),
    ("The final answer is $\\frac{10}{9}$.", "\\frac{10}{9}", True, "extract-final-answer"),
    ("The final answer is $\\frac{10}{9}$.", "\\frac{9}{10}", False, "extract-final-answer"),
    ("Putting it together, we get $-\\frac{10}{9}$", "-\\frac{10}{9}", True, "extract-math-span"),
    ("$-\\frac{10}{9}$", "-\\frac{10}{9}", True, "extract-math-span"),
    ("Final Answer: 42", "42", True, "extract-final-answer"),
    ("**Final Answer**: $\\frac{1}{2}$", "\\frac{1}{2}", True, "extract-final-answer"),
    ("The final answer is 18 dollars.", "18", True, "extract-final-answer"),
    ("We find \\[x = 3\\] at last", "3", True, "extract-math-span"),
    ("Hence \\(y=2\\).", "2", True, "extract-math-span"),
    ("So the area is\n$$\\frac{25\\pi}{4}$$", "\\frac{25\\pi}{4}", True, "extract-math-span"),
    ("The answer is $\\frac{1}{2}$ hours.", "\\frac{1}{2}", True, "extract-answer-span"),
    ("The answer is $\\begin{pmatrix} 1 \\\\\n 2 \\end{pmatrix}$.", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True, "extract-matrix-lines"),
    ("She pays $5 and then $6, so 11 dollars in all.", "11", True, "extract-currency"),
    ("It costs $18 a day, so two days cost $36", "36", True, "extract-currency"),
    ("Each costs $2.50 and she buys 4, so she pays $10.", "10", True, "extract-currency"),
    ("Let $x$ be the number of apples. Then 5 + 6 = 11.", "11", True, "extract-number-after-span"),
    ("Let $x$ be the number of apples. Then 5 + 6 = 11.", "5", False, "extract-number-after-span"),
    ("Since $2x = 10$, $x = 5$.", "5", True, "extract-math-span"),
    ("Solving, $x = 1/3 \\approx 0.33$.", "\\frac{1}{3}", True, "extract-math-span"),
    ("The total is $5+5+1 = 11$.", "11", True, "extract-math-span"),
    ("Thus the solution set is $\\mathbb{R}$.", "(-\\infty,\\infty)", True, "extract-math-span"),
    ("Converting, $1.\\overline{6} = \\frac{5}{3}$.", "\\frac{5}{3}", True, "extract-math-span"),
    ("It takes $3\\frac{1}{2}$ hours.", "\\frac{7}{2}", True, "extract-math-span"),
]

# Why math-verify 0.9.0 gives another verdict, per rule (read off its `parse` output).
MV_NOTES = {
    "relation-scaled": "math-verify compares the two relations side by side (2x <= 6 against x <= 3), not up to a positive factor",
    "equation-scaled": "math-verify compares Eq(2x, 10) with Eq(x, 5) side by side",
    "relation-interval": "math-verify keeps x >= 5 a relation and does not compare it with the interval it describes",
    "number-space-thousands": "math-verify parses `1 000` as the product 1*000 = 0",
    "decimal-comma": "math-verify parses `2,74` as the set {2, 74}",
    "unit-word": "math-verify parses bare words after the number as a product of one-letter symbols",
    "scale-word": "math-verify parses `million` as a product of one-letter symbols",
    "e-notation": "math-verify parses `6.02e23` as 6.02 * E * 23",
    "repeating-decimal": "math-verify drops the \\overline{} and reads `1.\\overline{6}` as 1",
    "matrix-linebreak": "math-verify fails on the line break after \\\\ and falls back to the last number",
    "matrix-sentence": "math-verify's extraction returns a number from inside the matrix (2), not the matrix",
    "complex": "math-verify parses i as a plain symbol, so e^{i pi} stays exp(pi*i)",
    "set-reals": "math-verify parses `\\text{all real numbers}` as the symbol allrealnumbers",
    "set-empty": "math-verify parses \\varnothing as a symbol, \\emptyset as EmptySet",
    "extract-math-span": "math-verify gathers every span of the last sentence into one answer (a set of equations, or x >= 5 kept as a relation)",
    "extract-matrix-lines": "math-verify fails on the matrix written over two lines",
    "math-solution-unboxed": "math-verify gathers both spans of the last sentence (`-2 <= x <= 7` and `x in [-2,7]`) into one answer",
}


def boxed_span(text: str):
    """(start, end, content) of the last \\boxed{...} of a text."""
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    depth = 0
    for k in range(i + len("\\boxed"), len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return i, k + 1, text[i + len("\\boxed{") : k]
    return None


def mv_pair(pred: str, gold: str) -> bool:
    try:
        return bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))
    except Exception:
        return False


def mv_completion(completion: str, gold: str) -> bool:
    try:
        return bool(verify(parse(f"${gold}$"), parse(completion)))
    except Exception:
        return False


def math_solution_rows(limit: int):
    """MATH reference solutions whose last math span is the boxed answer, box removed."""
    rows = []
    for line in open(ROOT / "eval/data/math/test.jsonl"):
        v = json.loads(line)
        sol = v["solution"]
        b = boxed_span(sol)
        if b is None or sol.count("\\boxed") != 1 or len(b[2]) > 40:
            continue
        start, end, content = b
        stripped = sol[:start] + content + sol[end:]
        # Only where the box sat alone in the last `$...$` of the text, e.g. `is $\\boxed{5}$.`
        tail = sol[end:]
        if not (sol[:start].endswith("$") and tail.startswith("$") and not re.search(r"[\d$]", tail[1:])):
            continue
        rows.append(dict(kind="completion", completion=stripped, gold=content, expected=True,
                         rule="math-solution-unboxed", source=f"math-solution:{v.get('idx', '')}", note=""))
        if len(rows) >= limit:
            break
    return rows


def smollm2_rows():
    """Completions of the real checkpoint with the verdicts checked by hand (`expected`)."""
    if not SMOL.exists():
        return []
    rows = []
    for line in open(SMOL):
        v = json.loads(line)
        rows.append(dict(kind="completion", completion=v["completion"], gold=v["gold"], expected=v["expected"],
                         rule=v["rule"], source=v["source"], note=v.get("note", "")))
    return rows


def main():
    rows = [dict(kind="pair", pred=p, gold=g, expected=e, rule=r, source="hand", note="") for p, g, e, r in PAIRS]
    rows += [dict(kind="completion", completion=c, gold=g, expected=e, rule=r, source="hand", note="")
             for c, g, e, r in COMPLETIONS]
    rows += math_solution_rows(60)
    rows += smollm2_rows()
    missing = []
    agree = 0
    for r in rows:
        r["math_verify"] = mv_pair(r["pred"], r["gold"]) if r["kind"] == "pair" else mv_completion(r["completion"], r["gold"])
        if r["math_verify"] == r["expected"]:
            agree += 1
        elif not r["note"]:
            r["note"] = MV_NOTES.get(r["rule"], "")
            if not r["note"]:
                missing.append(r)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows; math-verify agrees with the expected verdict on {agree}", file=sys.stderr)
    for r in rows:
        if r["math_verify"] != r["expected"]:
            what = r.get("pred") or r["completion"][-80:]
            print(f"  math-verify={r['math_verify']} expected={r['expected']} [{r['rule']}] {what!r} vs {r['gold']!r}: {r['note']}",
                  file=sys.stderr)
    if missing:
        sys.exit(f"{len(missing)} disagreements without a note")


if __name__ == "__main__":
    main()
