//! The typed error of the file-system crate.

use std::path::PathBuf;

/// Result with [`FsError`].
pub type Result<T, E = FsError> = std::result::Result<T, E>;

/// Why a file could not be written (or a path cannot be an output).
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The operating system refused.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        /// Shown in the message, deliberately not a `source()`: an error chain (anyhow's
        /// `{:#}`) would print it twice.
        cause: std::io::Error,
    },
    /// The path is a symbolic link; writing would replace (or, elsewhere, follow) it.
    #[error(
        "{path} is a symbolic link; refusing to write through it (give the real path: {target})"
    )]
    Symlink { path: PathBuf, target: String },
    /// The path exists and is not a regular file.
    #[error("{path} is a {kind}, not a regular file; refusing to replace it (choose a file path)")]
    NotRegular { path: PathBuf, kind: &'static str },
    /// The existing file is read-only (for us).
    #[error(
        "{path} is read-only; refusing to replace it (make it writable, e.g. `chmod u+w`, \
         or write elsewhere)"
    )]
    ReadOnly { path: PathBuf },
    /// The existing file's owner or group cannot be given to its replacement.
    #[error(
        "{path} belongs to uid {uid} gid {gid}, which its replacement cannot keep ({cause}); \
         refusing to change its ownership (run as its owner)"
    )]
    Ownership {
        path: PathBuf,
        uid: u32,
        gid: u32,
        cause: std::io::Error,
    },
    /// The path has no file name (`/`, `..`, empty).
    #[error("`{}` does not name a file", path.display())]
    NoFileName { path: PathBuf },
    /// Neither `$LIKENESS_HOME` nor `$HOME` is set.
    #[error("neither LIKENESS_HOME nor HOME is set: cannot locate Likeness's home folder")]
    NoHome,
}

impl FsError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        FsError::Io {
            path: path.into(),
            cause,
        }
    }
}
