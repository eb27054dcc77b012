//! A bounded LaTeX math parser and evaluator for answer equivalence: exact rational arithmetic
//! (i128, overflow falls back to f64) and numeric evaluation with variables. Parsing is limited in
//! depth and length, so hostile answers (`2003^{2002^{2001}}`, 10,000 nested braces) get a verdict,
//! not a hang or a stack overflow.

mod complex;

use std::collections::BTreeSet;

const MAX_DEPTH: usize = 48;
/// Significant digits from which a decimal is read as a rounded value ([`Expr::Dec`]).
pub const LONG_DECIMAL_DIGITS: u32 = 8;
const MAX_TOKENS: usize = 600;

/// An exact rational number `n / d`, `d > 0`, in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Q {
    pub n: i128,
    pub d: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

impl Q {
    pub fn new(n: i128, d: i128) -> Option<Q> {
        if d == 0 {
            return None;
        }
        let g = gcd(n, d).max(1);
        let (n, d) = (n / g, d / g);
        Some(if d < 0 {
            Q {
                n: n.checked_neg()?,
                d: d.checked_neg()?,
            }
        } else {
            Q { n, d }
        })
    }
    pub fn int(n: i128) -> Q {
        Q { n, d: 1 }
    }
    fn add(self, o: Q) -> Option<Q> {
        Q::new(
            self.n
                .checked_mul(o.d)?
                .checked_add(o.n.checked_mul(self.d)?)?,
            self.d.checked_mul(o.d)?,
        )
    }
    fn mul(self, o: Q) -> Option<Q> {
        let g1 = gcd(self.n, o.d).max(1);
        let g2 = gcd(o.n, self.d).max(1);
        Q::new(
            (self.n / g1).checked_mul(o.n / g2)?,
            (self.d / g2).checked_mul(o.d / g1)?,
        )
    }
    fn neg(self) -> Option<Q> {
        Some(Q {
            n: self.n.checked_neg()?,
            d: self.d,
        })
    }
    fn recip(self) -> Option<Q> {
        Q::new(self.d, self.n)
    }
    fn pow(self, e: i128) -> Option<Q> {
        if e.unsigned_abs() > 256 {
            return None;
        }
        let mut r = Q::int(1);
        for _ in 0..e.unsigned_abs() {
            r = r.mul(self)?;
        }
        if e < 0 { r.recip() } else { Some(r) }
    }
    pub fn to_f64(self) -> f64 {
        self.n as f64 / self.d as f64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(Q),
    /// A number written with a decimal point or in e-notation, and its significant digits. Its
    /// value is exact; against an irrational value it gets DeepSeekMath's 1e-4 tolerance
    /// (`3.14159` is pi). Against a fraction it must be exact unless it is long
    /// ([`LONG_DECIMAL_DIGITS`] digits or more, `0.0833333333`, what a calculator or a program
    /// prints for a fraction): `4.6667` is not 14/3.
    Dec(Q, u32),
    Float(f64),
    Pi,
    E,
    Inf,
    Var(String),
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Func(String, Box<Expr>),
    /// `\log_b x`
    Log(Box<Expr>, Box<Expr>),
    /// `\sqrt[n]{x}`
    Root(Box<Expr>, Box<Expr>),
    Percent(Box<Expr>),
    Factorial(Box<Expr>),
    /// `a \pm b`
    PlusMinus(Box<Expr>, Box<Expr>),
    /// Tuples, intervals, sets and bare comma lists (`open == ' '`).
    Seq {
        open: char,
        close: char,
        items: Vec<Expr>,
    },
    Matrix(Vec<Vec<Expr>>),
    /// Union of intervals / sets.
    Union(Vec<Expr>),
    Rel(Box<Expr>, Rel, Box<Expr>),
    EmptySet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rel {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `\approx`: compared as `=` (the approximated value is held to the numeric tolerance).
    Approx,
}

impl Rel {
    fn flip(self) -> Rel {
        match self {
            Rel::Lt => Rel::Gt,
            Rel::Le => Rel::Ge,
            Rel::Gt => Rel::Lt,
            Rel::Ge => Rel::Le,
            r => r,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Ident(String),
    Cmd(String),
    Sym(char),
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < c.len() {
        if out.len() > MAX_TOKENS {
            return None;
        }
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            let mut dot = false;
            while i < c.len()
                && (c[i].is_ascii_digit()
                    || (c[i] == '.' && !dot && c.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                dot |= c[i] == '.';
                i += 1;
            }
            // Scientific e-notation `6.02e23`, `1e-5` (a bare `2e` stays 2 times e).
            if matches!(c.get(i), Some('e' | 'E')) {
                let sign = usize::from(matches!(c.get(i + 1), Some('+' | '-')));
                if c.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
                    i += 1 + sign;
                    while i < c.len() && c[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            out.push(Tok::Num(c[start..i].iter().collect()));
        } else if ch == '\\' {
            let start = i + 1;
            i += 1;
            while i < c.len() && c[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i == start {
                // `\{`, `\}`, `\\`, `\%`, `\,`
                let sym = *c.get(i)?;
                i += 1;
                match sym {
                    '{' => out.push(Tok::Cmd("lbrace".into())),
                    '}' => out.push(Tok::Cmd("rbrace".into())),
                    '\\' => out.push(Tok::Cmd("newline".into())),
                    '%' => out.push(Tok::Sym('%')),
                    ',' | ';' | '!' | ' ' | ':' => {}
                    _ => return None,
                }
            } else {
                out.push(Tok::Cmd(c[start..i].iter().collect()));
            }
        } else if ch.is_alphabetic() {
            out.push(Tok::Ident(ch.to_string()));
            i += 1;
        } else if "+-*/^_()[]{},=<>!|%&'".contains(ch) {
            out.push(Tok::Sym(ch));
            i += 1;
        } else if ch == '≤'
            || ch == '≥'
            || ch == '≠'
            || ch == '×'
            || ch == '÷'
            || ch == 'π'
            || ch == '∞'
            || ch == '≈'
        {
            out.push(match ch {
                '≤' => Tok::Cmd("le".into()),
                '≥' => Tok::Cmd("ge".into()),
                '≠' => Tok::Cmd("ne".into()),
                '×' => Tok::Sym('*'),
                '÷' => Tok::Sym('/'),
                'π' => Tok::Cmd("pi".into()),
                '≈' => Tok::Cmd("approx".into()),
                _ => Tok::Cmd("infty".into()),
            });
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

type P = Option<Expr>;

fn bx(e: Expr) -> Box<Expr> {
    Box::new(e)
}

const FUNCS: &[&str] = &[
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "ln", "exp", "sinh",
    "cosh", "tanh",
];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// list := relation (',' relation)*
    fn list(&mut self) -> P {
        self.enter()?;
        let mut items = vec![self.relation()?];
        while self.eat(&Tok::Sym(',')) {
            items.push(self.relation()?);
        }
        self.depth -= 1;
        Some(if items.len() == 1 {
            items.pop().unwrap()
        } else {
            Expr::Seq {
                open: ' ',
                close: ' ',
                items,
            }
        })
    }

    fn rel_op(&mut self) -> Option<Rel> {
        let r = match self.peek()? {
            Tok::Sym('=') => Rel::Eq,
            Tok::Sym('<') => Rel::Lt,
            Tok::Sym('>') => Rel::Gt,
            Tok::Sym('!') if self.toks.get(self.pos + 1) == Some(&Tok::Sym('=')) => {
                self.pos += 2;
                return Some(Rel::Ne);
            }
            Tok::Cmd(c) => match c.as_str() {
                "le" | "leq" | "leqslant" => Rel::Le,
                "ge" | "geq" | "geqslant" => Rel::Ge,
                "ne" | "neq" => Rel::Ne,
                "lt" => Rel::Lt,
                "gt" => Rel::Gt,
                "approx" | "simeq" | "thickapprox" => Rel::Approx,
                _ => return None,
            },
            _ => return None,
        };
        self.pos += 1;
        if r == Rel::Lt && self.eat(&Tok::Sym('=')) {
            return Some(Rel::Le);
        }
        if r == Rel::Gt && self.eat(&Tok::Sym('=')) {
            return Some(Rel::Ge);
        }
        Some(r)
    }

    fn relation(&mut self) -> P {
        let mut lhs = self.union()?;
        while let Some(op) = self.rel_op() {
            let rhs = self.union()?;
            lhs = Expr::Rel(bx(lhs), op, bx(rhs));
        }
        Some(lhs)
    }

    fn union(&mut self) -> P {
        let first = self.additive()?;
        let mut parts = vec![first];
        while self.eat(&Tok::Cmd("cup".into())) || self.eat(&Tok::Ident("U".into())) {
            parts.push(self.additive()?);
        }
        Some(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Expr::Union(parts)
        })
    }

    fn additive(&mut self) -> P {
        self.enter()?;
        let mut lhs = self.term()?;
        loop {
            if self.eat(&Tok::Sym('+')) {
                lhs = Expr::Add(bx(lhs), bx(self.term()?));
            } else if self.eat(&Tok::Sym('-')) {
                lhs = Expr::Sub(bx(lhs), bx(self.term()?));
            } else if self.eat(&Tok::Cmd("pm".into())) || self.eat(&Tok::Cmd("mp".into())) {
                lhs = Expr::PlusMinus(bx(lhs), bx(self.term()?));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Some(lhs)
    }

    fn starts_primary(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_)) | Some(Tok::Ident(_)) => true,
            Some(Tok::Sym(c)) => matches!(c, '(' | '{' | '['),
            Some(Tok::Cmd(c)) => {
                matches!(
                    c.as_str(),
                    "frac" | "sqrt" | "pi" | "infty" | "lbrace" | "log" | "begin" | "binom"
                ) || FUNCS.contains(&c.as_str())
            }
            None => false,
        }
    }

    /// `3\frac{1}{2}`: an integer written right before a fraction of two integers is a mixed
    /// number (7/2), not a product; `-3\frac{1}{2}` is -7/2.
    fn mixed_number(&mut self, whole: &Expr) -> Option<Expr> {
        let (neg, int) = match whole {
            Expr::Num(q) if q.d == 1 => (false, *q),
            Expr::Neg(inner) => match **inner {
                Expr::Num(q) if q.d == 1 => (true, q),
                _ => return None,
            },
            _ => return None,
        };
        let t = &self.toks[self.pos..];
        let int_arg = |x: Option<&Tok>| matches!(x, Some(Tok::Num(n)) if n.bytes().all(|c| c.is_ascii_digit()));
        let shape = t.first() == Some(&Tok::Cmd("frac".into()))
            && t.get(1) == Some(&Tok::Sym('{'))
            && int_arg(t.get(2))
            && t.get(3) == Some(&Tok::Sym('}'))
            && t.get(4) == Some(&Tok::Sym('{'))
            && int_arg(t.get(5))
            && t.get(6) == Some(&Tok::Sym('}'));
        if !shape || int.n < 0 {
            return None;
        }
        let num = number(match &t[2] {
            Tok::Num(n) => n,
            _ => return None,
        })?;
        let den = number(match &t[5] {
            Tok::Num(n) => n,
            _ => return None,
        })?;
        self.pos += 7;
        let sum = Expr::Add(bx(Expr::Num(int)), bx(Expr::Div(bx(num), bx(den))));
        Some(if neg { Expr::Neg(bx(sum)) } else { sum })
    }

    fn term(&mut self) -> P {
        let start = self.pos;
        let mut lhs = self.unary()?;
        let whole_number = matches!(
            &self.toks[start..self.pos],
            [Tok::Num(_)] | [Tok::Sym('-'), Tok::Num(_)]
        );
        if whole_number && let Some(m) = self.mixed_number(&lhs) {
            lhs = m;
        }
        loop {
            if self.eat(&Tok::Sym('*')) {
                lhs = Expr::Mul(bx(lhs), bx(self.unary()?));
            } else if self.eat(&Tok::Sym('/')) {
                lhs = Expr::Div(bx(lhs), bx(self.unary()?));
            } else if self.starts_primary() {
                lhs = Expr::Mul(bx(lhs), bx(self.power()?));
            } else {
                break;
            }
        }
        Some(lhs)
    }

    fn unary(&mut self) -> P {
        self.enter()?;
        let e = if self.eat(&Tok::Sym('-')) {
            Expr::Neg(bx(self.unary()?))
        } else if self.eat(&Tok::Sym('+')) {
            self.unary()?
        } else if self.eat(&Tok::Cmd("pm".into())) {
            Expr::PlusMinus(bx(Expr::Num(Q::int(0))), bx(self.unary()?))
        } else {
            self.power()?
        };
        self.depth -= 1;
        Some(e)
    }

    fn power(&mut self) -> P {
        let base = self.postfix()?;
        if self.eat(&Tok::Sym('^')) {
            self.enter()?;
            let exp = self.atom_arg()?;
            self.depth -= 1;
            return Some(Expr::Pow(bx(base), bx(exp)));
        }
        Some(base)
    }

    fn postfix(&mut self) -> P {
        let mut e = self.primary()?;
        loop {
            if self.eat(&Tok::Sym('%')) {
                e = Expr::Percent(bx(e));
            } else if self.peek() == Some(&Tok::Sym('!'))
                && self.toks.get(self.pos + 1) != Some(&Tok::Sym('='))
            {
                self.pos += 1;
                e = Expr::Factorial(bx(e));
            } else if self.eat(&Tok::Sym('\'')) {
                // a prime: part of a name (f'), keep as a distinct variable
                e = Expr::Mul(bx(e), bx(Expr::Var("'".into())));
            } else {
                break;
            }
        }
        Some(e)
    }

    /// An argument: `{...}` group, or a single token (`^2`, `\frac12` was normalised already).
    fn atom_arg(&mut self) -> P {
        if self.peek() == Some(&Tok::Sym('{')) {
            self.pos += 1;
            let e = self.list()?;
            self.eat(&Tok::Sym('}')).then_some(e)
        } else {
            match self.next()? {
                Tok::Num(n) => {
                    // `x^23` in LaTeX is x^2 * 3, but answers mean x^{23}; keep the whole number.
                    number(&n)
                }
                Tok::Ident(v) => Some(Expr::Var(v)),
                Tok::Cmd(c) if c == "pi" => Some(Expr::Pi),
                Tok::Cmd(c) if c == "infty" => Some(Expr::Inf),
                Tok::Sym('-') => Some(Expr::Neg(bx(self.atom_arg()?))),
                _ => None,
            }
        }
    }

    fn group(&mut self, open: char) -> P {
        self.enter()?;
        // An empty group: `()`, `[]`, `\{\}`.
        let empty = matches!(self.peek(), Some(Tok::Sym(')' | ']')))
            || matches!(self.peek(), Some(Tok::Cmd(c)) if c == "rbrace");
        let inner = if empty && open != '{' {
            None
        } else {
            Some(self.list()?)
        };
        let close = match self.next()? {
            Tok::Sym(c @ (')' | ']' | '}')) => c,
            Tok::Cmd(c) if c == "rbrace" => '}',
            _ => return None,
        };
        self.depth -= 1;
        let items = match inner {
            Some(Expr::Seq {
                open: ' ', items, ..
            }) => items,
            Some(e) if open == '{' && close == '}' => return Some(e), // plain TeX group
            Some(e) if (open, close) == ('(', ')') => return Some(e),
            Some(e) if (open, close) == ('[', ']') => return Some(e),
            Some(e) if open == 'S' => vec![e],
            Some(e) => vec![e],
            None => vec![],
        };
        Some(Expr::Seq { open, close, items })
    }

    fn primary(&mut self) -> P {
        self.enter()?;
        let e = match self.next()? {
            Tok::Num(n) => number(&n)?,
            Tok::Ident(v) => {
                let mut name = v;
                if self.eat(&Tok::Sym('_')) {
                    match self.atom_arg()? {
                        Expr::Num(q) => name.push_str(&format!("_{}", q.n)),
                        Expr::Var(s) => name.push_str(&format!("_{s}")),
                        _ => return None,
                    }
                }
                if name == "e" {
                    Expr::E
                } else {
                    Expr::Var(name)
                }
            }
            Tok::Sym('(') => self.group('(')?,
            Tok::Sym('[') => self.group('[')?,
            Tok::Sym('{') => self.group('{')?,
            Tok::Sym('|') => {
                let inner = self.additive()?;
                if !self.eat(&Tok::Sym('|')) {
                    return None;
                }
                Expr::Func("abs".into(), bx(inner))
            }
            Tok::Cmd(c) => match c.as_str() {
                "frac" | "over" => {
                    let a = self.atom_arg()?;
                    let b = self.atom_arg()?;
                    Expr::Div(bx(a), bx(b))
                }
                "binom" => {
                    let a = self.atom_arg()?;
                    let b = self.atom_arg()?;
                    Expr::Func(
                        "binom".into(),
                        bx(Expr::Seq {
                            open: '(',
                            close: ')',
                            items: vec![a, b],
                        }),
                    )
                }
                "sqrt" => {
                    if self.eat(&Tok::Sym('[')) {
                        let n = self.additive()?;
                        if !self.eat(&Tok::Sym(']')) {
                            return None;
                        }
                        Expr::Root(bx(n), bx(self.atom_arg()?))
                    } else {
                        Expr::Func("sqrt".into(), bx(self.atom_arg()?))
                    }
                }
                "pi" => Expr::Pi,
                "infty" | "infin" => Expr::Inf,
                "emptyset" | "varnothing" => Expr::EmptySet,
                "lbrace" => self.group('S')?,
                "log" => {
                    let base = if self.eat(&Tok::Sym('_')) {
                        // TeX reads `\log_28` as base 2 of 8 (spaces are gone after normalising).
                        if let Some(Tok::Num(n)) = self.peek().cloned()
                            && n.len() > 1
                            && n.chars().all(|c| c.is_ascii_digit())
                        {
                            self.toks[self.pos] = Tok::Num(n[1..].to_string());
                            Some(number(&n[..1])?)
                        } else {
                            Some(self.atom_arg()?)
                        }
                    } else {
                        None
                    };
                    let arg = self.power()?;
                    match base {
                        Some(b) => Expr::Log(bx(b), bx(arg)),
                        None => Expr::Func("log".into(), bx(arg)),
                    }
                }
                "begin" => self.matrix()?,
                f if FUNCS.contains(&f) => {
                    // \sin^2 x
                    let pow = if self.eat(&Tok::Sym('^')) {
                        Some(self.atom_arg()?)
                    } else {
                        None
                    };
                    let arg = self.power()?;
                    let f = Expr::Func(f.to_string(), bx(arg));
                    match pow {
                        Some(p) => Expr::Pow(bx(f), bx(p)),
                        None => f,
                    }
                }
                "alpha" | "beta" | "gamma" | "theta" | "lambda" | "mu" | "phi" | "omega"
                | "sigma" | "tau" | "rho" => Expr::Var(c),
                _ => return None,
            },
            _ => return None,
        };
        self.depth -= 1;
        Some(e)
    }

    fn matrix(&mut self) -> P {
        // \begin{pmatrix} a & b \\ c & d \end{pmatrix}
        if !self.eat(&Tok::Sym('{')) {
            return None;
        }
        let mut env = String::new();
        while let Some(Tok::Ident(c)) = self.peek().cloned() {
            env.push_str(&c);
            self.pos += 1;
        }
        if !self.eat(&Tok::Sym('}')) || !env.ends_with("matrix") && env != "array" {
            return None;
        }
        if env == "array" {
            // column spec {cc}
            if self.eat(&Tok::Sym('{')) {
                while !self.eat(&Tok::Sym('}')) {
                    self.next()?;
                }
            }
        }
        let mut rows = vec![vec![]];
        loop {
            if self.eat(&Tok::Cmd("end".into())) {
                if !self.eat(&Tok::Sym('{')) {
                    return None;
                }
                while !self.eat(&Tok::Sym('}')) {
                    self.next()?;
                }
                break;
            }
            let cell = self.additive()?;
            rows.last_mut().unwrap().push(cell);
            if self.eat(&Tok::Sym('&')) {
                continue;
            }
            if self.eat(&Tok::Cmd("newline".into())) {
                if self.peek() != Some(&Tok::Cmd("end".into())) {
                    rows.push(vec![]);
                }
                continue;
            }
            if self.peek() != Some(&Tok::Cmd("end".into())) {
                return None;
            }
        }
        Some(Expr::Matrix(rows))
    }
}

fn number(s: &str) -> Option<Expr> {
    if let Some((mantissa, exp)) = s.split_once(['e', 'E']) {
        let k: i32 = exp.parse().ok()?;
        let m = number(mantissa)?;
        let (q, digits) = match m {
            Expr::Num(q) => (q, mantissa.trim_start_matches('0').len() as u32),
            Expr::Dec(q, d) => (q, d),
            _ => return s.parse().ok().map(Expr::Float),
        };
        return match Q::int(10).pow(k as i128).and_then(|p| q.mul(p)) {
            Some(v) => Some(Expr::Dec(v, digits)),
            None => s.parse().ok().map(Expr::Float),
        };
    }
    if let Some((int, frac)) = s.split_once('.') {
        if int.len() + frac.len() <= 30 {
            let all = format!("{int}{frac}");
            let digits: i128 = all.parse().ok()?;
            let q = Q::new(digits, 10i128.pow(frac.len() as u32))?;
            let significant = all.trim_start_matches('0').len() as u32;
            return Some(Expr::Dec(q, significant));
        }
        return s.parse().ok().map(Expr::Float);
    }
    match s.parse::<i128>() {
        Ok(n) if s.len() <= 36 => Some(Expr::Num(Q::int(n))),
        _ => s.parse().ok().map(Expr::Float),
    }
}

/// Parse a normalised answer; `None` when it is not math this parser knows (or too deep / long).
pub fn parse(s: &str) -> Option<Expr> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return None;
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.list()?;
    (p.pos == p.toks.len()).then_some(e)
}

/// The exact value of a constant expression, when it is rational and small enough.
pub fn exact(e: &Expr) -> Option<Q> {
    match e {
        Expr::Num(q) | Expr::Dec(q, _) => Some(*q),
        Expr::Neg(a) => exact(a)?.neg(),
        Expr::Add(a, b) => exact(a)?.add(exact(b)?),
        Expr::Sub(a, b) => exact(a)?.add(exact(b)?.neg()?),
        Expr::Mul(a, b) => exact(a)?.mul(exact(b)?),
        Expr::Div(a, b) => exact(a)?.mul(exact(b)?.recip()?),
        Expr::Pow(a, b) => {
            let e = exact(b)?;
            (e.d == 1).then_some(())?;
            exact(a)?.pow(e.n)
        }
        Expr::Percent(a) => exact(a)?.mul(Q::new(1, 100)?),
        _ => None,
    }
}

/// Numeric value with `vars` bound (name -> value); `None` for structures that are not numbers.
pub fn eval(e: &Expr, vars: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
    let ev = |x: &Expr| eval(x, vars);
    Some(match e {
        Expr::Num(q) | Expr::Dec(q, _) => q.to_f64(),
        Expr::Float(f) => *f,
        Expr::Pi => std::f64::consts::PI,
        Expr::E => std::f64::consts::E,
        Expr::Inf => f64::INFINITY,
        Expr::Var(v) => vars(v)?,
        Expr::Neg(a) => -ev(a)?,
        Expr::Add(a, b) => ev(a)? + ev(b)?,
        Expr::Sub(a, b) => ev(a)? - ev(b)?,
        Expr::Mul(a, b) => ev(a)? * ev(b)?,
        Expr::Div(a, b) => ev(a)? / ev(b)?,
        Expr::Pow(a, b) => {
            let (x, y) = (ev(a)?, ev(b)?);
            if y.abs() > 1e4 && x.abs() > 1.0 + 1e-9 {
                return None; // astronomically large: not numerically comparable
            }
            x.powf(y)
        }
        Expr::Percent(a) => ev(a)? / 100.0,
        Expr::Factorial(a) => {
            let n = ev(a)?;
            if n < 0.0 || n.fract() != 0.0 || n > 170.0 {
                return None;
            }
            (1..=n as u64).map(|k| k as f64).product()
        }
        Expr::Root(n, x) => ev(x)?.powf(1.0 / ev(n)?),
        Expr::Log(b, x) => ev(x)?.ln() / ev(b)?.ln(),
        Expr::Func(f, a) => {
            if f == "binom" {
                let Expr::Seq { items, .. } = &**a else {
                    return None;
                };
                let (n, k) = (ev(&items[0])?, ev(&items[1])?);
                if k < 0.0 || k > n || k.fract() != 0.0 || n > 1000.0 {
                    return None;
                }
                return Some(
                    (0..k as u64).fold(1.0, |acc, i| acc * (n - i as f64) / (i as f64 + 1.0)),
                );
            }
            let x = ev(a)?;
            match f.as_str() {
                "sqrt" => x.sqrt(),
                "abs" => x.abs(),
                "sin" => x.sin(),
                "cos" => x.cos(),
                "tan" => x.tan(),
                "cot" => 1.0 / x.tan(),
                "sec" => 1.0 / x.cos(),
                "csc" => 1.0 / x.sin(),
                "arcsin" => x.asin(),
                "arccos" => x.acos(),
                "arctan" => x.atan(),
                "ln" => x.ln(),
                "log" => x.log10(),
                "exp" => x.exp(),
                "sinh" => x.sinh(),
                "cosh" => x.cosh(),
                "tanh" => x.tanh(),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Free variables of an expression.
pub fn variables(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::Var(v) => {
            out.insert(v.clone());
        }
        Expr::Neg(a) | Expr::Percent(a) | Expr::Factorial(a) | Expr::Func(_, a) => {
            variables(a, out)
        }
        Expr::Add(a, b)
        | Expr::Sub(a, b)
        | Expr::Mul(a, b)
        | Expr::Div(a, b)
        | Expr::Pow(a, b)
        | Expr::Log(a, b)
        | Expr::Root(a, b)
        | Expr::PlusMinus(a, b)
        | Expr::Rel(a, _, b) => {
            variables(a, out);
            variables(b, out);
        }
        Expr::Seq { items, .. } | Expr::Union(items) => {
            items.iter().for_each(|i| variables(i, out))
        }
        Expr::Matrix(rows) => rows.iter().flatten().for_each(|i| variables(i, out)),
        _ => {}
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-12
}

/// How two expressions were found equal (or why not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Exact,
    Numeric,
    Symbolic,
    Structure,
    Different,
    Incomparable,
}

/// Points at which expressions with variables are compared (variables bound in name order).
const POINTS: [[f64; 8]; 5] = [
    [
        0.5381, 1.2734, 2.1597, 0.8123, 1.7371, 2.9113, 0.3457, 1.4421,
    ],
    [
        1.9127, 0.6619, 1.3317, 2.4483, 0.9431, 0.4219, 2.2271, 1.1113,
    ],
    [
        2.7313, 2.0197, 0.4483, 1.6271, 2.3359, 1.0823, 0.7717, 2.6129,
    ],
    [
        -0.7373, 1.8821, -1.4419, 0.5573, -2.1137, 1.2289, -0.9377, 0.6841,
    ],
    [
        3.1193, -0.5519, 1.7747, -1.9931, 2.5521, -0.4463, 1.3337, -2.4481,
    ],
];

/// Relative tolerance for numbers (DeepSeekMath's `math_equal` uses 1e-4) and for symbolic
/// checks at random points.
pub const NUMERIC_REL_TOL: f64 = 1e-4;
const SYMBOLIC_REL_TOL: f64 = 1e-6;
/// Relative tolerance between two constant expressions written without decimals (float error).
const EXACT_REL_TOL: f64 = 1e-9;

fn has_percent(e: &Expr) -> bool {
    matches!(e, Expr::Percent(_))
}

/// The most significant digits of a decimal in a scalar expression (`None`: no decimal; a float
/// too long to hold exactly counts as `u32::MAX`).
fn decimal_digits(e: &Expr) -> Option<u32> {
    match e {
        Expr::Dec(_, d) => Some(*d),
        Expr::Float(_) => Some(u32::MAX),
        Expr::Neg(a) | Expr::Percent(a) | Expr::Factorial(a) | Expr::Func(_, a) => {
            decimal_digits(a)
        }
        Expr::Add(a, b)
        | Expr::Sub(a, b)
        | Expr::Mul(a, b)
        | Expr::Div(a, b)
        | Expr::Pow(a, b)
        | Expr::Log(a, b)
        | Expr::Root(a, b) => decimal_digits(a).max(decimal_digits(b)),
        _ => None,
    }
}

fn is_constant(e: &Expr) -> bool {
    let mut vars = BTreeSet::new();
    variables(e, &mut vars);
    vars.is_empty()
}

/// The sides and relations of a chain `a = b = c` (parsed left-associatively).
fn chain(e: &Expr) -> (Vec<&Expr>, Vec<Rel>) {
    match e {
        Expr::Rel(l, r, x) => {
            let (mut sides, mut rels) = chain(l);
            sides.push(x);
            rels.push(*r);
            (sides, rels)
        }
        other => (vec![other], vec![]),
    }
}

/// An answer written as a computation or an approximation, reduced to what it states:
/// `x = 5+5+1 = 11` -> `x = 11`, `x = 1/3 \approx 0.33` -> `x = 1/3` and `\sqrt{2} \approx 1.414`
/// -> `\sqrt{2}` (the exact side before the first approximation wins), `x \approx 11` -> `x = 11`
/// (only an approximation: it is held to the numeric tolerance), `2+3 = 5` -> `5`. Other
/// relations are returned unchanged.
fn reduce_chain(e: &Expr) -> Expr {
    let (sides, rels) = chain(e);
    if rels.is_empty() || !rels.iter().all(|r| matches!(r, Rel::Eq | Rel::Approx)) {
        return e.clone();
    }
    let value = match rels.iter().position(|r| *r == Rel::Approx) {
        Some(k) if is_constant(sides[k]) => sides[k],
        _ => sides[sides.len() - 1],
    };
    if sides.iter().all(|s| is_constant(s)) {
        return value.clone();
    }
    if rels.len() == 1 && rels[0] == Rel::Eq {
        return e.clone(); // an equation such as `2x + 3y = 6`, or `y = 2x + 3`
    }
    Expr::Rel(bx(sides[0].clone()), Rel::Eq, bx(value.clone()))
}

/// `d > 0` or `d >= 0` (strict?) for an inequality `l op r`.
fn positive_side(l: &Expr, r: Rel, x: &Expr) -> Option<(Expr, bool)> {
    let d = |a: &Expr, b: &Expr| Expr::Sub(bx(a.clone()), bx(b.clone()));
    Some(match r {
        Rel::Gt => (d(l, x), true),
        Rel::Ge => (d(l, x), false),
        Rel::Lt => (d(x, l), true),
        Rel::Le => (d(x, l), false),
        _ => return None,
    })
}

/// Is `a = c * b` for one constant `c` (positive when `positive`) at the sample points?
fn proportional(a: &Expr, b: &Expr, positive: bool) -> bool {
    let mut vars = BTreeSet::new();
    variables(a, &mut vars);
    variables(b, &mut vars);
    if vars.is_empty() || vars.len() > 8 {
        return false;
    }
    let names: Vec<&String> = vars.iter().collect();
    let mut ratio: Option<f64> = None;
    let mut agree = 0;
    for point in POINTS {
        let bind = |v: &str| names.iter().position(|n| n.as_str() == v).map(|i| point[i]);
        let (Some(x), Some(y)) = (eval(a, &bind), eval(b, &bind)) else {
            continue;
        };
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        if y.abs() < 1e-12 || x.abs() < 1e-12 {
            if x.abs() < 1e-12 && y.abs() < 1e-12 {
                continue;
            }
            return false;
        }
        let r = x / y;
        match ratio {
            None => ratio = Some(r),
            Some(r0) if close(r0, r, SYMBOLIC_REL_TOL) => {}
            Some(_) => return false,
        }
        agree += 1;
    }
    agree >= 2 && ratio.is_some_and(|r| !positive || r > 0.0)
}

/// `x \geq 5` -> `[5, \infty)`, `1 < x \leq 3` -> `(1, 3]`: a one-variable inequality with
/// constant bounds as the interval it describes.
fn as_interval(e: &Expr) -> Option<Expr> {
    let (sides, rels) = chain(e);
    let var = |x: &Expr| matches!(x, Expr::Var(_));
    let c = |x: &Expr| is_constant(x);
    let bound = |lo: Option<(&Expr, bool)>, hi: Option<(&Expr, bool)>| {
        let (lo, lo_strict) = lo.map_or((Expr::Neg(bx(Expr::Inf)), true), |(e, s)| (e.clone(), s));
        let (hi, hi_strict) = hi.map_or((Expr::Inf, true), |(e, s)| (e.clone(), s));
        Some(Expr::Seq {
            open: if lo_strict { '(' } else { '[' },
            close: if hi_strict { ')' } else { ']' },
            items: vec![lo, hi],
        })
    };
    let strict = |r: Rel| matches!(r, Rel::Lt | Rel::Gt);
    match (sides.as_slice(), rels.as_slice()) {
        ([v, k], [r]) if var(v) && c(k) => match r {
            Rel::Gt | Rel::Ge => bound(Some((k, strict(*r))), None),
            Rel::Lt | Rel::Le => bound(None, Some((k, strict(*r)))),
            _ => None,
        },
        ([k, v], [r]) if var(v) && c(k) => match r {
            Rel::Lt | Rel::Le => bound(Some((k, strict(*r))), None),
            Rel::Gt | Rel::Ge => bound(None, Some((k, strict(*r)))),
            _ => None,
        },
        ([a, v, b], [r1, r2]) if var(v) && c(a) && c(b) => match (r1, r2) {
            (Rel::Lt | Rel::Le, Rel::Lt | Rel::Le) => {
                bound(Some((a, strict(*r1))), Some((b, strict(*r2))))
            }
            (Rel::Gt | Rel::Ge, Rel::Gt | Rel::Ge) => {
                bound(Some((b, strict(*r2))), Some((a, strict(*r1))))
            }
            _ => None,
        },
        _ => None,
    }
}

fn is_interval(e: &Expr) -> bool {
    matches!(e, Expr::Seq { open: '(' | '[', close: ')' | ']', items, .. } if items.len() == 2)
}

/// Are two parsed answers the same mathematical object?
pub fn equivalent(a: &Expr, b: &Expr) -> How {
    use Expr::*;
    let empty_set = |e: &Expr| match e {
        Seq {
            open: 'S', items, ..
        } if items.is_empty() => EmptySet,
        other => reduce_chain(other),
    };
    let (a, b) = (&empty_set(a), &empty_set(b));
    for (rel, other) in [(a, b), (b, a)] {
        if matches!(rel, Rel(..))
            && (is_interval(other) || matches!(other, Union(_)))
            && let Some(iv) = as_interval(rel)
        {
            return equivalent(&iv, other);
        }
    }
    match (a, b) {
        (
            Seq {
                open: o1,
                close: c1,
                items: i1,
            },
            Seq {
                open: o2,
                close: c2,
                items: i2,
            },
        ) => {
            if i1.len() != i2.len() {
                return How::Different;
            }
            let unordered = (*o1 == ' ' && *o2 == ' ') || (*o1 == 'S' && *o2 == 'S');
            if !unordered && (o1 != o2 || c1 != c2) {
                // `(1,2)` vs bare `1,2` are the same tuple; intervals must agree on ends.
                if !(*o1 == ' ' || *o2 == ' ')
                    || !((*o1 == '(' || *o2 == '(') && (*c1 == ')' || *c2 == ')'))
                {
                    return How::Different;
                }
            }
            if unordered {
                let mut used = vec![false; i2.len()];
                for x in i1 {
                    let hit = i2
                        .iter()
                        .enumerate()
                        .position(|(j, y)| !used[j] && is_same(equivalent(x, y)));
                    match hit {
                        Some(j) => used[j] = true,
                        None => return How::Different,
                    }
                }
                return How::Structure;
            }
            for (x, y) in i1.iter().zip(i2) {
                if !is_same(equivalent(x, y)) {
                    return How::Different;
                }
            }
            How::Structure
        }
        (Matrix(r1), Matrix(r2)) => {
            if r1.len() != r2.len() || r1.iter().zip(r2).any(|(x, y)| x.len() != y.len()) {
                return How::Different;
            }
            let all = r1
                .iter()
                .flatten()
                .zip(r2.iter().flatten())
                .all(|(x, y)| is_same(equivalent(x, y)));
            if all { How::Structure } else { How::Different }
        }
        (Union(p1), Union(p2)) => equivalent(
            &Seq {
                open: 'S',
                close: 'S',
                items: p1.clone(),
            },
            &Seq {
                open: 'S',
                close: 'S',
                items: p2.clone(),
            },
        ),
        (EmptySet, EmptySet) => How::Structure,
        (Rel(l1, r1, x1), Rel(l2, r2, x2)) => {
            if r1 == r2 && is_same(equivalent(l1, l2)) && is_same(equivalent(x1, x2)) {
                return How::Structure;
            }
            if *r1 == r2.flip() && is_same(equivalent(l1, x2)) && is_same(equivalent(x1, l2)) {
                return How::Structure;
            }
            let eq_like =
                |r: &crate::math::Rel| matches!(r, crate::math::Rel::Eq | crate::math::Rel::Ne);
            if r1 == r2 && eq_like(r1) {
                // Same equation up to sides and a constant factor: (l1 - x1) == c (l2 - x2)
                let d1 = Sub(l1.clone(), x1.clone());
                let d2 = Sub(l2.clone(), x2.clone());
                if is_same(values(&d1, &d2, false))
                    || is_same(values(&d1, &Neg(Box::new(d2.clone())), false))
                    || proportional(&d1, &d2, false)
                {
                    return How::Symbolic;
                }
            }
            // Inequalities as `d > 0` / `d >= 0`, equal up to a positive factor:
            // `-x > -1` is `x < 1`, `2x \leq 6` is `x \leq 3`.
            if let (Some((d1, s1)), Some((d2, s2))) =
                (positive_side(l1, *r1, x1), positive_side(l2, *r2, x2))
                && s1 == s2
                && proportional(&d1, &d2, true)
            {
                return How::Symbolic;
            }
            How::Different
        }
        // `x = 5` vs `5`, `y = 2x + 3` vs `2x + 3`
        (Rel(l, crate::math::Rel::Eq, r), other) | (other, Rel(l, crate::math::Rel::Eq, r))
            if matches!(**l, Var(_)) && !matches!(other, Rel(..)) =>
        {
            equivalent(r, other)
        }
        (Seq { .. } | Matrix(_) | Union(_) | EmptySet | Rel(..), _)
        | (_, Seq { .. } | Matrix(_) | Union(_) | EmptySet | Rel(..)) => How::Different,
        (PlusMinus(a1, b1), PlusMinus(a2, b2)) => {
            if is_same(equivalent(a1, a2)) && is_same(equivalent(b1, b2)) {
                How::Structure
            } else {
                How::Different
            }
        }
        _ => values(a, b, has_percent(a) || has_percent(b)),
    }
}

fn is_same(h: How) -> bool {
    !matches!(h, How::Different | How::Incomparable)
}

/// Compare two scalar expressions by value: exactly when both are rational, numerically when
/// constant, at random points when they have variables.
fn values(a: &Expr, b: &Expr, percent: bool) -> How {
    if let (Some(x), Some(y)) = (exact(a), exact(b)) {
        if x == y {
            return How::Exact;
        }
        // Two exact numbers differ; a long decimal may be a rounded fraction
        // (`0.0833333333` for 1/12) and is held to the numeric tolerance.
        let long = decimal_digits(a).max(decimal_digits(b)) >= Some(LONG_DECIMAL_DIGITS);
        if !percent && !long {
            return How::Different;
        }
    }
    let mut vars = BTreeSet::new();
    variables(a, &mut vars);
    variables(b, &mut vars);
    if vars.len() == 1 && vars.contains("i") {
        // `i` alone is the imaginary unit: `e^{i\pi}` = -1, `(1+i)^2` = 2i.
        if let (Some(x), Some(y)) = (complex::eval(a), complex::eval(b)) {
            return if complex::close(x, y, NUMERIC_REL_TOL) {
                How::Numeric
            } else {
                How::Different
            };
        }
    }
    if vars.is_empty() {
        let none = |_: &str| None;
        let (Some(x), Some(y)) = (eval(a, &none), eval(b, &none)) else {
            return How::Incomparable;
        };
        if x.is_nan() || y.is_nan() {
            return How::Incomparable;
        }
        // DeepSeekMath's tolerance is for numbers someone rounded; two exact expressions
        // (`(\sqrt{7}+\sqrt{5})^6` against 13535) must agree to float precision, or a relative
        // 1e-4 would accept any value within 1.35 of 13535.
        let rounded = percent || decimal_digits(a).is_some() || decimal_digits(b).is_some();
        let tol = if rounded {
            NUMERIC_REL_TOL
        } else {
            EXACT_REL_TOL
        };
        let scaled = percent
            && (close(x * 100.0, y, NUMERIC_REL_TOL) || close(x, y * 100.0, NUMERIC_REL_TOL));
        return if close(x, y, tol) || scaled {
            How::Numeric
        } else {
            How::Different
        };
    }
    if vars.len() > 8 {
        return How::Incomparable;
    }
    let names: Vec<&String> = vars.iter().collect();
    let mut agree = 0;
    for point in POINTS {
        let bind = |v: &str| names.iter().position(|n| n.as_str() == v).map(|i| point[i]);
        match (eval(a, &bind), eval(b, &bind)) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                if !close(x, y, SYMBOLIC_REL_TOL) {
                    return How::Different;
                }
                agree += 1;
            }
            _ => {}
        }
    }
    if agree >= 2 {
        How::Symbolic
    } else {
        How::Incomparable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        is_same(equivalent(
            &parse(a).unwrap_or_else(|| panic!("parse {a}")),
            &parse(b).unwrap_or_else(|| panic!("parse {b}")),
        ))
    }

    #[test]
    fn numbers_fractions_radicals() {
        assert!(eq("\\frac{1}{2}", "0.5"));
        assert!(eq("\\frac{6}{4}", "\\frac{3}{2}"));
        assert!(eq("\\sqrt{8}", "2\\sqrt{2}"));
        assert!(eq("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"));
        assert!(eq("2*3", "6"));
        assert!(eq("2^{10}", "1024"));
        assert!(!eq("2^{10}", "1023"));
        assert!(eq("3.14159", "\\pi"));
        assert!(!eq("3.14", "\\pi"));
        assert!(eq("50%", "0.5"));
        assert!(eq("1.5e", "\\frac{3e}{2}"));
    }

    #[test]
    fn structures() {
        assert!(eq("(1,2)", "(1, 2)"));
        assert!(!eq("1,-2", "1,-3"));
        assert!(eq("1,-2", "-2,1"));
        assert!(!eq("(1,2)", "(2,1)"));
        assert!(!eq("(1,2]", "(1,2)"));
        assert!(eq("[1,2)", "[1,2)"));
        assert!(eq("\\{1,2\\}", "\\{2,1\\}"));
        assert!(eq(
            "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
            "\\begin{pmatrix}1&2\\\\3&\\frac{8}{2}\\end{pmatrix}"
        ));
        assert!(!eq(
            "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
            "\\begin{pmatrix}2\\\\1\\end{pmatrix}"
        ));
        assert!(eq("x=5", "5"));
        assert!(eq("y=2x+3", "3+2x"));
        assert!(eq("2x+3y=6", "6-3y=2x"));
        assert!(eq("x<3", "3>x"));
        assert!(!eq("x<3", "x\\le3"));
        assert!(eq(
            "(-\\infty,3)\\cup(4,\\infty)",
            "(4,\\infty)\\cup(-\\infty,3)"
        ));
    }

    #[test]
    fn symbolic_with_variables() {
        assert!(eq("x^2+2x+1", "(x+1)^2"));
        assert!(eq("x+h", "h+x"));
        assert!(!eq("x+h", "x"));
        assert!(eq("\\frac{a}{b}+1", "\\frac{a+b}{b}"));
        assert!(eq("\\sin^2x+\\cos^2x", "1"));
        assert!(!eq("2x", "x^2"));
    }

    #[test]
    fn relations() {
        assert!(eq("x\\geq5", "x>=5"));
        assert!(eq("x\\geq5", "5\\leq x"));
        assert!(eq("x\\neq3", "x!=3"));
        assert!(eq("x\\lt3", "x<3"));
        assert!(eq("x\\gt3", "3<x"));
        assert!(eq("-x>-1", "x<1"));
        assert!(!eq("-x>-1", "x>1"));
        assert!(eq("2x\\leq6", "x\\leq3"));
        assert!(!eq("-2x\\leq6", "x\\leq-3"));
        assert!(eq("2x=10", "x=5"));
        assert!(eq("x\\geq5", "[5,\\infty)"));
        assert!(!eq("x>5", "[5,\\infty)"));
        assert!(eq("1<x\\leq3", "(1,3]"));
        assert!(eq("3>x>1", "(1,3)"));
        assert!(eq("4!", "24"));
    }

    #[test]
    fn chains_and_approximations() {
        assert!(eq("x=5+5+1=11", "11"));
        assert!(!eq("x=5+5+1=12", "11"));
        assert!(eq("x\\approx11", "11"));
        assert!(eq("x≈11", "11"));
        assert!(eq("x=1/3\\approx0.33", "\\frac{1}{3}"));
        assert!(!eq("x\\approx0.33", "\\frac{1}{3}"));
        assert!(eq("2+3=5", "5"));
        assert!(eq("x=5+5+1=11", "x=11"));
    }

    #[test]
    fn number_literals() {
        assert!(eq("0.0833333333333333", "\\frac{1}{12}"));
        assert!(!eq("0.083", "\\frac{1}{12}"));
        assert!(!eq("4.6667", "\\frac{14}{3}"));
        assert!(eq("3\\frac{1}{2}", "\\frac{7}{2}"));
        assert!(eq("-3\\frac{1}{2}", "-3.5"));
        assert!(eq("2\\frac{\\sqrt{3}}{3}", "\\frac{2\\sqrt{3}}{3}"));
        assert!(eq("6.02e23", "6.02*10^{23}"));
        assert!(eq("1e-5", "0.00001"));
        assert!(eq("1.5e", "\\frac{3e}{2}"));
    }

    #[test]
    fn exact_constants_are_not_rounded() {
        assert!(!eq("(\\sqrt{7}+\\sqrt{5})^6", "13535"));
        assert!(eq("\\sqrt{8}", "2\\sqrt{2}"));
        assert!(eq("3.14159", "\\pi"));
        assert!(!eq("3.1416", "\\frac{22}{7}"));
    }

    #[test]
    fn constants_and_groups() {
        assert!(eq("\\ln e", "1"));
        assert!(eq("e^{i\\pi}", "-1"));
        assert!(!eq("e^{i\\pi}", "1"));
        assert!(eq("i^2", "-1"));
        assert!(eq("3+4i", "4i+3"));
        assert!(!eq("3+4i", "4+3i"));
        assert!(eq("(5)", "5"));
        assert!(eq("(\\frac{1}{2},3)", "(0.5,3)"));
        assert!(eq(
            "[\\begin{array}{cc}1&2\\\\3&4\\end{array}]",
            "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}"
        ));
    }

    #[test]
    fn hostile_inputs_get_a_verdict() {
        let huge = parse("2003^{2002^{2001}}").unwrap();
        let other = parse("2004^{2002^{2001}}").unwrap();
        assert!(!is_same(equivalent(&huge, &other)));
        let deep = format!("{}1{}", "{".repeat(10_000), "}".repeat(10_000));
        assert!(parse(&deep).is_none());
        let long = "1+".repeat(5000) + "1";
        assert!(parse(&long).is_none());
    }
}
