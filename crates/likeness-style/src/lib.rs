//! Neural style transfer (Gatys, Ecker & Bethge) on Likeness's VGG networks.
//!
//! - [`loss`]: J_content, Gram matrices, J_style per layer, total variation, exactly as
//!   DESIGN.md writes them.
//! - [`optim`]: L-BFGS (strong-Wolfe line search, the quality default) and Adam, over the
//!   generated image's pixels only.
//! - [`objective`]: J(G) and ∂J/∂G through a frozen VGG (`direct`: the same without an
//!   autodiff graph, on `gemm`; the one that runs).
//! - [`transfer`]: the whole run from images to image, with [`StyleConfig`]'s options.
//! - [`color`]: colour preservation; [`memory`]: the memory estimate checked before starting.

pub mod color;
// raw-pointer SIMD kernels; each unsafe block states its invariant
#[allow(unsafe_code)]
mod direct;
pub mod error;
pub mod loss;
pub mod memory;
pub mod objective;
pub mod optim;
pub mod report;
pub mod transfer;

pub use error::{Result, StyleError};
pub use transfer::{Init, Optimizer, Progress, StyleConfig, StyleOutput, load_weights, transfer};
