//! Complex evaluation of constant answers in which `i` is the imaginary unit (`e^{i\pi}`,
//! `(1+i)^2`, `\frac{1}{i}`), for answer equivalence when `i` is an answer's only letter.

use super::{Expr, Q};

/// A complex number `re + im i`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct C {
    pub re: f64,
    pub im: f64,
}

impl C {
    fn real(re: f64) -> C {
        C { re, im: 0.0 }
    }
    fn add(self, o: C) -> C {
        C {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
    fn sub(self, o: C) -> C {
        C {
            re: self.re - o.re,
            im: self.im - o.im,
        }
    }
    fn mul(self, o: C) -> C {
        C {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    fn div(self, o: C) -> Option<C> {
        let d = o.re * o.re + o.im * o.im;
        (d != 0.0).then(|| C {
            re: (self.re * o.re + self.im * o.im) / d,
            im: (self.im * o.re - self.re * o.im) / d,
        })
    }
    fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    fn exp(self) -> C {
        let r = self.re.exp();
        C {
            re: r * self.im.cos(),
            im: r * self.im.sin(),
        }
    }
    /// Principal logarithm.
    fn ln(self) -> Option<C> {
        (self.abs() != 0.0).then(|| C {
            re: self.abs().ln(),
            im: self.im.atan2(self.re),
        })
    }
    /// `self^p`: repeated products for small integer powers (exact for `i^2`), else
    /// `exp(p ln self)` on the principal branch.
    fn pow(self, p: C) -> Option<C> {
        if p.im == 0.0 && p.re.fract() == 0.0 && p.re.abs() <= 64.0 {
            let mut r = C::real(1.0);
            for _ in 0..p.re.abs() as u32 {
                r = r.mul(self);
            }
            return if p.re < 0.0 {
                C::real(1.0).div(r)
            } else {
                Some(r)
            };
        }
        if self.abs() == 0.0 {
            return Some(C::real(0.0));
        }
        Some(self.ln()?.mul(p).exp())
    }
}

fn q(q: &Q) -> C {
    C::real(q.to_f64())
}

/// The complex value of a constant expression in `i`; `None` for anything outside arithmetic,
/// powers, roots, `exp`, `ln`, `sin`, `cos` and `|.|`.
pub fn eval(e: &Expr) -> Option<C> {
    Some(match e {
        Expr::Num(x) | Expr::Dec(x, _) => q(x),
        Expr::Float(f) => C::real(*f),
        Expr::Pi => C::real(std::f64::consts::PI),
        Expr::E => C::real(std::f64::consts::E),
        Expr::Var(v) if v == "i" => C { re: 0.0, im: 1.0 },
        Expr::Neg(a) => C::real(0.0).sub(eval(a)?),
        Expr::Add(a, b) => eval(a)?.add(eval(b)?),
        Expr::Sub(a, b) => eval(a)?.sub(eval(b)?),
        Expr::Mul(a, b) => eval(a)?.mul(eval(b)?),
        Expr::Div(a, b) => eval(a)?.div(eval(b)?)?,
        Expr::Pow(a, b) => eval(a)?.pow(eval(b)?)?,
        Expr::Percent(a) => eval(a)?.mul(C::real(0.01)),
        Expr::Func(f, a) => {
            let x = eval(a)?;
            match f.as_str() {
                "sqrt" => x.pow(C::real(0.5))?,
                "exp" => x.exp(),
                "ln" => x.ln()?,
                "abs" => C::real(x.abs()),
                // sin z = (e^{iz} - e^{-iz}) / 2i, cos z = (e^{iz} + e^{-iz}) / 2
                "sin" | "cos" => {
                    let iz = C { re: 0.0, im: 1.0 }.mul(x);
                    let (p, m) = (iz.exp(), C::real(0.0).sub(iz).exp());
                    if f == "sin" {
                        p.sub(m).div(C { re: 0.0, im: 2.0 })?
                    } else {
                        p.add(m).mul(C::real(0.5))
                    }
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Equal within relative tolerance `rel` of the larger modulus (absolute 1e-12 near zero).
pub fn close(a: C, b: C, rel: f64) -> bool {
    let (d, m) = (a.sub(b).abs(), a.abs().max(b.abs()));
    d.is_finite() && d <= rel * m + 1e-12
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::parse;

    fn value(s: &str) -> C {
        eval(&parse(s).unwrap()).unwrap()
    }

    #[test]
    fn euler_and_powers_of_i() {
        assert!(close(value("e^{i\\pi}"), C::real(-1.0), 1e-9));
        assert!(close(value("i^2"), C::real(-1.0), 0.0));
        assert!(close(value("(1+i)^2"), C { re: 0.0, im: 2.0 }, 1e-12));
        assert!(close(value("\\frac{1}{i}"), C { re: 0.0, im: -1.0 }, 1e-12));
        assert!(!close(value("3+4i"), value("4+3i"), 1e-4));
    }
}
