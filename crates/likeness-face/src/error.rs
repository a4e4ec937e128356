//! The typed error of the faces crate.

use std::path::PathBuf;

/// Result with [`FaceError`].
pub type Result<T, E = FaceError> = std::result::Result<T, E>;

/// What can go wrong in the face pipeline and the gallery.
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
    /// The gallery file is not a gallery, or is damaged.
    #[error("gallery {path} is unreadable: {message}")]
    GalleryCorrupt { path: PathBuf, message: String },
    /// The gallery was written by a newer Likeness than this one.
    #[error(
        "gallery {path} has format version {found}, newer than the {supported} this Likeness \
         reads; upgrade Likeness (the file was left untouched)"
    )]
    GalleryVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// Another process kept the gallery locked for too long.
    #[error("gallery {path} is locked by another writer (waited {waited_s:.0} s); try again")]
    GalleryLocked { path: PathBuf, waited_s: f64 },
    /// A model the facade needs is not in the model cache (the message names the command
    /// that fetches it).
    #[error("{0}")]
    Missing(String),
    /// A person named in a gallery operation does not exist.
    #[error("no person `{0}` in the gallery")]
    NoSuchPerson(String),
    /// A person with that name already exists.
    #[error("a person named `{0}` is already in the gallery")]
    DuplicateName(String),
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
