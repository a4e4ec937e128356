//! Minimisers over a flat vector of f32 (the generated image's pixels), driven one step at a
//! time so that the caller can report progress, save checkpoints or stop between steps.
//!
//! The objective returns J and ∂J/∂x; it is the only thing the minimisers know about the
//! problem. Both keep the invariant that [`Minimizer::x`] is a point whose J was evaluated and
//! finite, so a NaN or Inf anywhere stops the run with the last good image in hand.

mod adam;
mod lbfgs;

pub use adam::{Adam, AdamConfig};
pub use lbfgs::{Lbfgs, LbfgsConfig, LineSearch};

use crate::error::Result;

/// J and its gradient at one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// J(x).
    pub loss: f64,
    /// ∂J/∂x, as long as x.
    pub grad: Vec<f32>,
}

/// The objective: J and ∂J/∂x at x.
pub type Objective<'a> = dyn FnMut(&[f32]) -> Result<Evaluation> + 'a;

/// Why a minimiser stopped on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The largest gradient component fell below the gradient tolerance.
    GradientTolerance,
    /// The step or the change of J fell below the change tolerance.
    ChangeTolerance,
    /// The line search found no point that lowers J.
    LineSearchFailed,
    /// J or its gradient was NaN or infinite; the minimiser kept its last good point.
    NonFinite,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Steps taken so far, this one included.
    pub iteration: usize,
    /// Objective evaluations so far.
    pub evaluations: usize,
    /// J at [`Minimizer::x`] after the step.
    pub loss: f64,
    /// Set when the minimiser has stopped: further steps do nothing.
    pub stop: Option<Stop>,
}

/// A step-at-a-time minimiser.
pub trait Minimizer {
    /// Takes one step (L-BFGS: one direction and its line search; Adam: one update).
    fn step(&mut self, objective: &mut Objective<'_>) -> Result<StepReport>;
    /// The current point, always one whose J was finite (or the start, before any step).
    fn x(&self) -> &[f32];
    /// J at [`Minimizer::x`], once evaluated.
    fn loss(&self) -> Option<f64>;
}

/// Σ a_i b_i, accumulated in f64.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
    // Four accumulators let the compiler vectorise without reordering a single f64 sum.
    let mut acc = [0.0f64; 4];
    let (ca, ra) = a.as_chunks::<4>();
    let (cb, rb) = b.as_chunks::<4>();
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] as f64 * y[k] as f64;
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| *x as f64 * *y as f64).sum();
    acc.iter().sum::<f64>() + tail
}

/// y += a·x.
pub(crate) fn axpy(a: f64, x: &[f32], y: &mut [f32]) {
    let a = a as f32;
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// max |x_i|.
pub(crate) fn norm_inf(x: &[f32]) -> f64 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64
}

/// Σ |x_i|.
pub(crate) fn norm_1(x: &[f32]) -> f64 {
    x.iter().map(|v| v.abs() as f64).sum()
}

/// True when every value is finite.
pub(crate) fn all_finite(x: &[f32]) -> bool {
    x.iter().all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock in 2·k dimensions (k independent pairs), minimum 0 at all ones.
    fn rosenbrock(x: &[f32]) -> Result<Evaluation> {
        let mut loss = 0.0;
        let mut grad = vec![0.0f32; x.len()];
        for i in (0..x.len()).step_by(2) {
            let (a, b) = (x[i] as f64, x[i + 1] as f64);
            loss += 100.0 * (b - a * a).powi(2) + (1.0 - a).powi(2);
            grad[i] = (-400.0 * a * (b - a * a) - 2.0 * (1.0 - a)) as f32;
            grad[i + 1] = (200.0 * (b - a * a)) as f32;
        }
        Ok(Evaluation { loss, grad })
    }

    /// ½ Σ c_i (x_i − i)², an ill-conditioned quadratic (c from 1 to 1000).
    fn quadratic(x: &[f32]) -> Result<Evaluation> {
        let n = x.len();
        let mut loss = 0.0;
        let mut grad = vec![0.0f32; n];
        for (i, &xi) in x.iter().enumerate() {
            let c = 1000f64.powf(i as f64 / (n - 1) as f64);
            let r = xi as f64 - i as f64;
            loss += 0.5 * c * r * r;
            grad[i] = (c * r) as f32;
        }
        Ok(Evaluation { loss, grad })
    }

    fn run(m: &mut dyn Minimizer, f: &mut Objective<'_>, max: usize) -> StepReport {
        let mut last = None;
        for _ in 0..max {
            let r = m.step(f).unwrap();
            last = Some(r);
            if r.stop.is_some() {
                break;
            }
        }
        last.unwrap()
    }

    #[test]
    fn lbfgs_minimises_rosenbrock() {
        let x0: Vec<f32> = [-1.2f32, 1.0].repeat(3);
        let mut opt = Lbfgs::new(LbfgsConfig::default(), x0);
        let r = run(&mut opt, &mut rosenbrock, 200);
        assert!(r.loss < 1e-8, "{r:?}");
        assert!(
            opt.x().iter().all(|v| (v - 1.0).abs() < 1e-3),
            "{:?}",
            opt.x()
        );
        // Strong Wolfe: about one or two evaluations per iteration on this classic.
        assert!(
            r.iteration < 100 && r.evaluations < 3 * r.iteration,
            "{r:?}"
        );
    }

    #[test]
    fn lbfgs_minimises_ill_conditioned_quadratic() {
        let mut opt = Lbfgs::new(LbfgsConfig::default(), vec![0.0; 50]);
        let r = run(&mut opt, &mut quadratic, 300);
        assert!(r.loss < 1e-6, "{r:?}");
        for (i, v) in opt.x().iter().enumerate() {
            assert!((v - i as f32).abs() < 1e-2, "x[{i}] = {v}");
        }
        // A short history still converges.
        let config = LbfgsConfig {
            history: 3,
            ..LbfgsConfig::default()
        };
        let mut opt = Lbfgs::new(config, vec![0.0; 50]);
        assert!(run(&mut opt, &mut quadratic, 1000).loss < 1e-6);
    }

    #[test]
    fn lbfgs_fixed_step_on_quadratic() {
        let config = LbfgsConfig {
            line_search: LineSearch::Fixed,
            ..LbfgsConfig::default()
        };
        let mut opt = Lbfgs::new(config, vec![0.0; 20]);
        let r = run(&mut opt, &mut quadratic, 500);
        assert!(r.loss < 1e-4, "{r:?}");
        assert_eq!(r.evaluations, r.iteration + 1);
    }

    #[test]
    fn lbfgs_backs_off_from_non_finite_trials() {
        // Undefined (NaN) for x > 2: the line search must shrink into the defined region.
        let mut f = |x: &[f32]| -> Result<Evaluation> {
            let v = x[0] as f64;
            if v > 2.0 {
                return Ok(Evaluation {
                    loss: f64::NAN,
                    grad: vec![f32::NAN],
                });
            }
            Ok(Evaluation {
                loss: (v - 1.9).powi(2),
                grad: vec![(2.0 * (v - 1.9)) as f32],
            })
        };
        let config = LbfgsConfig {
            learning_rate: 100.0,
            ..LbfgsConfig::default()
        };
        let mut opt = Lbfgs::new(config, vec![-5.0]);
        let r = run(&mut opt, &mut f, 50);
        assert!(opt.x()[0].is_finite() && opt.x()[0] <= 2.0);
        assert!((opt.x()[0] - 1.9).abs() < 1e-3, "{r:?} {:?}", opt.x());
    }

    #[test]
    fn non_finite_start_stops_and_keeps_the_point() {
        let mut f = |_: &[f32]| -> Result<Evaluation> {
            Ok(Evaluation {
                loss: f64::INFINITY,
                grad: vec![0.0],
            })
        };
        let mut opt = Lbfgs::new(LbfgsConfig::default(), vec![3.0]);
        assert_eq!(opt.step(&mut f).unwrap().stop, Some(Stop::NonFinite));
        assert_eq!(opt.x(), &[3.0]);
        let mut adam = Adam::new(AdamConfig::default(), vec![3.0]);
        assert_eq!(adam.step(&mut f).unwrap().stop, Some(Stop::NonFinite));
        assert_eq!(adam.x(), &[3.0]);
    }

    #[test]
    fn adam_minimises_quadratic() {
        let config = AdamConfig {
            learning_rate: 0.5,
            ..AdamConfig::default()
        };
        let mut opt = Adam::new(config, vec![0.0; 10]);
        let r = run(&mut opt, &mut quadratic, 2000);
        assert!(r.loss < 1e-2, "{r:?}");
    }

    #[test]
    fn dot_accumulates_in_f64() {
        let a = vec![1.0f32; 10_000_001];
        assert_eq!(dot(&a, &a), 10_000_001.0);
    }
}
