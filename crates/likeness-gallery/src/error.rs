//! The typed error of the gallery crate: every message names the gallery (path or URL), what
//! is wrong and, where there is one, what to do.

use std::path::PathBuf;

/// Result with [`GalleryError`].
pub type Result<T, E = GalleryError> = std::result::Result<T, E>;

/// What can go wrong with a gallery.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    /// A file of the gallery could not be read or written.
    /// The one atomic writer refused or failed (a link, device or read-only file where the
    /// store's file should be, a full disk); its message names the path.
    #[error(transparent)]
    Write(#[from] likeness_fs::FsError),
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        /// Shown in the message and deliberately not a `source()`: an error chain (anyhow's
        /// `{:#}`) would print it twice.
        cause: std::io::Error,
    },
    /// The gallery is not a gallery, or is damaged. Nothing was changed.
    #[error("gallery {location} is unreadable: {message} (it was left untouched)")]
    Corrupt { location: String, message: String },
    /// The gallery was written by a newer Likeness than this one.
    #[error(
        "gallery {location} has format version {found}, newer than the {supported} this \
         Likeness reads; upgrade Likeness (the gallery was left untouched)"
    )]
    Version {
        location: String,
        found: u32,
        supported: u32,
    },
    /// Another process kept the gallery locked for too long.
    #[error("gallery {location} is locked by another writer (waited {waited_s:.0} s); try again")]
    Locked { location: String, waited_s: f64 },
    /// The embeddings offered come from another network than the gallery's.
    #[error(
        "gallery {location} holds `{held}` embeddings; `{offered}` ones cannot be compared with \
         them (use the encoder it was enrolled with, or another --gallery)"
    )]
    EmbedderMismatch {
        location: String,
        held: String,
        offered: String,
    },
    /// An embedding has another length than the gallery's.
    #[error("embedding of {what} has {got} values; this gallery's embeddings have {expected}")]
    Dimension {
        what: String,
        expected: usize,
        got: usize,
    },
    /// An embedding holds NaN or an infinity (a corrupt model, a diverged encoder): refused,
    /// never stored.
    #[error(
        "embedding of {what} has a non-finite value ({value}) at position {index}: refused (a \
         corrupt model or a diverged encoder makes these; nothing was stored)"
    )]
    NonFinite {
        what: String,
        index: usize,
        value: f32,
    },
    /// A name, id or argument that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// No person is called that (or has that id).
    #[error("no person {0} in the gallery")]
    NoSuchPerson(String),
    /// A person with that name already exists.
    #[error("a person named `{0}` is already in the gallery")]
    DuplicateName(String),
    /// The enrolment looks wrong (a face far from the person's others, or close to someone
    /// else's); nothing was stored.
    #[error("{}; nothing was enrolled (enrol again with --insist to keep it anyway)", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Suspicious(Vec<crate::EnrolWarning>),
    /// The database server refused or failed an operation.
    #[error("gallery {location}: {message}")]
    Database { location: String, message: String },
}

impl GalleryError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        GalleryError::Io {
            path: path.into(),
            cause,
        }
    }
}
