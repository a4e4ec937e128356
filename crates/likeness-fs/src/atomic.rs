//! The atomic writer, the output guard and the sweep of temporaries left by killed writers.
//!
//! A write goes: inspect the target without following links (refuse links, non-regular files
//! and read-only files) → create `.NAME.likeness-tmp-XXXXXXXXXXXXXXXX` in the same folder with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` (64 bits from the OS-seeded SipHash keys of
//! [`std::hash::RandomState`], retried on a collision) and hold an advisory lock on it → write →
//! give it the old file's owner and mode → fsync → `rename` over the target → fsync the folder.
//! `rename` replaces the directory entry and never writes through it, so even a target swapped
//! for a link after the inspection is replaced, not followed. Readers see the old file or the
//! new one, never a mixture; a crash before the rename leaves the old file intact.

use std::ffi::{OsStr, OsString};
use std::fs::{File, FileType, OpenOptions, Permissions};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{FsError, Result};

/// What marks a file as one of our temporaries: `.NAME` + this + 16 hex digits.
pub const TEMP_MARKER: &str = ".likeness-tmp-";

/// A temporary younger than this is never swept, even when unlocked: it may belong to a writer
/// that has created it and not yet taken its lock (a window of microseconds). Writes of the
/// largest file we produce (VGG-16's 528 MB of weights) finish in seconds.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Attempts at a free temporary name; each collision is a 2^-64 event unless someone plants
/// names, and a planted name only costs one retry.
const NAME_ATTEMPTS: usize = 16;

/// Longest part of the target's name kept in a temporary's name, so that name, marker and
/// suffix fit Linux's 255-byte NAME_MAX (1 + 200 + 14 + 16 = 231).
const MAX_NAME_IN_TEMP: usize = 200;

/// Mode of a new file before the umask, as `File::create` does.
const NEW_FILE_MODE: u32 = 0o666;

/// The existing target's metadata that its replacement keeps.
#[derive(Clone, Copy, Debug)]
struct Existing {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// A file being written atomically: [`Write`] to it, then [`AtomicFile::commit`]. Dropped
/// without a commit (an error, a panic), it removes its temporary and the target is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
    existing: Option<Existing>,
}

impl AtomicFile {
    /// Starts replacing (or creating) `path`; a new file gets mode 0666 less the umask.
    pub fn create(path: &Path) -> Result<AtomicFile> {
        AtomicFile::create_with_mode(path, NEW_FILE_MODE)
    }

    /// Like [`AtomicFile::create`], with `new_mode` (less the umask) if `path` does not exist
    /// yet — e.g. 0600 for biometric data. An existing file's mode is kept either way.
    pub fn create_with_mode(path: &Path, new_mode: u32) -> Result<AtomicFile> {
        let name = file_name(path)?;
        let existing = inspect_target(path)?;
        let dir = dir_of(path);
        std::fs::create_dir_all(dir).map_err(|e| FsError::io(dir, e))?;
        sweep_stale(path);
        // Until the commit the temporary is private to us, whatever the final mode.
        let mode = if existing.is_some() { 0o600 } else { new_mode };
        let (temp, file) = create_temp(dir, name, mode)?;
        // Tells sweepers this temporary is alive; released by the OS if we are killed. A file
        // system without locks (rare) only loses the sweep, so a failure is not an error.
        let _ = file.try_lock();
        Ok(AtomicFile {
            target: path.to_path_buf(),
            temp,
            file: Some(file),
            existing,
        })
    }

    /// The temporary's path (for diagnostics and tests).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Makes the written bytes the target's content: owner and mode of the old file, fsync,
    /// rename, fsync of the folder. On an error the temporary is removed.
    pub fn commit(mut self) -> Result<()> {
        let Some(file) = self.file.take() else {
            return Err(FsError::io(
                &self.target,
                io::Error::other("already committed"),
            ));
        };
        if let Some(existing) = self.existing {
            keep_owner(&file, &self.target, existing)?;
            file.set_permissions(Permissions::from_mode(existing.mode & 0o7777))
                .map_err(|e| FsError::io(&self.temp, e))?;
        }
        file.sync_all().map_err(|e| FsError::io(&self.temp, e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.target).map_err(|e| FsError::io(&self.target, e))?;
        // Renamed: nothing left to clean up, even if the folder's fsync fails below.
        self.temp = PathBuf::new();
        sync_dir(dir_of(&self.target));
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Replaces (or creates) `path` with `bytes`, atomically; see [`AtomicFile`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)
        .map_err(|e| FsError::io(file.temp_path(), e))?;
    file.commit()
}

/// Checks, before any long work, that `path` can be written as an output: it is absent or a
/// writable regular file (not a link, device, FIFO, socket or folder), and a file can be
/// created in its folder (or the nearest existing ancestor, where the writer will create the
/// rest). Nothing is left behind.
pub fn check_output(path: &Path) -> Result<()> {
    file_name(path)?;
    check_output_dir(dir_of(path))?;
    inspect_target(path).map(|_| ())
}

/// Checks, before any long work, that `dir` can be an output folder: a folder (links to
/// folders are fine: files inside are written by [`write_atomic`], which refuses links of its
/// own), or absent with a nearest existing ancestor that is a folder; and that a file can be
/// created in it (or in that ancestor). Nothing is left behind.
pub fn check_output_dir(dir: &Path) -> Result<()> {
    let existing = dir
        .ancestors()
        .find(|a| a.as_os_str().is_empty() || std::fs::symlink_metadata(a).is_ok())
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .unwrap_or(Path::new("."));
    let meta = std::fs::metadata(existing).map_err(|e| FsError::io(existing, e))?;
    if !meta.is_dir() {
        return Err(FsError::io(
            existing,
            io::Error::new(io::ErrorKind::NotADirectory, "not a folder"),
        ));
    }
    // A trial creation finds what permissions alone do not: read-only mounts, full quotas,
    // ACLs, and root squashed on NFS.
    let (temp, file) = create_temp(existing, OsStr::new("likeness-check"), 0o600)?;
    drop(file);
    let _ = std::fs::remove_file(&temp);
    Ok(())
}

/// Creates a fresh folder `.STEM.likeness-tmp-XXXXXXXXXXXXXXXX` in `parent`, mode 0700, under
/// an unpredictable name: a private workspace (for a download) that nobody can have planted a
/// link at. The caller removes it when done.
pub fn private_dir(parent: &Path, stem: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::create_dir_all(parent).map_err(|e| FsError::io(parent, e))?;
    let prefix = temp_prefix(OsStr::new(stem));
    for _ in 0..NAME_ATTEMPTS {
        let mut name = prefix.clone();
        name.push(random_suffix());
        let dir = parent.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(FsError::io(parent, e)),
        }
    }
    Err(FsError::io(
        parent,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free folder name after 16 attempts",
        ),
    ))
}

/// Removes temporaries of `path` left by killed writers: named like ours, older than a minute
/// and not locked by a live writer. Returns how many were removed. Best effort: whatever cannot
/// be inspected is left alone.
pub fn sweep_stale(path: &Path) -> usize {
    let Ok(name) = file_name(path) else {
        return 0;
    };
    let prefix = temp_prefix(name);
    let Ok(entries) = std::fs::read_dir(dir_of(path)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        let bytes = entry_name.as_bytes();
        let is_ours = bytes.len() == prefix.len() + 16
            && bytes.starts_with(prefix.as_bytes())
            && bytes[prefix.len()..].iter().all(u8::is_ascii_hexdigit);
        if is_ours && is_stale(&entry.path()) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn is_stale(path: &Path) -> bool {
    // O_NONBLOCK: a FIFO planted under a temporary's name must not hang the sweep.
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let old = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age >= STALE_AFTER);
    meta.is_file() && old && file.try_lock().is_ok()
}

/// `.NAME.likeness-tmp-`, NAME cut to [`MAX_NAME_IN_TEMP`] bytes.
fn temp_prefix(name: &OsStr) -> OsString {
    let bytes = name.as_bytes();
    let cut = &bytes[..bytes.len().min(MAX_NAME_IN_TEMP)];
    let mut prefix = OsString::from(".");
    prefix.push(OsStr::from_bytes(cut));
    prefix.push(TEMP_MARKER);
    prefix
}

/// 16 hex digits nobody else can predict: SipHash under `RandomState`'s keys, which the
/// standard library draws from the OS's random source once per thread (and steps for each new
/// `RandomState`), over a process-wide counter and the clock.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    format!("{:016x}", h.finish())
}

/// Creates a fresh temporary for `name` in `dir`: exclusive creation, links never followed.
fn create_temp(dir: &Path, name: &OsStr, mode: u32) -> Result<(PathBuf, File)> {
    let prefix = temp_prefix(name);
    for _ in 0..NAME_ATTEMPTS {
        let mut temp_name = prefix.clone();
        temp_name.push(random_suffix());
        let temp = dir.join(temp_name);
        match open_exclusive(&temp, mode) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(FsError::io(dir, e)),
        }
    }
    Err(FsError::io(
        dir,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary name after 16 attempts (is someone planting files here?)",
        ),
    ))
}

/// `open(O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)`: fails if anything,
/// a symlink included, is already at `path`.
fn open_exclusive(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Gives the replacement the old file's owner and group (only root, or an owner changing to
/// one of their groups, can; anything else is refused rather than silently changed).
fn keep_owner(file: &File, target: &Path, existing: Existing) -> Result<()> {
    let meta = file.metadata().map_err(|e| FsError::io(target, e))?;
    if meta.uid() == existing.uid && meta.gid() == existing.gid {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(existing.uid), Some(existing.gid)).map_err(|cause| {
        FsError::Ownership {
            path: target.to_path_buf(),
            uid: existing.uid,
            gid: existing.gid,
            cause,
        }
    })
}

/// Best-effort fsync of a folder, so the rename itself survives a power cut (some file
/// systems refuse to sync folders; the data is already synced).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Looks at the target without following links: `None` if absent, its owner and mode if it is
/// a regular file we may write, an error otherwise.
fn inspect_target(path: &Path) -> Result<Option<Existing>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FsError::io(path, e)),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "unreadable".into());
        return Err(FsError::Symlink {
            path: path.to_path_buf(),
            target,
        });
    }
    if !kind.is_file() {
        return Err(FsError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_name(kind),
        });
    }
    // readonly(): no write bit at all (root would otherwise pass access()).
    if meta.permissions().readonly() || !writable_by_us(path) {
        return Err(FsError::ReadOnly {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(Existing {
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
    }))
}

/// Whether we may write `path` (its permission bits for our effective ids, ACLs, read-only
/// mounts), as the kernel decides.
#[allow(unsafe_code)]
fn writable_by_us(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        // A NUL byte: no such file can exist; the open will fail and say so.
        return true;
    };
    // SAFETY: `c_path` is a NUL-terminated string alive for the whole call; `access` only reads
    // it and keeps no pointer.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

fn kind_name(kind: FileType) -> &'static str {
    if kind.is_dir() {
        "folder"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_fifo() {
        "FIFO (named pipe)"
    } else if kind.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

fn file_name(path: &Path) -> Result<&OsStr> {
    path.file_name().ok_or_else(|| FsError::NoFileName {
        path: path.to_path_buf(),
    })
}

fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_open_refuses_a_planted_symlink_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let err = open_exclusive(&planted, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn temporary_names_carry_64_unpredictable_bits() {
        let names: std::collections::HashSet<String> = (0..1000).map(|_| random_suffix()).collect();
        assert_eq!(names.len(), 1000);
        assert!(names.iter().all(|n| n.len() == 16));
    }

    #[test]
    fn a_long_name_still_fits_name_max() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n".repeat(255));
        write_atomic(&path, b"long").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"long");
    }
}
