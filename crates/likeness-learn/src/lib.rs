//! Learning and judging the similarity function: the triplet loss and its online miners,
//! the 10-fold verification protocol with ROC measures, a logistic verification head, and
//! a one-shot demonstration on handwritten digits.

pub mod error;
pub mod eval;
pub mod digits;
pub mod head;
pub mod pairs;
pub mod rng;
pub mod triplet;

pub use error::{LearnError, Result};
