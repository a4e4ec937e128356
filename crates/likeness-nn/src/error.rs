//! The typed error of the networks crate.

use std::path::PathBuf;

/// Result with [`NnError`].
pub type Result<T, E = NnError> = std::result::Result<T, E>;

/// What can go wrong reading weights, images or running a network.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// The file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        /// Shown in the message and deliberately not a `source()`: an error chain (anyhow's
        /// `{:#}`) would print it twice.
        cause: std::io::Error,
    },
    /// A weight file is corrupt, truncated or not the format expected, at a byte offset.
    #[error("{format} data is malformed at byte {offset}: {message}")]
    Malformed {
        format: &'static str,
        offset: u64,
        message: String,
    },
    /// A weight file parsed, but does not hold the network expected.
    #[error("weights do not fit the network: {0}")]
    Mismatch(String),
    /// A tensor a network needs is absent from its weights.
    #[error("weights lack tensor `{0}`")]
    MissingTensor(String),
    /// A tensor has another shape than the network needs.
    #[error("tensor `{name}` has shape {got:?}, the network needs {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// An image could not be decoded, or is unusable.
    #[error("image: {0}")]
    Image(String),
    /// A file could not be written safely (a link, a device, read-only, ...).
    #[error(transparent)]
    Fs(#[from] likeness_fs::FsError),
    /// Weights or an embedding hold NaN or an infinity: refused where they enter, so that no
    /// NaN ever reaches a distance (where every comparison with it is false) or a file.
    #[error(
        "{what} holds a non-finite value ({value}) at index {index}: the weights are corrupt \
         or a computation overflowed (for a cached model, `likeness models fetch --force` \
         replaces it)"
    )]
    NonFinite {
        what: String,
        index: usize,
        value: f32,
    },
    /// An image file could not be read or written.
    #[error("{}: {error}", path.display())]
    ImageFile {
        path: PathBuf,
        /// Shown in the message, not a `source()`, for the reason given at [`NnError::Io`].
        error: crate::image::ImageError,
    },
}

/// Refuses `values` if any is NaN or infinite, naming `what` and the first bad index. The one
/// finiteness check at the boundaries where numbers enter: weights being loaded, embeddings a
/// network produced, embeddings read from files.
pub fn check_finite(what: impl std::fmt::Display, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(NnError::NonFinite {
            what: what.to_string(),
            index,
            value: values[index],
        }),
    }
}

impl NnError {
    /// A [`NnError::Malformed`] for `format` at `offset`.
    pub fn malformed(format: &'static str, offset: u64, message: impl Into<String>) -> Self {
        NnError::Malformed {
            format,
            offset,
            message: message.into(),
        }
    }

    /// An [`NnError::ImageFile`] for `path`.
    pub fn image_file(path: impl Into<PathBuf>, error: crate::image::ImageError) -> Self {
        NnError::ImageFile {
            path: path.into(),
            error,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NnError::Io {
            path: path.into(),
            cause: source,
        }
    }
}
