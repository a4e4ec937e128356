//! First-order optimisers over a module's parameters: SGD with momentum and Adam, and the
//! parameter-path utilities that go with them (names, freezing).
//!
//! burn's `optim` feature is left off (it would rebuild burn for everyone); these are the two
//! update rules the project needs, applied through burn's [`ModuleMapper`]. Each step takes the
//! gradients of one `loss.backward()`; parameters without a gradient (frozen, or unused by the
//! loss) are left as they are. State (velocities, moments) is keyed by each parameter's path in
//! the module (`blocks.3.conv1.weight`): unlike burn's parameter ids, paths survive saving the
//! network and loading it again, so Adam's state can go into a checkpoint
//! ([`Adam::save_into`], [`Adam::restore_from`]) and a resumed run continues exactly.
//!
//! ```ignore
//! let mut adam = Adam::new(AdamConfig::new(1e-3));
//! let grads = loss.backward();
//! model = adam.step(model, &grads);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Gradients, Tensor, TensorData};

use crate::error::{NnError, Result};
use crate::weights::WeightMap;

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

/// Prefixes of the moment tensors in a checkpoint's weight map (then the parameter's path).
const FIRST_MOMENT: &str = "adam.m.";
const SECOND_MOMENT: &str = "adam.v.";
/// Metadata key of Adam's step count; its presence marks a map as a training checkpoint.
const STEPS_KEY: &str = "adam.steps";

/// One state vector of a parameter, flat. Between steps it stays a tensor on the parameter's
/// device (no host round trip per step); a restored checkpoint's values wait on the host
/// until the first step moves them to the device.
#[derive(Clone)]
enum Buffer {
    Host(Vec<f32>),
    /// Boxed: a tensor handle is far larger than a `Vec`.
    Tensor(Box<Tensor<1>>),
}

impl Buffer {
    fn from_tensor<const D: usize>(t: Tensor<D>) -> Self {
        let n = t.shape().num_elements();
        // A reshape of a contiguous tensor is metadata only.
        Buffer::Tensor(Box::new(t.reshape([n])))
    }

    fn into_tensor<const D: usize>(self, shape: [usize; D], device: &Device) -> Tensor<D> {
        match self {
            Buffer::Host(values) => Tensor::from_data(TensorData::new(values, shape), device),
            Buffer::Tensor(t) => t.reshape(shape),
        }
    }

    fn to_host(&self, name: &str) -> Result<Vec<f32>> {
        match self {
            Buffer::Host(values) => Ok(values.clone()),
            Buffer::Tensor(t) => t
                .as_ref()
                .clone()
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| NnError::Mismatch(format!("reading optimiser state `{name}`: {e:?}"))),
        }
    }
}

// By hand: a tensor's Debug prints every value.
impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Buffer::Host(v) => write!(f, "Host({} values)", v.len()),
            Buffer::Tensor(t) => write!(f, "Tensor({:?})", t.dims()),
        }
    }
}

/// A parameter's `N` state vectors (SGD: the velocity; Adam: the two moments) and its shape.
#[derive(Debug, Clone)]
struct Slot<const N: usize> {
    shape: Vec<usize>,
    buffers: [Buffer; N],
}

/// State of every parameter that has had a gradient, by path.
type State<const N: usize> = BTreeMap<String, Slot<N>>;

/// Takes the state of `name` as tensors of `shape`; none if there is none, or if it was kept
/// for another shape (a parameter of the same name in another network: start afresh).
fn take<const N: usize, const D: usize>(
    state: &mut State<N>,
    name: &str,
    shape: [usize; D],
    device: &Device,
) -> Option<[Tensor<D>; N]> {
    let slot = state.remove(name).filter(|s| s.shape == shape)?;
    Some(slot.buffers.map(|b| b.into_tensor(shape, device)))
}

fn put<const N: usize, const D: usize>(state: &mut State<N>, name: &str, tensors: [Tensor<D>; N]) {
    let shape = tensors[0].dims().to_vec();
    let buffers = tensors.map(Buffer::from_tensor);
    state.insert(name.to_string(), Slot { shape, buffers });
}

/// Stochastic gradient descent with (heavy-ball) momentum, PyTorch's formulation:
/// `v ← μ·v + g`, `θ ← θ − lr·v`.
#[derive(Debug, Clone)]
pub struct Sgd {
    pub config: SgdConfig,
    velocity: State<1>,
}

impl Sgd {
    pub fn new(config: SgdConfig) -> Self {
        Self {
            config,
            velocity: State::new(),
        }
    }

    /// One update of every parameter of `module` that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, module: M, grads: &Gradients) -> M {
        module.map(&mut Update {
            grads,
            rule: Rule::Sgd(&self.config, &mut self.velocity),
            path: Vec::new(),
        })
    }
}

/// Adam with bias correction; with `weight_decay` > 0 it is AdamW.
#[derive(Debug, Clone)]
pub struct Adam {
    pub config: AdamConfig,
    /// Steps taken so far (for the bias correction).
    pub steps: u64,
    moments: State<2>,
}

impl Adam {
    pub fn new(config: AdamConfig) -> Self {
        Self {
            config,
            steps: 0,
            moments: State::new(),
        }
    }

    /// One update of every parameter of `module` that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, module: M, grads: &Gradients) -> M {
        self.steps += 1;
        module.map(&mut Update {
            grads,
            rule: Rule::Adam(&self.config, self.steps, &mut self.moments),
            path: Vec::new(),
        })
    }

    /// Writes the moments (tensors `adam.m.<path>`, `adam.v.<path>`) and the step count
    /// (metadata) into `map`, beside the network's own weights.
    pub fn save_into(&self, map: &mut WeightMap) -> Result<()> {
        for (path, slot) in &self.moments {
            let [m, v] = &slot.buffers;
            for (prefix, buffer) in [(FIRST_MOMENT, m), (SECOND_MOMENT, v)] {
                let name = format!("{prefix}{path}");
                let values = buffer.to_host(&name)?;
                map.insert(name, slot.shape.clone(), values)?;
            }
        }
        map.set_meta(STEPS_KEY, self.steps.to_string());
        Ok(())
    }

    /// Restores what [`Adam::save_into`] wrote; a map without optimiser state (a network
    /// saved by something else) leaves the optimiser as it is.
    pub fn restore_from(&mut self, map: &WeightMap) -> Result<()> {
        let Some(steps) = map.meta(STEPS_KEY) else {
            return Ok(());
        };
        let steps = steps.parse().map_err(|_| {
            NnError::Mismatch(format!(
                "optimiser metadata `{STEPS_KEY}` is {steps:?}, not a step count"
            ))
        })?;
        let mut moments = State::new();
        for (name, m) in map.iter() {
            let Some(path) = name.strip_prefix(FIRST_MOMENT) else {
                continue;
            };
            let v_name = format!("{SECOND_MOMENT}{path}");
            let v = map.get(&v_name)?;
            if v.shape != m.shape {
                return Err(NnError::Shape {
                    name: v_name,
                    expected: m.shape.clone(),
                    got: v.shape.clone(),
                });
            }
            moments.insert(
                path.to_string(),
                Slot {
                    shape: m.shape.clone(),
                    buffers: [Buffer::Host(m.data.clone()), Buffer::Host(v.data.clone())],
                },
            );
        }
        self.steps = steps;
        self.moments = moments;
        Ok(())
    }
}

/// Whether a map holds optimiser state (it is a training checkpoint, not just a network).
pub fn has_state(map: &WeightMap) -> bool {
    map.meta(STEPS_KEY).is_some()
}

enum Rule<'a> {
    Sgd(&'a SgdConfig, &'a mut State<1>),
    Adam(&'a AdamConfig, u64, &'a mut State<2>),
}

struct Update<'a> {
    grads: &'a Gradients,
    rule: Rule<'a>,
    /// Module names from the root to the current parameter.
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
        let name = self.path.join(".");
        // The update itself is not part of any graph.
        let theta = tensor.inner();
        let theta = match &mut self.rule {
            Rule::Sgd(c, state) => sgd(theta, grad, &name, c, state),
            Rule::Adam(c, t, state) => adam(theta, grad, &name, c, *t, state),
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
    name: &str,
    c: &SgdConfig,
    state: &mut State<1>,
) -> Tensor<D> {
    if c.weight_decay != 0.0 {
        g = g + theta.clone().mul_scalar(c.weight_decay);
    }
    if c.momentum == 0.0 {
        return theta - g.mul_scalar(c.lr);
    }
    let v = match take(state, name, theta.dims(), &theta.device()) {
        Some([v]) => v.mul_scalar(c.momentum) + g,
        None => g,
    };
    put(state, name, [v.clone()]);
    theta - v.mul_scalar(c.lr)
}

fn adam<const D: usize>(
    mut theta: Tensor<D>,
    g: Tensor<D>,
    name: &str,
    c: &AdamConfig,
    t: u64,
    state: &mut State<2>,
) -> Tensor<D> {
    let g2 = g.clone().powi_scalar(2);
    let (m, v) = match take(state, name, theta.dims(), &theta.device()) {
        Some([m, v]) => (
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
    put(state, name, [m, v]);
    theta - step
}

/// Parameter names of `module` in visiting order (the paths the optimisers key their state by).
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
        self.names.push(self.path.join("."));
        param
    }
}

/// Sets which parameters train: those for which `trainable(path)` is true require gradients,
/// the rest are frozen (no gradient flows into them, and the optimisers skip them).
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
        let on = (self.trainable)(&self.path.join("."));
        param.set_require_grad(on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu_autodiff;
    use burn::nn::Linear;

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
        // One step, state through a weight map (and its file format) into a fresh optimiser,
        // two more steps.
        let mut first = Adam::new(config);
        let mut b = two();
        let g = loss(&b);
        b = first.step(b, &g);
        let mut map = WeightMap::new();
        first.save_into(&mut map).unwrap();
        assert!(has_state(&map));
        assert_eq!(map.get("adam.m.rest.0.weight").unwrap().shape, vec![2, 1]);
        let map = WeightMap::from_safetensors(&map.to_safetensors().unwrap()).unwrap();
        let mut second = Adam::new(config);
        second.restore_from(&map).unwrap();
        assert_eq!(second.steps, 1);
        for _ in 0..2 {
            let g = loss(&b);
            b = second.step(b, &g);
        }
        assert_eq!(weights(&a), weights(&b));
        // Saved again after steps on restored state: the same moments as the straight run.
        let (mut straight, mut resumed) = (WeightMap::new(), WeightMap::new());
        adam.save_into(&mut straight).unwrap();
        second.save_into(&mut resumed).unwrap();
        for (name, t) in straight.iter() {
            assert_eq!(t.data, resumed.get(name).unwrap().data, "{name}");
        }
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
    fn corrupt_state_is_refused() {
        let mut adam = Adam::new(AdamConfig::new(0.1));
        let mut map = WeightMap::new();
        map.set_meta(STEPS_KEY, "three");
        let err = adam.restore_from(&map).unwrap_err();
        assert!(err.to_string().contains("\"three\""), "{err}");
        map.set_meta(STEPS_KEY, "3");
        map.insert("adam.m.p", vec![2], vec![0.0; 2]).unwrap();
        let err = adam.restore_from(&map).unwrap_err();
        assert!(err.to_string().contains("adam.v.p"), "{err}");
        map.insert("adam.v.p", vec![1, 2], vec![0.0; 2]).unwrap();
        let err = adam.restore_from(&map).unwrap_err();
        assert!(err.to_string().contains("adam.v.p"), "{err}");
        // A refused map leaves the optimiser as it was.
        assert_eq!(adam.steps, 0);
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
        // Frozen parameters get no state either.
        let mut map = WeightMap::new();
        adam.save_into(&mut map).unwrap();
        assert!(map.get("adam.m.first.weight").is_err());
        assert!(map.get("adam.m.rest.0.weight").is_ok());
    }
}
