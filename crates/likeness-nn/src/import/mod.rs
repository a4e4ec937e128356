//! Readers for the formats models ship in. Each turns a foreign file into a [`WeightMap`]
//! named the way the matching network in [`crate::nets`] reads it, and fails with the byte
//! offset on corrupt or truncated input.
//!
//! [`WeightMap`]: crate::weights::WeightMap

pub mod blazeface_onnx;
pub mod dlib;
pub mod liveness_onnx;
pub mod onnx;
pub mod protobuf;
pub mod torch;
pub mod vgg_onnx;
