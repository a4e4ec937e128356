//! Probing what the units of a ConvNet respond to (Zeiler & Fergus 2014, §4 "top nine"):
//! stream a set of images through a network, keep for each chosen unit the positions where it
//! fired hardest, map each position back to the input patch it sees through the layer's
//! receptive field, and render per layer a contact sheet of units × their top patches.
//!
//! - [`field`]: receptive fields computed from a network's list of kernels, strides, paddings.
//! - [`net`]: the networks that can be probed ([`net::ProbeNet`]; VGG-16/19, dlib's face ResNet).
//! - [`topk`]: the per-unit top-k bookkeeping.
//! - [`probe`]: the streaming [`probe::Prober`].
//! - [`sheet`]: contact sheets and the `index.html` that browses them.

pub mod error;
pub mod field;
pub mod net;
pub mod probe;
pub mod sheet;
pub mod topk;

pub use error::{ProbeError, Result};
pub use field::{ReceptiveField, SpatialOp, receptive_fields};
pub use net::{ActivationMap, DlibProbeNet, ProbeNet, VggProbeNet, dlib_receptive_fields};
pub use probe::{
    LayerResult, ProbeConfig, Prober, UnitResult, UnitSelection, crop_field, fit_longer_side,
    list_images,
};
pub use topk::Hit;
