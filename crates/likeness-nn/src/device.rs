//! The one place that chooses where tensors live.
//!
//! burn 0.22 selects the backend at run time through its `Device`, so the rest of the code has
//! no backend type parameter: it takes a `&Device` and calls these constructors at the edges.

use burn::tensor::Device;

/// burn-flex, the pure-Rust CPU backend: inference, no gradient bookkeeping.
pub fn cpu() -> Device {
    Device::flex()
}

/// burn-flex with autodiff: for style transfer and training. Only tensors marked with
/// `require_grad` (and parameters of modules not frozen with `no_grad`) get gradients.
pub fn cpu_autodiff() -> Device {
    Device::flex().autodiff()
}
