//! Hash verification when a file of the cache is opened, cheap after the first time.
//!
//! A model file whose bytes changed but not its size (a flipped bit, an edit, a bad disk)
//! loaded silently before this existed: `detect` then found 0 faces and `verify` printed
//! "different: distance NaN". Hashing every open is too slow to do blindly (VGG-16 is 528 MB,
//! ~1.5 s of SHA-256), so a successful check is remembered in `.verified.json` under the
//! file's *identity*: size, modification time, status-change time, inode and device. The
//! status-change time (ctime) is set by the kernel on every write, rename or `chmod` and
//! cannot be set back from user space (`touch -d` sets mtime only), so any change to the file
//! after its check, even one that restores mtime, makes the record stale and the next open
//! hashes again. The record also holds the SHA-256 it matched, so a re-fetch that changes the
//! manifest's hash invalidates it as well.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fsutil::sha256_file;

/// The record file, in the cache's home.
pub const VERIFIED_FILE: &str = ".verified.json";

/// What a file looked like when its hash was last found right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Identity {
    fn of(meta: &std::fs::Metadata) -> Identity {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Identity {
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    identity: Identity,
    sha256: String,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The file's SHA-256 is the expected one (hashed now, or recorded for this very file).
    Verified,
    /// The file's SHA-256 is another one.
    Differs { got: String },
}

/// Checks that `home/rel` hashes to `expected`, hashing only when the file is not the one a
/// previous check recorded. Recording is best effort (a read-only cache still verifies, it
/// just hashes every time).
pub fn check(home: &Path, rel: &str, expected: &str) -> std::io::Result<Verdict> {
    let path = home.join(rel);
    let meta = std::fs::metadata(&path)?;
    let identity = Identity::of(&meta);
    let record_path = home.join(VERIFIED_FILE);
    let mut records = read_records(&record_path);
    if records
        .get(rel)
        .is_some_and(|r| r.identity == identity && r.sha256 == expected)
    {
        return Ok(Verdict::Verified);
    }
    let got = sha256_file(&path).map_err(|e| std::io::Error::other(e.to_string()))?;
    if got != expected {
        if records.remove(rel).is_some() {
            save_records(&record_path, &records);
        }
        return Ok(Verdict::Differs { got });
    }
    // Identity again after hashing: a file that changed meanwhile is not recorded.
    if std::fs::metadata(&path).map(|m| Identity::of(&m)).ok() == Some(identity) {
        records.insert(
            rel.to_string(),
            Record {
                identity,
                sha256: got,
            },
        );
        save_records(&record_path, &records);
    }
    Ok(Verdict::Verified)
}

fn read_records(path: &Path) -> BTreeMap<String, Record> {
    // A corrupt or foreign record file only costs a re-hash: it is ignored, then rewritten.
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_records(path: &Path, records: &BTreeMap<String, Record>) {
    if let Ok(mut bytes) = serde_json::to_vec_pretty(records) {
        bytes.push(b'\n');
        let _ = likeness_fs::write_atomic(path, &bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_same_size_change_is_caught_even_with_mtime_restored() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("models")).unwrap();
        let path = home.path().join("models/m.safetensors");
        std::fs::write(&path, b"weights-0123").unwrap();
        let sha = crate::fsutil::sha256_hex(b"weights-0123");
        assert_eq!(
            check(home.path(), "models/m.safetensors", &sha).unwrap(),
            Verdict::Verified
        );
        assert!(home.path().join(VERIFIED_FILE).is_file());
        // The second check trusts the record.
        assert_eq!(
            check(home.path(), "models/m.safetensors", &sha).unwrap(),
            Verdict::Verified
        );
        // Same size, mtime put back: ctime still moves, so the file is hashed again.
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"weights-0124").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(matches!(
            check(home.path(), "models/m.safetensors", &sha).unwrap(),
            Verdict::Differs { .. }
        ));
    }
}
