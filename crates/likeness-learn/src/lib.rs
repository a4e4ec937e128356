//! Learning and judging the similarity function: the triplet loss and its online miners,
//! the 10-fold verification protocol with ROC measures, a logistic verification head, and
//! a one-shot demonstration on handwritten digits.
//!
//! - [`triplet`]: `max(d(A,P) − d(A,N) + α, 0)` on burn tensors (autodiff), and the semi-hard,
//!   batch-hard and random miners over a batch of P identities × K examples.
//! - [`eval`]: LFW's 10-fold accuracy, ROC/AUC, EER, TAR at fixed FAR, best threshold, and a
//!   ROC picture; [`pairs`] reads LFW `pairs.txt`, CSV pair lists and embedding files.
//! - [`head`]: logistic regression on `|f(a) − f(b)|` or χ², fitted by Newton's method.
//! - [`digits`]: a small Siamese CNN trained on digits 0–5, one-shot on 6–9. Measured: the
//!   gain over raw pixels is modest (a few points), part of it comes from the convolutional
//!   features before any training, and long training loses it (the network specialises in
//!   the six training classes); the report gives the untrained network's score too.

pub mod digits;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod head;
pub mod optim;
pub mod pairs;
pub mod rng;
pub mod triplet;

pub use error::{LearnError, Result};
