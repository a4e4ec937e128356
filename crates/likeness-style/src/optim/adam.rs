//! Adam (Kingma & Ba) on the pixels.

use super::{Evaluation, Minimizer, Objective, StepReport, Stop, all_finite};
use crate::error::Result;

/// Adam's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Step size, in the units of x (pixels on the 0–255 scale for style transfer).
    pub learning_rate: f64,
    /// Decay of the first-moment average.
    pub beta1: f64,
    /// Decay of the second-moment average.
    pub beta2: f64,
    /// Added to √v so that flat directions do not divide by zero.
    pub epsilon: f64,
}

impl Default for AdamConfig {
    /// The paper's betas and epsilon with neural-style's learning rate of 10 (pixel units).
    fn default() -> Self {
        AdamConfig {
            learning_rate: 10.0,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Adam's state over one vector.
#[derive(Debug, Clone)]
pub struct Adam {
    config: AdamConfig,
    /// Where the next evaluation happens.
    x: Vec<f32>,
    /// The last point whose J was finite, and that J.
    good: Option<(Vec<f32>, f64)>,
    m: Vec<f32>,
    v: Vec<f32>,
    iteration: usize,
    evaluations: usize,
    stop: Option<Stop>,
}

impl Adam {
    /// Starts at `x0`.
    pub fn new(config: AdamConfig, x0: Vec<f32>) -> Self {
        let n = x0.len();
        Adam {
            config,
            x: x0,
            good: None,
            m: vec![0.0; n],
            v: vec![0.0; n],
            iteration: 0,
            evaluations: 0,
            stop: None,
        }
    }

    fn report(&self) -> StepReport {
        StepReport {
            iteration: self.iteration,
            evaluations: self.evaluations,
            loss: self.good.as_ref().map_or(f64::NAN, |g| g.1),
            stop: self.stop,
        }
    }
}

impl Minimizer for Adam {
    /// Evaluates J at the current point, records it as the last good one, and moves.
    fn step(&mut self, objective: &mut Objective<'_>) -> Result<StepReport> {
        if self.stop.is_some() {
            return Ok(self.report());
        }
        let Evaluation { loss, grad } = objective(&self.x)?;
        self.evaluations += 1;
        if !loss.is_finite() || !all_finite(&grad) {
            self.stop = Some(Stop::NonFinite);
            return Ok(self.report());
        }
        self.iteration += 1;
        let c = &self.config;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let t = self.iteration as i32;
        let step =
            (c.learning_rate * (1.0 - c.beta2.powi(t)).sqrt() / (1.0 - c.beta1.powi(t))) as f32;
        let eps = c.epsilon as f32;
        let mut next = self.x.clone();
        for i in 0..next.len() {
            let g = grad[i];
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
            next[i] -= step * self.m[i] / (self.v[i].sqrt() + eps);
        }
        let previous = std::mem::replace(&mut self.x, next);
        self.good = Some((previous, loss));
        Ok(self.report())
    }

    fn x(&self) -> &[f32] {
        self.good.as_ref().map_or(&self.x, |g| &g.0)
    }

    fn loss(&self) -> Option<f64> {
        self.good.as_ref().map(|g| g.1)
    }
}
