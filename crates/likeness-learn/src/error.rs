//! The crate's error type.

use std::path::PathBuf;

use likeness_nn::NnError;

/// What can go wrong while learning or evaluating a similarity.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error(transparent)]
    Nn(#[from] NnError),
    /// A malformed line of a text input (pair list, CSV), 1-based.
    #[error("{source_name}, line {line}: {message}")]
    Parse {
        source_name: String,
        line: usize,
        message: String,
    },
    /// Input that is well formed but cannot be used (empty, one class only, …).
    #[error("{0}")]
    Data(String),
    /// Options that contradict each other or are out of range.
    #[error("{0}")]
    Options(String),
    // The cause is part of the message and deliberately not `source()` (a field named
    // `source` would be): anyhow's `{:#}` would print it twice.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {cause}")]
    Json {
        path: PathBuf,
        cause: serde_json::Error,
    },
}

impl LearnError {
    pub(crate) fn parse(source_name: &str, line: usize, message: impl Into<String>) -> Self {
        LearnError::Parse {
            source_name: source_name.to_string(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn json(path: impl Into<PathBuf>, cause: serde_json::Error) -> Self {
        LearnError::Json {
            path: path.into(),
            cause,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        LearnError::Io {
            path: path.into(),
            cause,
        }
    }
}

pub type Result<T, E = LearnError> = std::result::Result<T, E>;
