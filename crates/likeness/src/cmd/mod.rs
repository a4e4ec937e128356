//! One module per capability of the command line.

pub mod models;
pub mod style;
