//! Likeness's home folder: the model cache, the default gallery.

use std::path::PathBuf;

use crate::{FsError, Result};

/// The variable that moves the home folder.
pub const HOME_VAR: &str = "LIKENESS_HOME";

/// The home folder relative to `$HOME` when [`HOME_VAR`] is unset (XDG's cache location:
/// everything in it can be fetched again).
pub const DEFAULT_HOME: &str = ".cache/likeness";

/// `$LIKENESS_HOME`, or `$HOME/.cache/likeness`. An empty variable counts as unset (an empty
/// path would silently mean the current folder).
pub fn home_dir() -> Result<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(home) = set(HOME_VAR) {
        return Ok(PathBuf::from(home));
    }
    set("HOME")
        .map(|h| PathBuf::from(h).join(DEFAULT_HOME))
        .ok_or(FsError::NoHome)
}
