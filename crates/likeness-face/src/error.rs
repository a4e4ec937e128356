//! The typed error of the faces crate.

use std::path::PathBuf;

/// Result with [`FaceError`].
pub type Result<T, E = FaceError> = std::result::Result<T, E>;

/// What can go wrong in the face pipeline.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// Reading an image or running a network failed.
    #[error(transparent)]
    Nn(#[from] likeness_nn::NnError),
    /// A network's raw output does not have the size its decoder needs.
    #[error("{what}: expected {expected} values, got {got}")]
    OutputSize {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// An argument is outside what the operation can work with.
    #[error("{0}")]
    Invalid(String),
    /// Two embeddings of different lengths cannot be compared.
    #[error("embeddings of different lengths ({0} and {1}) cannot be compared")]
    Dimension(usize, usize),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        /// Shown in the message and deliberately not a `source()`: an error chain (anyhow's
        /// `{:#}`) would print it twice.
        cause: std::io::Error,
    },
    /// A photo meant to show a face shows none.
    #[error("no face found")]
    NoFace,
    /// A model file given by path cannot be used (not found, damaged, or another network).
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },
    /// A model the facade needs is not in the model cache (the message names the command
    /// that fetches it).
    #[error("{0}")]
    Missing(String),
}

impl FaceError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FaceError::Io {
            path: path.into(),
            cause: source,
        }
    }
}
