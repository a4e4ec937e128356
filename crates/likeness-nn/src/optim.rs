//! First-order optimisers over a module's parameters: SGD with momentum and Adam.
//!
//! burn's `optim` feature is left off (it would rebuild burn for everyone); these are the two
//! update rules the project needs, applied through burn's [`ModuleMapper`]. Each step takes the
//! gradients of one `loss.backward()`; parameters without a gradient (frozen, or unused by the
//! loss) are left as they are. State (velocities, moments) is keyed by parameter id.
//!
//! ```ignore
//! let mut adam = Adam::new(AdamConfig::new(1e-3));
//! let grads = loss.backward();
//! model = adam.step(model, &grads);
//! ```

use std::any::Any;
use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::{Gradients, Tensor};

/// SGD settings. `momentum` 0 gives plain gradient descent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    /// L2 penalty added to the gradient (`g + weight_decay · θ`), as PyTorch's SGD does.
    pub weight_decay: f64,
}

impl SgdConfig {
    /// Momentum 0.9 (the usual choice), no weight decay.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            momentum: 0.9,
            weight_decay: 0.0,
        }
    }
}

/// Adam settings (Kingma & Ba 2015); the defaults are the paper's β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// Decoupled weight decay (AdamW: `θ ← θ − lr · weight_decay · θ`); 0 is plain Adam.
    pub weight_decay: f64,
}

impl AdamConfig {
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Per-parameter state of any rank, keyed by parameter id.
#[derive(Default)]
struct State {
    tensors: HashMap<ParamId, Box<dyn Any + Send>>,
}

impl State {
    /// The state for `id`, if there is one of type `T` (another type means another parameter
    /// reused the id: start afresh rather than fail).
    fn take<T: 'static>(&mut self, id: ParamId) -> Option<T> {
        self.tensors
            .remove(&id)
            .and_then(|b| b.downcast::<T>().ok())
            .map(|b| *b)
    }

    fn put<T: Send + 'static>(&mut self, id: ParamId, value: T) {
        self.tensors.insert(id, Box::new(value));
    }
}

/// Stochastic gradient descent with (heavy-ball) momentum, PyTorch's formulation:
/// `v ← μ·v + g`, `θ ← θ − lr·v`.
pub struct Sgd {
    pub config: SgdConfig,
    velocity: State,
}

impl Sgd {
    pub fn new(config: SgdConfig) -> Self {
        Self {
            config,
            velocity: State::default(),
        }
    }

    /// One update of every parameter of `module` that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, module: M, grads: &Gradients) -> M {
        module.map(&mut Update {
            grads,
            rule: Rule::Sgd(&self.config, &mut self.velocity),
        })
    }
}

/// Adam with bias correction; with `weight_decay` > 0 it is AdamW.
pub struct Adam {
    pub config: AdamConfig,
    /// Steps taken so far (for the bias correction).
    pub steps: u64,
    moments: State,
}

impl Adam {
    pub fn new(config: AdamConfig) -> Self {
        Self {
            config,
            steps: 0,
            moments: State::default(),
        }
    }

    /// One update of every parameter of `module` that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, module: M, grads: &Gradients) -> M {
        self.steps += 1;
        module.map(&mut Update {
            grads,
            rule: Rule::Adam(&self.config, self.steps, &mut self.moments),
        })
    }
}

enum Rule<'a> {
    Sgd(&'a SgdConfig, &'a mut State),
    Adam(&'a AdamConfig, u64, &'a mut State),
}

struct Update<'a> {
    grads: &'a Gradients,
    rule: Rule<'a>,
}

impl ModuleMapper for Update<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = tensor.grad(self.grads) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        // The update itself is not part of any graph.
        let theta = tensor.inner();
        let theta = match &mut self.rule {
            Rule::Sgd(c, state) => sgd(theta, grad, id, c, state),
            Rule::Adam(c, t, state) => adam(theta, grad, id, c, *t, state),
        };
        let mut updated = Tensor::from_inner(theta);
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

fn sgd<const D: usize>(
    theta: Tensor<D>,
    mut g: Tensor<D>,
    id: ParamId,
    c: &SgdConfig,
    state: &mut State,
) -> Tensor<D> {
    if c.weight_decay != 0.0 {
        g = g + theta.clone().mul_scalar(c.weight_decay);
    }
    if c.momentum == 0.0 {
        return theta - g.mul_scalar(c.lr);
    }
    let v = match state.take::<Tensor<D>>(id) {
        Some(v) => v.mul_scalar(c.momentum) + g,
        None => g,
    };
    state.put(id, v.clone());
    theta - v.mul_scalar(c.lr)
}

fn adam<const D: usize>(
    mut theta: Tensor<D>,
    g: Tensor<D>,
    id: ParamId,
    c: &AdamConfig,
    t: u64,
    state: &mut State,
) -> Tensor<D> {
    let g2 = g.clone().powi_scalar(2);
    let (m, v) = match state.take::<(Tensor<D>, Tensor<D>)>(id) {
        Some((m, v)) => (
            m.mul_scalar(c.beta1) + g.mul_scalar(1.0 - c.beta1),
            v.mul_scalar(c.beta2) + g2.mul_scalar(1.0 - c.beta2),
        ),
        None => (g.mul_scalar(1.0 - c.beta1), g2.mul_scalar(1.0 - c.beta2)),
    };
    let t = i32::try_from(t).unwrap_or(i32::MAX);
    let m_correction = 1.0 - c.beta1.powi(t);
    let v_correction = 1.0 - c.beta2.powi(t);
    let step = m
        .clone()
        .div_scalar(m_correction)
        .div(
            v.clone()
                .div_scalar(v_correction)
                .sqrt()
                .add_scalar(c.epsilon),
        )
        .mul_scalar(c.lr);
    if c.weight_decay != 0.0 {
        theta = theta.clone() - theta.mul_scalar(c.lr * c.weight_decay);
    }
    state.put(id, (m, v));
    theta - step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu_autodiff;
    use burn::tensor::TensorData;

    #[derive(Module, Debug)]
    struct Point {
        p: Param<Tensor<1>>,
    }

    fn point(values: Vec<f32>) -> Point {
        let n = values.len();
        Point {
            p: Param::from_tensor(Tensor::from_data(
                TensorData::new(values, [n]),
                &cpu_autodiff(),
            )),
        }
    }

    fn values(m: &Point) -> Vec<f32> {
        m.p.val().into_data().try_into_vec::<f32>().unwrap()
    }

    /// Loss ½‖p − target‖²: gradient p − target.
    fn grads(m: &Point, target: &[f32]) -> Gradients {
        let t = Tensor::<1>::from_data(
            TensorData::new(target.to_vec(), [target.len()]),
            &cpu_autodiff(),
        );
        (m.p.val() - t)
            .powi_scalar(2)
            .sum()
            .mul_scalar(0.5)
            .backward()
    }

    #[test]
    fn sgd_momentum_follows_the_recurrence() {
        let mut sgd = Sgd::new(SgdConfig::new(0.1));
        let mut m = point(vec![1.0]);
        // v1 = g1 = 1, p = 0.9; v2 = 0.9·1 + 0.9 = 1.8, p = 0.9 − 0.18 = 0.72.
        let g = grads(&m, &[0.0]);
        m = sgd.step(m, &g);
        assert!((values(&m)[0] - 0.9).abs() < 1e-6);
        let g = grads(&m, &[0.0]);
        m = sgd.step(m, &g);
        assert!((values(&m)[0] - 0.72).abs() < 1e-6);
    }

    #[test]
    fn adam_first_step_is_lr_and_converges() {
        let mut adam = Adam::new(AdamConfig::new(0.1));
        let mut m = point(vec![3.0, -2.0]);
        // Bias-corrected first step moves every coordinate by lr against the gradient's sign.
        let g = grads(&m, &[0.0, 0.0]);
        m = adam.step(m, &g);
        let v = values(&m);
        assert!(
            (v[0] - 2.9).abs() < 1e-5 && (v[1] + 1.9).abs() < 1e-5,
            "{v:?}"
        );
        for _ in 0..300 {
            let g = grads(&m, &[1.0, 1.0]);
            m = adam.step(m, &g);
        }
        let v = values(&m);
        assert!(
            (v[0] - 1.0).abs() < 1e-2 && (v[1] - 1.0).abs() < 1e-2,
            "{v:?}"
        );
    }
}
