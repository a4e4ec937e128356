//! One module per capability of the command line.

pub mod demo;
pub mod models;
pub mod style;
