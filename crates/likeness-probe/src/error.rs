//! The probe's errors.

use std::path::PathBuf;

use likeness_nn::NnError;

/// What can go wrong probing a network.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The network or an image failed (bad weights, unreadable image, shape mismatch).
    #[error(transparent)]
    Nn(#[from] NnError),
    /// A layer name the network does not have.
    #[error("unknown layer `{name}` for {network} (known: {known})")]
    UnknownLayer {
        name: String,
        network: String,
        known: String,
    },
    /// A unit index past the layer's channels.
    #[error("layer {layer} has {channels} units; unit {unit} does not exist")]
    NoSuchUnit {
        layer: String,
        unit: usize,
        channels: usize,
    },
    /// A request that makes no sense (no layers, top 0, …).
    #[error("invalid probe settings: {0}")]
    Invalid(String),
    /// The image folder holds no PNG or JPEG.
    #[error("no .png/.jpg/.jpeg images in {0}")]
    NoImages(PathBuf),
    /// Reading or writing a file.
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Encoding a sheet.
    #[error("writing {path}: {message}")]
    Encode { path: PathBuf, message: String },
}

impl ProbeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ProbeError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The probe's result type.
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;
