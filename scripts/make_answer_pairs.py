#!/usr/bin/env python3
"""Answer pairs with expected verdicts, cross-checked with math-verify (HF's grader, PyPI).

    pip install math-verify
    python3 scripts/make_answer_pairs.py     # writes eval/tests/fixtures/answer_pairs.jsonl

Pairs: hand-written cases for every equivalence rule (expected verdict by construction), plus
real MATH500 pairs: the `\\boxed{}` of each reference solution vs the given answer (equal), and
the answer with one digit changed (not equal). Each line records math-verify's verdict next to
the expected one; `eval/tests/answer_pairs.rs` checks dsmath's grader against `expected` and
prints the agreement with math-verify. Disagreements of math-verify with `expected` are listed by
this script with the reason recorded in the `note` of the hand-written cases.
"""
import json
import re
import sys
from pathlib import Path

from math_verify import parse, verify

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "eval/tests/fixtures/answer_pairs.jsonl"

# (pred, gold, expected, rule, note)
HAND = [
    ("\\frac{1}{2}", "0.5", True, "fraction-decimal", ""),
    ("\\dfrac{3}{4}", "\\frac34", True, "frac-normalise", ""),
    ("\\frac12", "\\frac{1}{2}", True, "frac-short", ""),
    (".5", "0.5", True, "leading-dot", ""),
    ("0.50", "\\frac{1}{2}", True, "trailing-zeros", ""),
    ("\\$29.00", "29", True, "dollars", ""),
    ("29 dollars", "29", True, "unit-word", "math-verify strips units only inside \\text{}; DeepSeekMath drops trailing unit words"),
    ("5\\text{ cm}", "5", True, "unit-text", ""),
    ("90^\\circ", "90", True, "degrees", ""),
    ("1,000", "1000", True, "thousands", ""),
    ("1,000,000", "10^6", True, "thousands-power", ""),
    ("10\\%", "0.1", True, "percent", "math-verify compares 10% as 10 unless told otherwise"),
    ("2.5\\times10^{3}", "2500", True, "scientific", ""),
    ("\\sqrt{8}", "2\\sqrt{2}", True, "radical", ""),
    ("\\sqrt3", "\\sqrt{3}", True, "radical-short", ""),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True, "radical-rationalise", ""),
    ("2\\pi", "\\pi+\\pi", True, "pi", ""),
    ("3.14159", "\\pi", True, "pi-numeric-1e-4", "DeepSeekMath math_equal: 1e-4 relative tolerance; math-verify compares at a stricter precision"),
    ("3.14", "\\pi", False, "pi-numeric-too-far", ""),
    ("2^{10}", "1024", True, "exponent", ""),
    ("2^{10}", "1023", False, "exponent-wrong", ""),
    ("2\\cdot 3", "6", True, "cdot", ""),
    ("23", "2\\cdot 3", False, "cdot-not-concatenated", ""),
    ("x+h", "h+x", True, "commutative", ""),
    ("x+", "x+h", False, "no-letter-dropped", ""),
    ("\\infty", "\\infty", True, "infinity", ""),
    ("-\\infty", "\\infty", False, "infinity-sign", ""),
    ("(1,2)", "(1, 2)", True, "tuple", ""),
    ("(2,1)", "(1,2)", False, "tuple-order", ""),
    ("1,-2", "-2,1", True, "unordered-list", ""),
    ("1,-3", "1,-2", False, "list-element", ""),
    ("(1,2]", "(1,2)", False, "interval-ends", ""),
    ("[1,2)", "[1, 2)", True, "interval", ""),
    ("(-\\infty,3)\\cup(4,\\infty)", "(4,\\infty)\\cup(-\\infty,3)", True, "union", ""),
    ("\\{1,2,3\\}", "\\{3,2,1\\}", True, "set", ""),
    ("\\{1,2\\}", "\\{1,3\\}", False, "set-element", ""),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True, "matrix", ""),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}", False, "matrix-order", ""),
    ("x=5", "5", True, "equation-rhs", ""),
    ("k = 3", "3", True, "equation-rhs", ""),
    ("y=2x+3", "2x+3", True, "equation-rhs-expr", ""),
    ("2x+3y=6", "6-3y=2x", True, "equation-sides", ""),
    ("x<3", "3>x", True, "inequality-flip", ""),
    ("x<3", "x\\le 3", False, "inequality-strict", ""),
    ("x^2+2x+1", "(x+1)^2", True, "symbolic", ""),
    ("\\frac{a}{b}+1", "\\frac{a+b}{b}", True, "symbolic-fraction", ""),
    ("2x", "x^2", False, "symbolic-different", ""),
    ("\\sin^2 x+\\cos^2 x", "1", True, "trig-identity", ""),
    ("3\\sqrt{2}+1", "1+\\sqrt{18}", True, "radical-sum", ""),
    ("\\frac{7}{8}", "0.875", True, "fraction-decimal", ""),
    ("\\frac{7}{8}", "0.87", False, "fraction-decimal-far", ""),
    ("-\\frac{1}{3}", "\\frac{-1}{3}", True, "sign", ""),
    ("\\frac{-1}{3}", "\\frac{1}{3}", False, "sign-wrong", ""),
    ("4!", "24", True, "factorial", ""),
    ("\\binom{5}{2}", "10", True, "binomial", ""),
    ("\\log_2 8", "3", True, "log", ""),
    ("|{-3}|", "3", True, "abs", ""),
    ("\\text{(B)}", "B", True, "letter", ""),
    ("", "0", False, "empty", ""),
    ("1/2", "\\frac{1}{2}", True, "slash", ""),
    ("\\pm 2", "\\pm2", True, "plus-minus", ""),
    ("2003^{2002^{2001}}", "2004^{2002^{2001}}", False, "hostile-exponent", "not a hang: a verdict"),
]


def digit_change(s: str):
    m = re.search(r"\d", s)
    if not m:
        return None
    d = str((int(m.group()) + 1) % 10)
    return s[: m.start()] + d + s[m.end() :]


def boxed(text: str):
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    j, depth = i + len("\\boxed"), 0
    for k in range(j, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return text[j + 1 : k]
    return None


def mv(pred: str, gold: str) -> bool:
    try:
        return bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))
    except Exception:
        return False


def main():
    rows = [dict(pred=p, gold=g, expected=e, rule=r, note=n, source="hand") for p, g, e, r, n in HAND]
    for line in open(ROOT / "eval/data/math500/test.jsonl"):
        v = json.loads(line)
        ans, b = v["answer"], boxed(v["solution"])
        if b is not None and len(ans) <= 40:
            rows.append(dict(pred=b, gold=ans, expected=True, rule="math500-boxed-vs-answer", note="", source=v["unique_id"]))
        wrong = digit_change(ans)
        if wrong is not None and len(ans) <= 40 and wrong != ans:
            rows.append(dict(pred=wrong, gold=ans, expected=False, rule="math500-digit-changed", note="", source=v["unique_id"]))
        if len(rows) >= 330:
            break
    agree = 0
    dis = []
    for r in rows:
        r["math_verify"] = mv(r["pred"], r["gold"])
        if r["math_verify"] == r["expected"]:
            agree += 1
        else:
            dis.append(r)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} pairs; math-verify agrees with the expected verdict on {agree}", file=sys.stderr)
    for r in dis:
        print(f"  math-verify={r['math_verify']} expected={r['expected']} [{r['rule']}] {r['pred']!r} vs {r['gold']!r} {r['note']}", file=sys.stderr)


if __name__ == "__main__":
    main()
