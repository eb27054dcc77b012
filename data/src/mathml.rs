//! MathML to LaTeX for the common presentation elements (W3C MathML 3 §3): a TeX annotation is
//! used as is when the page carries one; otherwise mi / mn / mo / mtext, mrow, mfrac, msqrt,
//! mroot, msup, msub, msubsup, mover, munder, munderover, mfenced, mtable are converted.

use ego_tree::NodeRef;
use scraper::Node;

fn symbol(s: &str) -> String {
    let t = s.trim();
    let mapped = match t {
        "×" => "\\times ",
        "·" | "⋅" => "\\cdot ",
        "÷" => "\\div ",
        "±" => "\\pm ",
        "∓" => "\\mp ",
        "≤" => "\\le ",
        "≥" => "\\ge ",
        "≠" => "\\ne ",
        "≈" => "\\approx ",
        "≡" => "\\equiv ",
        "∞" => "\\infty ",
        "∑" => "\\sum ",
        "∏" => "\\prod ",
        "∫" => "\\int ",
        "∂" => "\\partial ",
        "∇" => "\\nabla ",
        "→" => "\\to ",
        "⇒" => "\\Rightarrow ",
        "⇔" => "\\Leftrightarrow ",
        "∈" => "\\in ",
        "∉" => "\\notin ",
        "⊂" => "\\subset ",
        "⊆" => "\\subseteq ",
        "∪" => "\\cup ",
        "∩" => "\\cap ",
        "∅" => "\\emptyset ",
        "∀" => "\\forall ",
        "∃" => "\\exists ",
        "¬" => "\\neg ",
        "∧" => "\\wedge ",
        "∨" => "\\vee ",
        "−" => "-",
        "\u{2061}" | "\u{2062}" | "\u{2063}" => "",
        "α" => "\\alpha ",
        "β" => "\\beta ",
        "γ" => "\\gamma ",
        "δ" => "\\delta ",
        "ε" | "ϵ" => "\\epsilon ",
        "θ" => "\\theta ",
        "λ" => "\\lambda ",
        "μ" => "\\mu ",
        "π" => "\\pi ",
        "σ" => "\\sigma ",
        "τ" => "\\tau ",
        "φ" | "ϕ" => "\\phi ",
        "ω" => "\\omega ",
        "Δ" => "\\Delta ",
        "Σ" => "\\Sigma ",
        "Ω" => "\\Omega ",
        "Γ" => "\\Gamma ",
        "Π" => "\\Pi ",
        "{" => "\\{",
        "}" => "\\}",
        _ => return t.to_string(),
    };
    mapped.to_string()
}

const FUNCTIONS: &[&str] = &[
    "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "lim", "max", "min", "det",
    "gcd", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
];

fn text_of(node: NodeRef<Node>) -> String {
    node.descendants()
        .filter_map(|d| {
            if let Node::Text(t) = d.value() {
                Some(t.to_string())
            } else {
                None
            }
        })
        .collect()
}

fn element_children(node: NodeRef<Node>) -> Vec<NodeRef<Node>> {
    node.children()
        .filter(|c| matches!(c.value(), Node::Element(_)))
        .collect()
}

/// Wrap in braces unless a single character.
fn group(s: &str) -> String {
    let t = s.trim();
    let command =
        t.starts_with('\\') && t.len() > 1 && t[1..].chars().all(|c| c.is_ascii_alphabetic());
    if t.chars().count() == 1 || command {
        t.to_string()
    } else {
        format!("{{{t}}}")
    }
}

/// LaTeX for a `<math>` element (or any MathML node). Depth is bounded.
pub fn to_latex(node: NodeRef<Node>) -> String {
    convert(node, 0).trim().to_string()
}

fn convert(node: NodeRef<Node>, depth: usize) -> String {
    if depth > 200 {
        return String::new();
    }
    let el = match node.value() {
        Node::Element(e) => e,
        Node::Text(t) => return symbol(t),
        _ => return String::new(),
    };
    let kids = element_children(node);
    let arg = |i: usize| {
        kids.get(i)
            .map(|k| convert(*k, depth + 1))
            .unwrap_or_default()
    };
    let all = || {
        kids.iter()
            .map(|k| convert(*k, depth + 1))
            .collect::<String>()
    };
    match el.name() {
        "semantics" => {
            // Prefer the page's own TeX.
            for k in &kids {
                if let Node::Element(a) = k.value()
                    && a.name() == "annotation"
                    && a.attr("encoding").is_some_and(|e| e.contains("tex"))
                {
                    return text_of(*k).trim().to_string();
                }
            }
            arg(0)
        }
        "annotation" | "annotation-xml" | "mphantom" | "none" | "mprescripts" => String::new(),
        "mi" => {
            let t = text_of(node).trim().to_string();
            if FUNCTIONS.contains(&t.as_str()) {
                format!("\\{t} ")
            } else if t.chars().count() > 1 && t.chars().all(|c| c.is_ascii_alphabetic()) {
                format!("\\mathrm{{{t}}}")
            } else {
                symbol(&t)
            }
        }
        "mn" => text_of(node).trim().to_string(),
        "mo" => symbol(&text_of(node)),
        "mtext" | "ms" => {
            let t = text_of(node);
            if t.trim().is_empty() {
                " ".into()
            } else {
                format!("\\text{{{}}}", t.trim())
            }
        }
        "mspace" => " ".into(),
        "mfrac" => format!("\\frac{{{}}}{{{}}}", arg(0), arg(1)),
        "msqrt" => format!("\\sqrt{{{}}}", all()),
        "mroot" => format!("\\sqrt[{}]{{{}}}", arg(1), arg(0)),
        "msup" => format!("{}^{}", group(&arg(0)), group(&arg(1))),
        "msub" => format!("{}_{}", group(&arg(0)), group(&arg(1))),
        "msubsup" | "munderover" => {
            format!("{}_{}^{}", group(&arg(0)), group(&arg(1)), group(&arg(2)))
        }
        "mover" => {
            let over = arg(1);
            match over.trim() {
                "¯" | "‾" | "_" | "―" => format!("\\overline{{{}}}", arg(0)),
                "^" | "ˆ" => format!("\\hat{{{}}}", arg(0)),
                "→" | "\\to" => format!("\\vec{{{}}}", arg(0)),
                "~" | "˜" => format!("\\tilde{{{}}}", arg(0)),
                "." | "˙" => format!("\\dot{{{}}}", arg(0)),
                _ => format!("\\overset{{{over}}}{{{}}}", arg(0)),
            }
        }
        "munder" => format!("\\underset{{{}}}{{{}}}", arg(1), arg(0)),
        "mfenced" => {
            let open = el.attr("open").unwrap_or("(");
            let close = el.attr("close").unwrap_or(")");
            let sep = el.attr("separators").unwrap_or(",");
            let parts: Vec<String> = kids.iter().map(|k| convert(*k, depth + 1)).collect();
            format!(
                "{}{}{}",
                symbol(open),
                parts.join(
                    sep.chars()
                        .next()
                        .map(String::from)
                        .as_deref()
                        .unwrap_or(",")
                ),
                symbol(close)
            )
        }
        "mtable" => {
            let rows: Vec<String> = kids
                .iter()
                .map(|r| {
                    element_children(*r)
                        .iter()
                        .map(|c| convert(*c, depth + 1))
                        .collect::<Vec<_>>()
                        .join(" & ")
                })
                .collect();
            format!("\\begin{{matrix}}{}\\end{{matrix}}", rows.join(" \\\\ "))
        }
        _ => all(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::Html;

    fn tex(mathml: &str) -> String {
        let doc = Html::parse_fragment(mathml);
        let m = doc
            .tree
            .root()
            .descendants()
            .find(|n| matches!(n.value(), Node::Element(e) if e.name() == "math"))
            .unwrap();
        to_latex(m)
    }

    #[test]
    fn common_elements() {
        assert_eq!(
            tex("<math><msup><mi>x</mi><mn>2</mn></msup><mo>+</mo><mn>1</mn></math>"),
            "x^2+1"
        );
        assert_eq!(
            tex(
                "<math><mfrac><mrow><mi>a</mi><mo>+</mo><mi>b</mi></mrow><mn>2</mn></mfrac></math>"
            ),
            "\\frac{a+b}{2}"
        );
        assert_eq!(
            tex(
                "<math><msqrt><mn>2</mn></msqrt><mo>×</mo><mroot><mn>8</mn><mn>3</mn></mroot></math>"
            ),
            "\\sqrt{2}\\times \\sqrt[3]{8}"
        );
        assert_eq!(
            tex(
                "<math><msubsup><mo>∑</mo><mrow><mi>i</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi></msubsup><msub><mi>a</mi><mi>i</mi></msub></math>"
            ),
            "\\sum_{i=1}^na_i"
        );
        assert_eq!(tex("<math><mi>sin</mi><mi>θ</mi></math>"), "\\sin \\theta");
        assert_eq!(
            tex("<math><mover><mi>x</mi><mo>¯</mo></mover></math>"),
            "\\overline{x}"
        );
    }

    #[test]
    fn tex_annotation_wins() {
        let m = r#"<math><semantics><mrow><mi>x</mi></mrow><annotation encoding="application/x-tex">\alpha_1</annotation></semantics></math>"#;
        assert_eq!(tex(m), "\\alpha_1");
    }
}
