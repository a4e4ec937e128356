//! Adam whose state can be saved and restored: moments keyed by each parameter's path in the
//! module (`blocks.3.conv1.weight`), which survives saving the network and loading it again
//! (parameter ids do not), so that a resumed run continues exactly where it stopped.
//! Also freezing parameters by path (fine-tuning only the last blocks).

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Gradients, Tensor, TensorData};
use likeness_nn::optim::AdamConfig;
use likeness_nn::weights::WeightMap;

use crate::error::{LearnError, Result};

/// Prefix of the moment tensors in a checkpoint's weight map.
const FIRST_MOMENT: &str = "adam.m.";
const SECOND_MOMENT: &str = "adam.v.";
/// Metadata key of the step count.
const STEPS_KEY: &str = "adam.steps";

/// One parameter's moments, flat, with its shape.
#[derive(Debug, Clone, PartialEq)]
struct Moments {
    shape: Vec<usize>,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// Adam with bias correction (Kingma & Ba 2015), state keyed by parameter path.
#[derive(Debug, Clone)]
pub struct Adam {
    pub config: AdamConfig,
    /// Steps taken so far (for the bias correction).
    pub steps: u64,
    moments: BTreeMap<String, Moments>,
}

impl Adam {
    pub fn new(config: AdamConfig) -> Self {
        Self {
            config,
            steps: 0,
            moments: BTreeMap::new(),
        }
    }

    /// One update of every parameter of `module` that has a gradient in `grads`; the others
    /// (frozen, or unused by the loss) are left as they are.
    pub fn step<M: Module>(&mut self, module: M, grads: &Gradients) -> M {
        self.steps += 1;
        let mut update = Update {
            grads,
            adam: self,
            path: Vec::new(),
        };
        module.map(&mut update)
    }

    /// Writes the moments and step count into `map` (beside the network's own weights).
    pub fn save_into(&self, map: &mut WeightMap) -> Result<()> {
        for (path, m) in &self.moments {
            map.insert(
                format!("{FIRST_MOMENT}{path}"),
                m.shape.clone(),
                m.m.clone(),
            )?;
            map.insert(
                format!("{SECOND_MOMENT}{path}"),
                m.shape.clone(),
                m.v.clone(),
            )?;
        }
        map.set_meta(STEPS_KEY, self.steps.to_string());
        Ok(())
    }

    /// Restores what [`Adam::save_into`] wrote; a map without optimiser state leaves a fresh
    /// optimiser (a network saved by something else).
    pub fn restore_from(&mut self, map: &WeightMap) -> Result<()> {
        let Some(steps) = map.meta(STEPS_KEY) else {
            return Ok(());
        };
        self.steps = steps
            .parse()
            .map_err(|_| LearnError::Data(format!("checkpoint: bad {STEPS_KEY} {steps:?}")))?;
        self.moments.clear();
        for (name, m) in map.iter() {
            let Some(path) = name.strip_prefix(FIRST_MOMENT) else {
                continue;
            };
            let v = map.get(&format!("{SECOND_MOMENT}{path}"))?;
            if v.shape != m.shape {
                return Err(LearnError::Data(format!(
                    "checkpoint: moments of {path} have shapes {:?} and {:?}",
                    m.shape, v.shape
                )));
            }
            self.moments.insert(
                path.to_string(),
                Moments {
                    shape: m.shape.clone(),
                    m: m.data.clone(),
                    v: v.data.clone(),
                },
            );
        }
        Ok(())
    }
}

/// Whether a map holds optimiser state (it is a training checkpoint).
pub fn has_state(map: &WeightMap) -> bool {
    map.meta(STEPS_KEY).is_some()
}

/// Dots the path stack of a mapper into a parameter name.
fn joined(path: &[String]) -> String {
    path.join(".")
}

struct Update<'a> {
    grads: &'a Gradients,
    adam: &'a mut Adam,
    path: Vec<String>,
}

impl ModuleMapper for Update<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = tensor.grad(self.grads) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let name = joined(&self.path);
        let theta = adam_update(tensor.inner(), grad, &name, self.adam);
        let mut updated = Tensor::from_inner(theta);
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// One Adam update of `theta` (no autodiff) with gradient `g`; the moments live on the host,
/// so that they can be written to a checkpoint at any time.
fn adam_update<const D: usize>(
    theta: Tensor<D>,
    g: Tensor<D>,
    name: &str,
    adam: &mut Adam,
) -> Tensor<D> {
    let c = adam.config;
    let device = theta.device();
    let shape = theta.dims();
    let to_tensor =
        |values: Vec<f32>| Tensor::<D>::from_data(TensorData::new(values, shape), &device);
    let g2 = g.clone().powi_scalar(2);
    let (m, v) = match adam.moments.remove(name) {
        Some(prev) if prev.shape == shape.to_vec() => (
            to_tensor(prev.m).mul_scalar(c.beta1) + g.mul_scalar(1.0 - c.beta1),
            to_tensor(prev.v).mul_scalar(c.beta2) + g2.mul_scalar(1.0 - c.beta2),
        ),
        _ => (g.mul_scalar(1.0 - c.beta1), g2.mul_scalar(1.0 - c.beta2)),
    };
    let t = i32::try_from(adam.steps).unwrap_or(i32::MAX);
    let step = m
        .clone()
        .div_scalar(1.0 - c.beta1.powi(t))
        .div(
            v.clone()
                .div_scalar(1.0 - c.beta2.powi(t))
                .sqrt()
                .add_scalar(c.epsilon),
        )
        .mul_scalar(c.lr);
    let mut theta = theta;
    if c.weight_decay != 0.0 {
        theta = theta.clone() - theta.mul_scalar(c.lr * c.weight_decay);
    }
    let host = |t: Tensor<D>| t.into_data().try_to_vec::<f32>().unwrap_or_default();
    adam.moments.insert(
        name.to_string(),
        Moments {
            shape: shape.to_vec(),
            m: host(m),
            v: host(v),
        },
    );
    theta - step
}

/// Parameter names of `module` in visiting order (the paths [`Adam`] keys its state by).
pub fn parameter_names<M: Module>(module: M) -> (M, Vec<String>) {
    let mut names = Names {
        path: Vec::new(),
        names: Vec::new(),
    };
    let module = module.map(&mut names);
    (module, names.names)
}

struct Names {
    path: Vec<String>,
    names: Vec<String>,
}

impl ModuleMapper for Names {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.names.push(joined(&self.path));
        param
    }
}

/// Sets which parameters train: those for which `trainable(path)` is true require gradients,
/// the rest are frozen (no gradient flows into them, and the optimiser skips them).
pub fn set_trainable<M: Module>(module: M, trainable: impl Fn(&str) -> bool) -> M {
    let mut freezer = Freezer {
        path: Vec::new(),
        trainable,
    };
    module.map(&mut freezer)
}

struct Freezer<F> {
    path: Vec<String>,
    trainable: F,
}

impl<F: Fn(&str) -> bool> ModuleMapper for Freezer<F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let on = (self.trainable)(&joined(&self.path));
        param.set_require_grad(on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::Linear;
    use likeness_nn::device::cpu_autodiff;

    #[derive(Module, Debug)]
    struct Two {
        first: Linear,
        rest: Vec<Linear>,
    }

    fn linear(values: Vec<f32>) -> Linear {
        let device = cpu_autodiff();
        Linear {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(values, [2, 1]), &device)),
            bias: Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.5f32], [1]),
                &device,
            ))),
        }
    }

    fn two() -> Two {
        Two {
            first: linear(vec![1.0, -2.0]),
            rest: vec![linear(vec![0.3, 0.4])],
        }
    }

    fn loss(net: &Two) -> Gradients {
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, -1.0, 0.5], [2, 2]),
            &cpu_autodiff(),
        );
        let y = net.first.forward(x.clone()) + net.rest[0].forward(x);
        y.powi_scalar(2).sum().backward()
    }

    fn weights(net: &Two) -> Vec<f32> {
        [net.first.weight.val(), net.rest[0].weight.val()]
            .into_iter()
            .flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn names_are_module_paths() {
        let (_, names) = parameter_names(two());
        assert_eq!(
            names,
            vec!["first.weight", "first.bias", "rest.0.weight", "rest.0.bias"]
        );
    }

    #[test]
    fn saved_state_continues_exactly() {
        let config = AdamConfig::new(0.1);
        // Three steps in one go.
        let mut adam = Adam::new(config);
        let mut a = two();
        for _ in 0..3 {
            let g = loss(&a);
            a = adam.step(a, &g);
        }
        // One step, state through a weight map into a fresh optimiser, two more steps.
        let mut first = Adam::new(config);
        let mut b = two();
        let g = loss(&b);
        b = first.step(b, &g);
        let mut map = WeightMap::new();
        first.save_into(&mut map).unwrap();
        assert!(has_state(&map));
        let mut second = Adam::new(config);
        second.restore_from(&map).unwrap();
        assert_eq!(second.steps, 1);
        for _ in 0..2 {
            let g = loss(&b);
            b = second.step(b, &g);
        }
        assert_eq!(weights(&a), weights(&b));
        // Without the moments the path differs.
        let mut c = two();
        let mut fresh = Adam::new(config);
        let g = loss(&c);
        c = first.clone().step(c, &g);
        for _ in 0..2 {
            let g = loss(&c);
            c = fresh.step(c, &g);
        }
        assert_ne!(weights(&a), weights(&c));
    }

    #[test]
    fn frozen_parameters_stay_put() {
        let net = set_trainable(two(), |p| p.starts_with("rest."));
        let before = weights(&net);
        let mut adam = Adam::new(AdamConfig::new(0.1));
        let g = loss(&net);
        let net = adam.step(net, &g);
        let after = weights(&net);
        assert_eq!(before[..2], after[..2]);
        assert_ne!(before[2..], after[2..]);
    }
}
