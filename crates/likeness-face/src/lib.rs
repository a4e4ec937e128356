//! Faces, one stage at a time, each taking the previous stage's value type:
//!
//! [`Image`] → [`detect`] ([`Detection`]: box, score, six keypoints) → [`align`]
//! ([`Landmarks5`] → [`Chip`], dlib's 150×150 geometry) → embedding network →
//! [`compare`] ([`Embedding`], distance, verify, identify). The gallery of enrolled people
//! is its own crate, `likeness-gallery`.
//!
//! [`faces`] puts the stages behind one value configured by one [`FacesConfig`]; [`report`]
//! holds the answers as serde types, printed by the command line and sent by the service;
//! [`annotate`] draws them on the photo.
//!
//! The networks themselves live in `likeness-nn`; this crate is the geometry, decoding and
//! bookkeeping around them, so every stage here can be tested without weights.
//!
//! [`Image`]: likeness_nn::image::Image

pub mod align;
pub mod annotate;
pub mod challenge;
pub mod compare;
pub mod compat;
pub mod detect;
pub mod embedder;
pub mod error;
pub mod faces;
pub mod landmarks;
pub mod liveness;
pub mod report;

pub use align::{Chip, Landmarks5};
pub use compare::{Embedding, KnownFace, NamedMatch};
pub use detect::Detection;
pub use embedder::{Embedder, EmbedderInfo};
pub use error::{FaceError, Result};
pub use faces::{EmbedderChoice, Face, Faces, FacesConfig, SingleFace};
