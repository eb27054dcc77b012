//! Math-aware HTML to text (DeepSeekMath §2.1 keeps the math of math pages): built on html5ever
//! through `scraper`. Drops scripts, styles and boilerplate (nav, header, footer, aside, sidebars,
//! menus, hidden elements); keeps math as LaTeX: MathJax / KaTeX `<script type="math/tex">`,
//! `$..$` / `\(..\)` text as is, MathML converted to LaTeX (TeX annotations preferred), and the
//! LaTeX in `alt` of formula images (wp-latex, codecogs, mimetex).

use ego_tree::NodeRef;
use scraper::{Html, Node};
use serde::Serialize;

/// What the extractor found, for the per-document stats.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MathStats {
    /// `<script type="math/tex">` blocks.
    pub tex_scripts: usize,
    /// `<math>` elements.
    pub mathml: usize,
    /// Formula images with LaTeX in `alt`.
    pub latex_images: usize,
    /// `$`, `$$`, `\(` or `\[` delimiters in the visible text.
    pub delimiters: usize,
}

impl MathStats {
    pub fn total(&self) -> usize {
        self.tex_scripts + self.mathml + self.latex_images + self.delimiters
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Extracted {
    pub title: String,
    pub text: String,
    pub math: MathStats,
    /// Bytes of HTML in, characters of text out.
    pub html_bytes: usize,
}

const SKIP_TAGS: &[&str] = &[
    "head", "style", "noscript", "nav", "header", "footer", "aside", "form", "button", "select",
    "option", "iframe", "svg", "canvas", "template", "object", "embed", "audio", "video", "map",
];
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "dl",
    "table",
    "tr",
    "blockquote",
    "pre",
    "hr",
    "figure",
    "figcaption",
    "address",
    "center",
    "body",
    "html",
];
const LINE_TAGS: &[&str] = &["br", "li", "dt", "dd", "caption", "tbody", "thead"];
/// Class fragments of boilerplate containers.
const BOILERPLATE: &[&str] = &[
    "sidebar",
    "navbar",
    "navigation",
    "breadcrumb",
    "footer",
    "menu",
    "cookie",
    "visually-hidden",
    "sr-only",
    "skip-link",
    "headerlink",
    "toc-drawer",
    "mathjax_preview",
    "related",
    "banner",
    "advert",
    "share",
];
const BOILERPLATE_IDS: &[&str] = &[
    "sidebar",
    "footer",
    "header",
    "nav",
    "navbar",
    "navigation",
    "menu",
    "breadcrumbs",
    "breadcrumb",
    "searchbox",
    "page-header",
    "site-header",
    "site-footer",
    "page-footer",
    "toc-drawer",
    "cookie-banner",
];
const BOILERPLATE_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "search",
    "complementary",
    "menu",
];

fn is_boilerplate(el: &scraper::node::Element) -> bool {
    if matches!(el.name(), "html" | "body" | "main" | "article") {
        return false; // page-level classes like Apache's `no-sidebar` describe the layout, not boilerplate
    }
    if el.attr("hidden").is_some() || el.attr("aria-hidden") == Some("true") {
        return true;
    }
    if let Some(style) = el.attr("style") {
        let s: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        if s.contains("display:none") || s.contains("visibility:hidden") {
            return true;
        }
    }
    if el
        .attr("role")
        .is_some_and(|r| BOILERPLATE_ROLES.contains(&r.to_ascii_lowercase().as_str()))
    {
        return true;
    }
    if el.attr("role") == Some("main") {
        return false;
    }
    // Ids are often made from headings ("...-and-related-functions"): whole-id matches only.
    if el
        .attr("id")
        .is_some_and(|id| BOILERPLATE_IDS.contains(&id.to_ascii_lowercase().as_str()))
    {
        return true;
    }
    let class = el.attr("class").unwrap_or("").to_ascii_lowercase();
    class
        .split_whitespace()
        .any(|tok| BOILERPLATE.iter().any(|b| tok.contains(b)))
}

/// Text output with whitespace collapsing and block breaks.
struct Out {
    s: String,
    space: bool,
}

impl Out {
    fn text(&mut self, t: &str, pre: bool) {
        if pre {
            self.s.push_str(t);
            self.space = false;
            return;
        }
        for (i, word) in t.split_whitespace().enumerate() {
            if (i > 0 || self.space || t.starts_with(char::is_whitespace))
                && !self.s.is_empty()
                && !self.s.ends_with(['\n', ' '])
            {
                self.s.push(' ');
            }
            self.s.push_str(word);
            self.space = false;
        }
        if t.ends_with(char::is_whitespace) && !t.trim().is_empty() {
            self.space = true;
        }
    }
    fn raw(&mut self, t: &str) {
        if self.space && !self.s.is_empty() && !self.s.ends_with(['\n', ' ']) {
            self.s.push(' ');
        }
        self.s.push_str(t);
        self.space = false;
    }
    fn breaks(&mut self, n: usize) {
        while self.s.ends_with(' ') {
            self.s.pop();
        }
        if self.s.is_empty() {
            return;
        }
        let have = self.s.chars().rev().take_while(|&c| c == '\n').count();
        for _ in have..n {
            self.s.push('\n');
        }
        self.space = false;
    }
}

fn collect_text(node: NodeRef<Node>) -> String {
    let mut s = String::new();
    for d in node.descendants() {
        if let Node::Text(t) = d.value() {
            s.push_str(t);
        }
    }
    s
}

/// Is this `<img>` a rendered formula whose `alt` is LaTeX?
fn latex_image(el: &scraper::node::Element) -> Option<String> {
    let alt = el.attr("alt")?.trim();
    if alt.is_empty() {
        return None;
    }
    let src = el.attr("src").unwrap_or("").to_ascii_lowercase();
    let class = el.attr("class").unwrap_or("").to_ascii_lowercase();
    let formula = class
        .split_whitespace()
        .any(|c| c == "latex" || c == "tex" || c.contains("math"))
        || [
            "codecogs", "latex", "mimetex", "mathtex", "tex2img", "math.php",
        ]
        .iter()
        .any(|k| src.contains(k));
    formula.then(|| alt.trim_matches('$').trim().to_string())
}

/// Extract the main text of an HTML page with its math as LaTeX.
pub fn html_to_text(html: &str) -> Extracted {
    let doc = Html::parse_document(html);
    let mut math = MathStats::default();
    let mut title = String::new();
    let mut out = Out {
        s: String::new(),
        space: false,
    };
    // Iterative walk (deep DOMs must not overflow the stack): (node, entering, inside <pre>).
    let mut stack: Vec<(NodeRef<Node>, bool, bool)> = vec![(doc.tree.root(), true, false)];
    while let Some((node, entering, pre)) = stack.pop() {
        match node.value() {
            Node::Text(t) if entering => out.text(t, pre),
            Node::Element(el) => {
                let name = el.name();
                if !entering {
                    if BLOCK_TAGS.contains(&name) {
                        out.breaks(2);
                    } else if LINE_TAGS.contains(&name) {
                        out.breaks(1);
                    } else if matches!(name, "td" | "th") {
                        out.raw(" ");
                        out.space = true;
                    }
                    continue;
                }
                if name == "head" || name == "title" {
                    let t = node
                        .descendants()
                        .find(|d| matches!(d.value(), Node::Element(e) if e.name() == "title"));
                    if let Some(t) = t.filter(|_| title.is_empty()) {
                        title = collect_text(t)
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ");
                    }
                    continue;
                }
                if name == "script" {
                    let ty = el.attr("type").unwrap_or("").to_ascii_lowercase();
                    if ty.starts_with("math/tex") {
                        let tex = collect_text(node);
                        let display = ty.contains("mode=display");
                        math.tex_scripts += 1;
                        out.raw(&if display {
                            format!("$${}$$", tex.trim())
                        } else {
                            format!("${}$", tex.trim())
                        });
                    }
                    continue;
                }
                if SKIP_TAGS.contains(&name) || is_boilerplate(el) {
                    continue;
                }
                if name == "math" {
                    math.mathml += 1;
                    let tex = crate::mathml::to_latex(node);
                    let display =
                        el.attr("display") == Some("block") || el.attr("mode") == Some("display");
                    out.raw(&if display {
                        format!("$${tex}$$")
                    } else {
                        format!("${tex}$")
                    });
                    continue;
                }
                if name == "img" {
                    if let Some(tex) = latex_image(el) {
                        math.latex_images += 1;
                        out.raw(&format!("${tex}$"));
                    }
                    continue;
                }
                if BLOCK_TAGS.contains(&name) {
                    out.breaks(2);
                } else if LINE_TAGS.contains(&name) {
                    out.breaks(1);
                }
                let pre = pre || name == "pre" || name == "textarea";
                stack.push((node, false, pre));
                let children: Vec<NodeRef<Node>> = node.children().collect();
                for c in children.into_iter().rev() {
                    stack.push((c, true, pre));
                }
            }
            Node::Document | Node::Fragment if entering => {
                let children: Vec<NodeRef<Node>> = node.children().collect();
                for c in children.into_iter().rev() {
                    stack.push((c, true, pre));
                }
            }
            _ => {}
        }
    }
    let text = out.s.trim().to_string();
    math.delimiters = count_delimiters(&text);
    Extracted {
        title,
        text,
        math,
        html_bytes: html.len(),
    }
}

/// Math delimiters in the visible text: `\(`, `\[`, `$$`, and `$..$` pairs whose content looks
/// like math (no surrounding spaces, short, one line, a letter alone or an operator / backslash),
/// so shell variables (`$HOME and $PATH`) and prices do not count.
fn count_delimiters(text: &str) -> usize {
    let mut n =
        text.matches("\\(").count() + text.matches("\\[").count() + text.matches("$$").count() / 2;
    let single = text.replace("$$", "");
    let parts: Vec<&str> = single.split('$').collect();
    let mut i = 1;
    while i + 1 < parts.len() {
        let c = parts[i];
        let mathy = !c.is_empty()
            && c.len() <= 80
            && !c.contains('\n')
            && !c.starts_with(char::is_whitespace)
            && !c.ends_with(char::is_whitespace)
            && (c.chars().count() == 1 && c.chars().all(char::is_alphabetic)
                || c.contains(['\\', '^', '_', '=', '+']));
        if mathy {
            n += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_boilerplate_keeps_content_and_math() {
        let html = r#"<html><head><title>Quadratic  formula</title><style>p{}</style></head><body>
            <nav><a href="/">Home</a></nav><div class="sidebar">Menu items</div>
            <h1>Roots</h1><p>The roots of <script type="math/tex">ax^2+bx+c=0</script> are</p>
            <script type="math/tex; mode=display">x=\frac{-b\pm\sqrt{b^2-4ac}}{2a}</script>
            <p>Also <img class="latex" alt="e^{i\pi}+1=0" src="https://s0.wp.com/latex.php?latex=e%5E"> and
            <math><mfrac><mn>1</mn><mn>2</mn></mfrac></math>.</p>
            <script>var tracking = 1;</script><footer>(c) 2024</footer><p hidden>secret</p>
            <pre>  a  =  1
  b = 2</pre></body></html>"#;
        let e = html_to_text(html);
        assert_eq!(e.title, "Quadratic formula");
        assert!(
            e.text
                .starts_with("Roots\n\nThe roots of $ax^2+bx+c=0$ are"),
            "{}",
            e.text
        );
        assert!(
            e.text.contains("$$x=\\frac{-b\\pm\\sqrt{b^2-4ac}}{2a}$$"),
            "{}",
            e.text
        );
        assert!(
            e.text.contains("Also $e^{i\\pi}+1=0$ and $\\frac{1}{2}$."),
            "{}",
            e.text
        );
        assert!(e.text.contains("  a  =  1\n  b = 2"), "{}", e.text);
        for gone in [
            "Home",
            "Menu items",
            "tracking",
            "(c) 2024",
            "secret",
            "p{}",
        ] {
            assert!(!e.text.contains(gone), "{gone} in {}", e.text);
        }
        assert_eq!(
            (e.math.tex_scripts, e.math.mathml, e.math.latex_images),
            (2, 1, 1)
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let html = format!("{}x{}", "<div>".repeat(5_000), "</div>".repeat(5_000));
        assert_eq!(html_to_text(&html).text, "x");
    }
}
