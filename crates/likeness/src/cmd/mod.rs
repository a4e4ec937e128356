//! One module per capability of the command line.

pub mod demo;
pub mod detect;
pub mod encode;
pub mod eval;
pub mod gallery;
pub mod models;
pub mod probe;
pub mod recognise;
pub mod style;
pub mod train;
pub mod verify;
