//! File-system safety for everything Likeness writes: one atomic writer, one guard for output
//! paths, one home directory.
//!
//! Why one crate: a hostile-input campaign (issue 11) found the old writer (a temporary at the
//! predictable name `.NAME.PID.tmp`, opened without exclusive creation) could be made to
//! overwrite any file the victim can write through a planted symlink; every rewrite reset a
//! `0600` gallery to `0644`; a read-only gallery in a writable folder was replaced anyway; and
//! `--draw /dev/null`, run as root, turned `/dev/null` into a PNG. Each writer had its own copy
//! of the mistake. Here there is one:
//!
//! - [`AtomicFile`] / [`write_atomic`]: the temporary is created with `O_CREAT | O_EXCL |
//!   O_NOFOLLOW` under a name with 64 unpredictable bits, in the target's own folder (so the
//!   rename is atomic); the existing target must be a regular file (not a link, device, FIFO,
//!   socket or folder) that we may write, and its mode and owner are carried over; file and
//!   folder are fsynced; the temporary is removed on every error path and, after a `kill -9`,
//!   by the next writer of the same target ([`sweep_stale`]).
//! - [`check_output`]: the same refusals, plus a trial creation in the folder, done *before*
//!   long work so that an unwritable `-o` fails in milliseconds, not after a training epoch.
//! - [`home_dir`]: `$LIKENESS_HOME`, default `~/.cache/likeness`.

mod atomic;
mod error;
mod home;

pub use atomic::{
    AtomicFile, TEMP_MARKER, check_output, check_output_dir, private_dir, sweep_stale, write_atomic,
};
pub use error::{FsError, Result};
pub use home::{DEFAULT_HOME, HOME_VAR, home_dir};
