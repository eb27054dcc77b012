//! Metrics over samples: greedy accuracy, maj@k (vote over equivalence classes, not raw strings)
//! and the unbiased pass@k estimator (Chen et al. 2021, as used for DeepSeekMath's pass@k).

use crate::equiv::is_equiv;

/// Majority vote over answers grouped by equivalence; ties go to the class seen first.
/// Returns the index of a representative answer of the winning class, or `None` if all are empty.
pub fn majority(answers: &[String]) -> Option<usize> {
    let mut classes: Vec<(usize, usize)> = vec![]; // (representative, count)
    for (i, a) in answers.iter().enumerate() {
        if a.trim().is_empty() {
            continue;
        }
        match classes
            .iter_mut()
            .find(|(rep, _)| is_equiv(a, &answers[*rep]).correct)
        {
            Some(c) => c.1 += 1,
            None => classes.push((i, 1)),
        }
    }
    let mut best: Option<(usize, usize)> = None;
    for &(rep, count) in &classes {
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((rep, count));
        }
    }
    best.map(|(rep, _)| rep)
}

/// Unbiased pass@k from `n` samples of which `c` are correct: 1 - C(n-c, k) / C(n, k).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    if n < k || k == 0 {
        return f64::NAN;
    }
    if n - c < k {
        return 1.0;
    }
    // prod_{i = n-c+1}^{n} (1 - k / i)
    1.0 - ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_votes_over_equivalence_classes() {
        let a: Vec<String> = ["0.5", "\\frac{1}{2}", "3", "3", "1/2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // {0.5, 1/2, \frac12} has 3 votes: it wins although "3" is the most frequent string.
        assert_eq!(majority(&a), Some(0));
        assert_eq!(majority(&["".into(), "".into()]), None);
    }

    #[test]
    fn pass_at_k_matches_the_closed_form() {
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        // 1 - C(7,2)/C(10,2) = 1 - 21/45
        assert!((pass_at_k(10, 3, 2) - (1.0 - 21.0 / 45.0)).abs() < 1e-12);
        assert_eq!(pass_at_k(5, 5, 3), 1.0);
        assert_eq!(pass_at_k(5, 0, 3), 0.0);
    }
}
