//! One module per capability of the command line.

pub mod demo;
pub mod eval;
pub mod models;
pub mod probe;
pub mod style;
pub mod train;
