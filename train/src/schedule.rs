//! Learning-rate schedules: DeepSeekMath's multi-step (§3.1: linear warmup over 2,000 steps, the
//! peak until 80% of training, 31.6% of the peak until 90%, then 10%), warmup + cosine, constant.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    MultiStep,
    Cosine,
    Constant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub peak_lr: f64,
    pub warmup_steps: u64,
    /// Multi-step: (fraction of total steps, factor of the peak) pairs.
    pub milestones: Vec<(f64, f64)>,
    /// Cosine: the final learning rate as a fraction of the peak.
    pub min_ratio: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            kind: ScheduleKind::MultiStep,
            peak_lr: 4.2e-4,
            warmup_steps: 2000,
            milestones: vec![(0.8, 0.316), (0.9, 0.1)],
            min_ratio: 0.1,
        }
    }
}

impl Schedule {
    /// The learning rate of step `step` (0-based) of `total`.
    pub fn lr(&self, step: u64, total: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.kind {
            ScheduleKind::Constant => self.peak_lr,
            ScheduleKind::MultiStep => {
                let mut f = 1.0;
                for &(at, factor) in &self.milestones {
                    if step >= (at * total as f64) as u64 {
                        f = factor;
                    }
                }
                self.peak_lr * f
            }
            ScheduleKind::Cosine => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let min = self.peak_lr * self.min_ratio;
                min + (self.peak_lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepseekmath_multistep() {
        let s = Schedule::default();
        assert_eq!(s.lr(0, 100_000), 4.2e-4 / 2000.0);
        assert_eq!(s.lr(1999, 100_000), 4.2e-4);
        assert_eq!(s.lr(79_999, 100_000), 4.2e-4);
        assert!((s.lr(80_000, 100_000) - 4.2e-4 * 0.316).abs() < 1e-15);
        assert!((s.lr(90_000, 100_000) - 4.2e-5).abs() < 1e-15);
    }

    #[test]
    fn cosine_ends_at_min() {
        let s = Schedule {
            kind: ScheduleKind::Cosine,
            peak_lr: 1.0,
            warmup_steps: 10,
            min_ratio: 0.1,
            ..Default::default()
        };
        assert_eq!(s.lr(10, 110), 1.0);
        assert!((s.lr(60, 110) - 0.55).abs() < 1e-12);
        assert!((s.lr(110, 110) - 0.1).abs() < 1e-12);
    }
}
