//! Likeness's neural networks and the importers that bring their weights in.
//!
//! - [`weights`]: the one weight format of the model cache (named f32 tensors, safetensors on disk).
//! - [`import`]: readers for the formats the models ship in (dlib `.dat`, ONNX, torch `.pth`,
//!   safetensors), each turning a foreign file into a [`weights::WeightMap`].
//! - [`nets`]: one network per file, each with a config, `load(&WeightMap)` and `forward`.
//! - [`image`]: decoded RGB images and their conversion to input tensors; [`draw`]: pictures.
//! - [`npz`]: numpy `.npz` reading (the ECG example's data, and reference values in tests; where
//!   tests find those is the dev-only crate likeness-testdata's business).
//!
//! Every network runs on burn's pure-Rust CPU backend; [`device`] picks it in one place.

pub mod device;
pub mod draw;
pub mod error;
pub mod image;
pub mod import;
pub mod nets;
pub mod npz;
pub mod optim;
pub mod rng;
pub mod weights;

pub use error::{NnError, Result, check_finite};
